/*
 * crew.h - a crew of worker threads that run one function on each round of
 * work a leader hands out, until stopped: the threads are made once for a
 * long pass of many batches (not once per batch), and the leader goes on
 * with work of its own (writing the batch before, reading the next one)
 * while the crew works, then waits for the round to end.
 *
 *   struct rf_crew c;
 *   rf_crew_start(&c, n, fn, args, sizeof(args[0]), done);  (n threads at most)
 *   for each batch: set up what fn reads; rf_crew_go(&c); ... fn(&args[0]) on
 *       the leader's thread too, if it helps ...; rf_crew_wait(&c);
 *   rf_crew_stop(&c);
 *
 * fn(arg) runs once per round on each crew thread, with that thread's own
 * arg (args + i * size, i from 1: args[0] is left to the leader). What fn
 * reads is set before rf_crew_go and stays as it is until rf_crew_wait
 * returns (the mutex orders both). done(arg), if not NULL, runs on each
 * thread as it ends (per-thread state to release). Fewer threads than asked
 * (pthread_create failing) is slower, never wrong: rf_crew_go/wait work
 * with none.
 */
#ifndef RF_CREW_H
#define RF_CREW_H

#include <pthread.h>
#include <stddef.h>

#define RF_CREW_MAX 16

struct rf_crew;
struct rf_crew_member {
    struct rf_crew *crew;
    void *arg;
    pthread_t th;
};

struct rf_crew {
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    unsigned round; /* rounds handed out (under mu) */
    int n;          /* crew threads running (members[1..n]) */
    int finished;   /* ... that finished the current round */
    int stop;
    void (*fn)(void *arg);
    void (*at_end)(void *arg);
    struct rf_crew_member members[RF_CREW_MAX];
};

/* Starts up to nthreads - 1 crew threads (the leader is the nthreads-th):
 * member i (1 <= i < nthreads) gets args + i * size. */
void rf_crew_start(struct rf_crew *c, int nthreads, void (*fn)(void *arg), void *args, size_t size,
                   void (*at_end)(void *arg));
/* A new round: every crew thread runs fn once. */
void rf_crew_go(struct rf_crew *c);
/* Waits until every crew thread finished the round. */
void rf_crew_wait(struct rf_crew *c);
/* Ends the crew threads (after the last rf_crew_wait) and frees the crew. */
void rf_crew_stop(struct rf_crew *c);

#endif
