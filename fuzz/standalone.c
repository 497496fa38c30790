/*
 * standalone.c - replays fuzz corpora without libFuzzer: a main() that feeds
 * every file named on the command line (or found in a directory named there)
 * to LLVMFuzzerTestOneInput. Linked with each harness in the sanitizer build,
 * so `make check` replays the corpora under gcc's ASan+UBSan.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input is handed over in a buffer of exactly its size, as libFuzzer
 * does, so that ASan sees a read one byte past the end. */
static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f)
        return -1;
    if (fstat(fileno(f), &st) != 0 || st.st_size < 0 || st.st_size > (1 << 22)) {
        fclose(f);
        return -1;
    }
    size_t want = (size_t)st.st_size;
    uint8_t *buf = malloc(want ? want : 1);
    size_t n = buf ? fread(buf, 1, want, f) : 0;
    fclose(f);
    if (!buf)
        return -1;
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    long count = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0)
            continue;
        if (!S_ISDIR(st.st_mode)) {
            count += run_file(argv[i]) == 0;
            continue;
        }
        DIR *d = opendir(argv[i]);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
            count += run_file(path) == 0;
        }
        if (d)
            closedir(d);
    }
    printf("replayed %ld inputs\n", count);
    return 0;
}
