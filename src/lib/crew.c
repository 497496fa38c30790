/*
 * crew.c - worker threads run a function on each round handed out (crew.h).
 */
#include "lib/crew.h"

static void *member_run(void *p)
{
    struct rf_crew_member *m = p;
    struct rf_crew *c = m->crew;
    unsigned seen = 0;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (c->round == seen && !c->stop)
            pthread_cond_wait(&c->go, &c->mu);
        if (c->stop)
            break;
        seen = c->round;
        pthread_mutex_unlock(&c->mu);
        c->fn(m->arg);
        pthread_mutex_lock(&c->mu);
        if (++c->finished == c->n)
            pthread_cond_signal(&c->done);
    }
    pthread_mutex_unlock(&c->mu);
    if (c->at_end)
        c->at_end(m->arg);
    return NULL;
}

void rf_crew_start(struct rf_crew *c, int nthreads, void (*fn)(void *arg), void *args, size_t size,
                   void (*at_end)(void *arg))
{
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->go, NULL);
    pthread_cond_init(&c->done, NULL);
    c->round = 0;
    c->n = 0;
    c->finished = 0;
    c->stop = 0;
    c->fn = fn;
    c->at_end = at_end;
    if (nthreads > RF_CREW_MAX)
        nthreads = RF_CREW_MAX;
    for (int i = 1; i < nthreads; i++) {
        struct rf_crew_member *m = &c->members[i];
        m->crew = c;
        m->arg = (char *)args + (size_t)i * size;
        /* c->n only grows here, before any round: no lock needed yet */
        if (pthread_create(&m->th, NULL, member_run, m) != 0)
            break; /* fewer threads: slower, not wrong */
        c->n = i;
    }
}

void rf_crew_go(struct rf_crew *c)
{
    pthread_mutex_lock(&c->mu);
    c->finished = 0;
    c->round++;
    pthread_cond_broadcast(&c->go);
    pthread_mutex_unlock(&c->mu);
}

void rf_crew_wait(struct rf_crew *c)
{
    pthread_mutex_lock(&c->mu);
    while (c->finished < c->n)
        pthread_cond_wait(&c->done, &c->mu);
    pthread_mutex_unlock(&c->mu);
}

void rf_crew_stop(struct rf_crew *c)
{
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    pthread_cond_broadcast(&c->go);
    pthread_mutex_unlock(&c->mu);
    for (int i = 1; i <= c->n; i++)
        pthread_join(c->members[i].th, NULL);
    pthread_cond_destroy(&c->done);
    pthread_cond_destroy(&c->go);
    pthread_mutex_destroy(&c->mu);
}
