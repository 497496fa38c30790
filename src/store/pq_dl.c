/*
 * pq_dl.c - libpq opened at run time (pq_dl.h).
 */
#define RF_PQ_DL_IMPL
#include "store/pq_dl.h"
#include "lib/err.h"
#include "lib/log.h"

#include <dlfcn.h>
#include <pthread.h>

struct rf_pq_api rf_pq;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int loaded;

static void load(void)
{
    void *h = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
    if (h == NULL)
        return;
#define RF_PQ_RESOLVE(f)                                                                           \
    if ((*(void **)&rf_pq.f = dlsym(h, #f)) == NULL)                                               \
        return;
    RF_PQ_FUNCS(RF_PQ_RESOLVE)
#undef RF_PQ_RESOLVE
    loaded = 1;
}

int rf_pq_load(void)
{
    (void)pthread_once(&once, load);
    if (!loaded) {
        rf_log_warn("store: cannot load libpq.so.5: install the libpq5 package");
        return RF_ERR_DB;
    }
    return 0;
}
