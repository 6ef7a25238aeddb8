/* SPDX-License-Identifier: MIT */
/*
 * store_marker: detects that Redis lost dispatchd's state. The first time
 * this process is about to write state (a reservation or a result), it makes
 * sure the marker key dispatchd:store_id (under the key prefix) exists: SET
 * NX of a random id, then GET, and it remembers the id it read back (its own
 * or the one another instance wrote first). The marker is checked at every
 * (re)connect of a store's connection, and by a GET at the head of a
 * batch's loads (RT1, once an id is remembered), of its first reservation
 * round and of its records (dd_store_marker_verdict(), through
 * store_cmd.h). A missing marker, or one
 * holding another id, while this process remembers an id means the data set
 * was flushed or replaced: the state is declared lost (error log
 * redis_state_lost, counter redis_state_lost_total), /readyz reports it and
 * every batch call of every store fails with a clear error, so the workers
 * keep their jobs and retry, until an operator acknowledges
 * (dd_store_state_ack()). The next marker check then writes the remembered
 * id back (SET NX, so a marker another process wrote wins) and adopts
 * whatever the marker holds; other processes that remember the same id
 * recover at their next check, when they find it restored. A brand-new
 * Redis (no marker, and nothing remembered) is simply adopted.
 *
 * DESIGN: the state is process-wide (all workers' stores share one Redis
 * and one verdict), guarded by `mu`, row 8 of "Lock order" in
 * pipeline_int.h: never held during I/O, and the only lock taken under it
 * is the log's (the lost and recovered lines are logged under it); `lost_flag`
 * mirrors `lost` for lock-free readers (the /readyz callback).
 */
#include "store_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "util.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char known_id[DD_STORE_MARKER_ID_SIZE]; /* mu; "" = none seen */
static int lost;                               /* mu */
static int ack_pending;                        /* mu */
/* Bumped at every recovery (mu). A reading of the marker taken before a
 * recovery (a GET sent while the loss was being repaired by another
 * worker) is stale: it must not declare the loss again. */
static uint64_t generation;
static atomic_int lost_flag; /* mirrors lost */

const char dd_store_state_lost_reason[] =
    "redis state lost (store id marker missing or changed); acknowledge with "
    "POST /admin/redis-state-lost/ack";

/* A random id of 32 hex digits. */
static void new_id(char out[DD_STORE_MARKER_ID_SIZE]) {
    unsigned char b[16];
    uint64_t x;

    if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
        x = (uint64_t)dd_now_us() ^ ((uint64_t)getpid() << 32);
        for (size_t i = 0; i < sizeof(b); i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b[i] = (unsigned char)x;
        }
    }
    for (size_t i = 0; i < sizeof(b); i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* mu held. */
static void declare_lost(const char *key, const char *why) {
    if (lost)
        return;
    lost = 1;
    atomic_store(&lost_flag, 1);
    dd_metrics_inc(DD_C_REDIS_STATE_LOST);
    DD_LOG(DD_LOG_ERROR, "store", "redis_state_lost",
           "redis lost dispatchd's state: %s %s (expected id %s); answering "
           "nothing until POST /admin/redis-state-lost/ack",
           key, why, known_id);
}

/* mu held: adopt the marker value v (len bytes) after a recovery. */
static void recover(const char *v, size_t len, const char *how) {
    dd_strlcpy(known_id, v,
               len < sizeof(known_id) ? len + 1 : sizeof(known_id));
    lost = 0;
    ack_pending = 0;
    generation++;
    atomic_store(&lost_flag, 0);
    DD_LOG(DD_LOG_WARN, "store", "redis_state_loss_acknowledged",
           "redis state loss %s: store id marker now %s; answering again", how,
           known_id);
}

/* SET key id NX, GET key in one round trip. *val gets the GET reply (owned)
 * on DD_OK. */
static int set_nx_get(dd_store_conn_t *cn, const char *id, redisReply **val,
                      char *errstr, size_t errstr_size) {
    const char *set[4] = {"SET", cn->marker_key, id, "NX"};
    const size_t setlen[4] = {3, strlen(cn->marker_key), strlen(id), 2};
    const char *get[2] = {"GET", cn->marker_key};
    const size_t getlen[2] = {3, strlen(cn->marker_key)};
    redisReply *r;

    *val = NULL;
    if (dd_store_conn_append_argv(cn, 4, set, setlen) != DD_OK ||
        dd_store_conn_append_argv(cn, 2, get, getlen) != DD_OK) {
        dd_store_conn_lost(cn, "append", errstr, errstr_size);
        return DD_ERR;
    }
    if (dd_store_conn_get_reply(cn, &r, errstr, errstr_size) != DD_OK)
        return DD_ERR;
    /* OK or nil; an error reply (OOM, READONLY, ...) is the reason the GET
     * finds nothing, so it is the one to report. */
    if (r->type == REDIS_REPLY_ERROR)
        dd_set_error(errstr, errstr_size, "redis SET %s: %s", cn->marker_key,
                     r->str);
    if (dd_store_conn_get_reply(cn, val, errstr, errstr_size) != DD_OK) {
        freeReplyObject(r);
        return DD_ERR;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        freeReplyObject(r);
        freeReplyObject(*val);
        *val = NULL;
        dd_store_conn_drop(cn);
        return DD_ERR;
    }
    freeReplyObject(r);
    if ((*val)->type != REDIS_REPLY_STRING ||
        (*val)->len >= DD_STORE_MARKER_ID_SIZE) {
        dd_set_error(errstr, errstr_size, "redis GET %s: %s", cn->marker_key,
                     (*val)->type == REDIS_REPLY_ERROR ? (*val)->str
                                                       : "unexpected reply");
        freeReplyObject(*val);
        *val = NULL;
        dd_store_conn_drop(cn);
        return DD_ERR;
    }
    return DD_OK;
}

int dd_store_marker_check(dd_store_conn_t *cn, char *errstr,
                          size_t errstr_size) {
    const char *get[2] = {"GET", cn->marker_key};
    const size_t getlen[2] = {3, strlen(cn->marker_key)};
    char id[DD_STORE_MARKER_ID_SIZE];
    redisReply *r;
    uint64_t gen;
    int ack;

    pthread_mutex_lock(&mu);
    gen = generation;
    pthread_mutex_unlock(&mu);
    if (dd_store_conn_command(cn, "GET", 2, get, getlen, &r, errstr,
                              errstr_size) != DD_OK)
        return DD_ERR;
    if ((r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL) ||
        (r->type == REDIS_REPLY_STRING && r->len >= DD_STORE_MARKER_ID_SIZE)) {
        dd_set_error(errstr, errstr_size, "redis GET %s: %s", cn->marker_key,
                     r->type == REDIS_REPLY_ERROR ? r->str
                                                  : "unexpected reply");
        freeReplyObject(r);
        dd_store_conn_drop(cn);
        return DD_ERR;
    }
    pthread_mutex_lock(&mu);
    if (gen != generation) {
        /* Another worker recovered while this GET was on its way. */
    } else if (r->type == REDIS_REPLY_NIL) {
        if (known_id[0] != '\0' && !ack_pending)
            declare_lost(cn->marker_key, "is missing");
    } else if (known_id[0] == '\0') {
        dd_strlcpy(known_id, r->str,
                   r->len < sizeof(known_id) ? r->len + 1 : sizeof(known_id));
    } else if (r->len == strlen(known_id) &&
               memcmp(r->str, known_id, r->len) == 0) {
        if (lost)
            recover(r->str, r->len, "acknowledged elsewhere");
    } else if (!ack_pending) {
        declare_lost(cn->marker_key, "holds another id");
    }
    ack = lost && ack_pending;
    dd_strlcpy(id, known_id, sizeof(id));
    pthread_mutex_unlock(&mu);
    freeReplyObject(r);
    if (!ack)
        return DD_OK;

    /* Acknowledged: put the remembered id back unless a marker exists,
     * and adopt what the marker holds. */
    if (set_nx_get(cn, id, &r, errstr, errstr_size) != DD_OK)
        return DD_ERR;
    pthread_mutex_lock(&mu);
    if (lost)
        recover(r->str, r->len, "acknowledged");
    pthread_mutex_unlock(&mu);
    freeReplyObject(r);
    return DD_OK;
}

int dd_store_marker_known(char *id, size_t id_size, uint64_t *gen) {
    pthread_mutex_lock(&mu);
    dd_strlcpy(id, known_id, id_size);
    *gen = generation;
    pthread_mutex_unlock(&mu);
    return id[0] != '\0';
}

int dd_store_marker_ensure(dd_store_conn_t *cn, char *id, size_t id_size,
                           uint64_t *gen, char *errstr, size_t errstr_size) {
    char mine[DD_STORE_MARKER_ID_SIZE];
    redisReply *r;

    pthread_mutex_lock(&mu);
    dd_strlcpy(id, known_id, id_size);
    *gen = generation;
    pthread_mutex_unlock(&mu);
    if (id[0] != '\0')
        return DD_OK;
    new_id(mine);
    if (set_nx_get(cn, mine, &r, errstr, errstr_size) != DD_OK)
        return DD_ERR;
    pthread_mutex_lock(&mu);
    if (known_id[0] == '\0')
        dd_strlcpy(known_id, r->str,
                   r->len < sizeof(known_id) ? r->len + 1 : sizeof(known_id));
    dd_strlcpy(id, known_id, id_size);
    pthread_mutex_unlock(&mu);
    freeReplyObject(r);
    return DD_OK;
}

void dd_store_marker_lost(const char *key, const char *why, uint64_t gen) {
    pthread_mutex_lock(&mu);
    if (gen == generation)
        declare_lost(key, why);
    pthread_mutex_unlock(&mu);
}

int dd_store_marker_verdict(const dd_store_conn_t *cn, const redisReply *r,
                            const char *id, uint64_t gen, char *errstr,
                            size_t errstr_size) {
    if (r->type == REDIS_REPLY_STRING && r->len == strlen(id) &&
        memcmp(r->str, id, r->len) == 0)
        return DD_OK;
    if (r->type == REDIS_REPLY_ERROR) {
        dd_set_error(errstr, errstr_size, "redis GET %s: %s", cn->marker_key,
                     r->str);
        return DD_ERR;
    }
    if (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL) {
        dd_set_error(errstr, errstr_size, "redis GET %s: unexpected reply",
                     cn->marker_key);
        return DD_ERR;
    }
    dd_store_marker_lost(cn->marker_key,
                         r->type == REDIS_REPLY_NIL
                             ? "is missing (batch check)"
                             : "holds another id (batch check)",
                         gen);
    dd_set_error(errstr, errstr_size, "%s", dd_store_state_lost_reason);
    return DD_ERR;
}

int dd_store_marker_is_lost(void) {
    return atomic_load(&lost_flag);
}

/*----- Public (store.h) -----*/

int dd_store_state_lost(void) {
    return atomic_load(&lost_flag);
}

int dd_store_state_ack(void) {
    int was;

    pthread_mutex_lock(&mu);
    was = lost;
    if (lost && !ack_pending) {
        ack_pending = 1;
        DD_LOG(DD_LOG_WARN, "store", "redis_state_loss_ack",
               "operator acknowledged the loss of redis state; the store id "
               "marker is written again at the next check");
    }
    pthread_mutex_unlock(&mu);
    return was;
}

void dd_store_state_reset(void) {
    pthread_mutex_lock(&mu);
    known_id[0] = '\0';
    lost = 0;
    ack_pending = 0;
    generation++;
    atomic_store(&lost_flag, 0);
    pthread_mutex_unlock(&mu);
}
