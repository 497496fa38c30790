/*
 * secmem.c - per-thread caches of sodium_malloc blocks (secmem.h).
 *
 * Classes are powers of two from 256 bytes to 1 MiB, header included. A
 * thread keeps at most CACHE_SMALL blocks of each class up to 16 KiB,
 * CACHE_MID of 32 and 64 KiB and CACHE_LARGE above, so what one thread may
 * hold locked is bounded (about 8 MB at most; far less in practice: only
 * the classes it uses, as many as were live at once). The small classes hold
 * many because an HTTP thread carries many requests at once while they wait
 * for their group commit, each with its text and ciphertext buffers: a cache
 * smaller than that went back to sodium_malloc under load (strace: 1.4 mmap
 * per submission with 8).
 */
#include "lib/secmem.h"

#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define HDR 16
#define MAGIC 0x5345434dU  /* "SECM" */
#define CLASS_MIN_SHIFT 8  /* 256 B */
#define CLASS_MAX_SHIFT 20 /* 1 MiB */
#define NCLASS (CLASS_MAX_SHIFT - CLASS_MIN_SHIFT + 1)
#define NO_CLASS 0xffU
#define CACHE_SMALL 64
#define CACHE_MID 16
#define CACHE_LARGE 4

struct hdr {
    uint32_t magic;
    uint32_t klass; /* class index, or NO_CLASS: a block of its own size */
    uint64_t n;     /* bytes the caller asked for */
};

struct cache {
    void *blocks[NCLASS][CACHE_SMALL];
    unsigned count[NCLASS];
    unsigned long long reused, mapped;
};

static pthread_key_t key;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static __thread struct cache *tc;

static size_t round16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

static size_t class_size(unsigned k)
{
    return (size_t)1 << (k + CLASS_MIN_SHIFT);
}

static unsigned cache_cap(unsigned k)
{
    size_t sz = class_size(k);
    return sz <= 16384 ? CACHE_SMALL : sz <= 65536 ? CACHE_MID : CACHE_LARGE;
}

static void cache_release(void *arg)
{
    struct cache *c = arg;
    for (unsigned k = 0; k < NCLASS; k++)
        for (unsigned i = 0; i < c->count[k]; i++) {
            UNPOISON(c->blocks[k][i], class_size(k));
            sodium_free(c->blocks[k][i]);
        }
    sodium_memzero(c, sizeof(*c));
    free(c);
}

static void make_key(void)
{
    (void)pthread_key_create(&key, cache_release);
}

static struct cache *cache_get(void)
{
    if (tc != NULL)
        return tc;
    (void)pthread_once(&once, make_key);
    struct cache *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    if (pthread_setspecific(key, c) != 0) {
        free(c);
        return NULL;
    }
    return tc = c;
}

/* The block's start, from the caller's pointer and its header. */
static uint8_t *block_of(uint8_t *p, const struct hdr *h, size_t *size)
{
    size_t sz = h->klass == NO_CLASS ? round16(h->n) + HDR : class_size(h->klass);
    *size = sz;
    return p - (sz - round16(h->n));
}

void *rf_secmem_alloc(size_t n)
{
    if (n == 0 || n > SIZE_MAX / 2)
        return NULL;
    size_t need = round16(n) + HDR;
    unsigned k = 0;
    while (k < NCLASS && class_size(k) < need)
        k++;
    uint8_t *block = NULL;
    size_t sz = need;
    if (k < NCLASS) {
        sz = class_size(k);
        struct cache *c = cache_get();
        if (c != NULL && c->count[k] > 0) {
            block = c->blocks[k][--c->count[k]];
            UNPOISON(block, sz);
            c->reused++;
        } else if (c != NULL) {
            c->mapped++;
        }
    } else {
        k = NO_CLASS;
    }
    if (block == NULL && (block = sodium_malloc(sz)) == NULL)
        return NULL;
    uint8_t *p = block + (sz - round16(n));
    struct hdr h = {MAGIC, k, n};
    memcpy(p - HDR, &h, sizeof(h));
    return p;
}

size_t rf_secmem_size(const void *p)
{
    struct hdr h;
    memcpy(&h, (const uint8_t *)p - HDR, sizeof(h));
    return (size_t)h.n;
}

void rf_secmem_free(void *ptr)
{
    if (ptr == NULL)
        return;
    uint8_t *p = ptr;
    struct hdr h;
    memcpy(&h, p - HDR, sizeof(h));
    if (h.magic != MAGIC || (h.klass != NO_CLASS && h.klass >= NCLASS))
        abort(); /* not ours, or its header was overwritten: stop before freeing */
    size_t sz;
    uint8_t *block = block_of(p, &h, &sz);
    if (h.klass != NO_CLASS) {
        struct cache *c = cache_get();
        if (c != NULL && c->count[h.klass] < cache_cap(h.klass)) {
            sodium_memzero(p, (size_t)h.n);
            sodium_memzero(p - HDR, HDR);
            c->blocks[h.klass][c->count[h.klass]++] = block;
            POISON(block, sz);
            return;
        }
    }
    /* checks the canary, wipes the whole block (sodium_free zeroes before it
     * unmaps: a wipe here too was a second pass over every large buffer) */
    sodium_free(block);
}

void rf_secmem_counts(unsigned long long *reused, unsigned long long *mapped)
{
    struct cache *c = cache_get();
    *reused = c ? c->reused : 0;
    *mapped = c ? c->mapped : 0;
}

/* ---- regions: locked on first touch ---- */

#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 0x01
#endif

static size_t page_size(void)
{
    long ps = sysconf(_SC_PAGESIZE);
    return ps > 0 ? (size_t)ps : 4096;
}

void *rf_secmem_region(size_t n)
{
    size_t ps = page_size();
    if (n == 0 || n > SIZE_MAX / 2)
        return NULL;
    size_t len = (n + ps - 1) / ps * ps;
    uint8_t *base = mmap(NULL, len + 2 * ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        return NULL;
    uint8_t *p = base + ps;
    if (mprotect(p, len, PROT_READ | PROT_WRITE) != 0) {
        munmap(base, len + 2 * ps);
        return NULL;
    }
    /* Locked as touched. Over RLIMIT_MEMLOCK the region stays unlocked, as
     * sodium_malloc's memory does when its mlock fails (the sandbox's start
     * report warns an admin whose limit is too low for the secrets). */
    (void)syscall(SYS_mlock2, p, len, MLOCK_ONFAULT);
#ifdef MADV_DONTDUMP
    (void)madvise(p, len, MADV_DONTDUMP);
#endif
    return p;
}

void rf_secmem_region_free(void *ptr, size_t n)
{
    if (ptr == NULL)
        return;
    size_t ps = page_size();
    size_t len = (n + ps - 1) / ps * ps;
    sodium_memzero(ptr, len);
    (void)munlock(ptr, len);
    munmap((uint8_t *)ptr - ps, len + 2 * ps);
}
