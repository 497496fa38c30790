/*
 * secmem.h - memory for secrets (keys, codenames, plaintext), reused.
 *
 * Every block comes from sodium_malloc: locked (never swapped), with a guard
 * page right after the caller's bytes and a canary before them. sodium_malloc
 * and sodium_free cost several system calls each (mmap, mprotect, mlock,
 * munlock, munmap) and, on a machine with more than one core, a TLB shootdown
 * on every core the process runs on; per request on a hot path they became a
 * third of the server's CPU (docs/performance.md). So a freed block is wiped
 * (sodium_memzero of the bytes the caller asked for) and kept in a small
 * per-thread cache by size class, and the next request of that class on that
 * thread takes it back without a system call. Blocks larger than the largest
 * class, and blocks freed when their thread's cache is full, go back to
 * sodium_free, which zeroes the whole block itself (so they are not wiped
 * twice).
 *
 * Invariants:
 * - The caller's n bytes end where the block ends, rounded up to 16 (the
 *   guard page follows within 15 bytes, as with sodium_malloc of a size that
 *   is not a multiple of 16); a 16-byte header before them records the class
 *   and n, so rf_secmem_free needs no size.
 * - A block in a cache holds zeros where a caller's bytes were; under
 *   AddressSanitizer it is poisoned until it is handed out again, so a use
 *   after rf_secmem_free is still caught.
 * - A thread's cache is released (sodium_free) when the thread exits.
 */
#ifndef RF_SECMEM_H
#define RF_SECMEM_H

#include <stddef.h>

/* n bytes (n > 0), uninitialised; NULL when out of memory. */
void *rf_secmem_alloc(size_t n);
/* Wipes and releases p (from rf_secmem_alloc; NULL: nothing). */
void rf_secmem_free(void *p);
/* The n the block was allocated with. */
size_t rf_secmem_size(const void *p);
/* Blocks taken from a cache and blocks newly mapped, by this thread since it
 * started (for tests and benchmarks). */
void rf_secmem_counts(unsigned long long *reused, unsigned long long *mapped);

/* A large table of secrets allocated once (the session table, the KDF
 * queue's slots): n bytes, zeroed, between two guard pages, excluded from
 * core dumps and locked page by page as it is first touched (mlock2 with
 * MLOCK_ONFAULT), so a table sized for thousands of sessions costs memory
 * only for the pages in use. sodium_malloc would fill (and so make resident)
 * every page at once. NULL when out of memory (over RLIMIT_MEMLOCK the
 * region is not locked, as sodium_malloc's memory is not when its mlock
 * fails). rf_secmem_region_free wipes and unmaps (p, n as allocated). */
void *rf_secmem_region(size_t n);
void rf_secmem_region_free(void *p, size_t n);

#endif
