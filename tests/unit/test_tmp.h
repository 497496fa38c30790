/*
 * test_tmp.h - the unit tests' temporary directories: removing a tree
 * (nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS)) and counting a
 * subdirectory's entries. Header-only; include after <ftw.h>, <dirent.h>,
 * <cmocka.h>.
 */
#ifndef RF_TEST_TMP_H
#define RF_TEST_TMP_H

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* nftw callback: removes each entry (FTW_DEPTH: children first). */
__attribute__((unused)) static int rm_one(const char *path, const struct stat *sb, int flag,
                                          struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Entries of dir/sub other than . and .. (asserts that it opens). */
__attribute__((unused)) static int count_entries(const char *dir, const char *sub)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

#endif
