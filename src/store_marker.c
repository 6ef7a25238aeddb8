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
 * Redis Cluster: one key lives on one master, so each master of the slot
 * map has its own marker, dispatchd:store_id:{tag}, the tag being the
 * shortest decimal number that puts the key in the master's first slot
 * range (dd_redis_cluster_tag_key(); store_cluster.c computes the set at
 * every map change). All hold the same id; every check GETs all of them
 * (one GET per master, in one pipeline), and a missing or different one
 * on any master is a loss; the acknowledgement writes the id back to the
 * first (SET NX) and what that one holds to the others. A marker is judged
 * only once this process has seen it hold the id (written it, or read it):
 * a (master, key) pair not seen yet, after a new master, a reshard that
 * moved a master's first slots or a promoted replica, is written (SET NX,
 * GET) and not declared lost, unless it holds another id. Covered: any
 * master flushed, restarted empty or replaced by an empty server at the
 * same slots. Not covered: a flush in the instant between a slot move and
 * the write of the new marker; writes lost by asynchronous replication at
 * a failover (the promoted replica has the marker, not the last writes).
 *
 * DESIGN: the state is process-wide (all workers' stores share one Redis
 * and one verdict), guarded by `mu`, row 8 of "Lock order" in
 * pipeline_int.h: never held during I/O, and the only lock taken under it
 * is the log's (the lost and recovered lines are logged under it); `lost_flag`
 * mirrors `lost` for lock-free readers (the /readyz callback). The set of
 * markers seen (cluster mode) is process-wide too, under `mu`, emptied at a
 * recovery; a connection's list of marker keys belongs to its worker.
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
/* Cluster mode: the markers (key on master) known to hold known_id, so
 * that one missing there is a loss, while a marker of a master or a slot
 * not seen yet is written (mu; emptied at a recovery). */
typedef struct seen_marker {
    char key[DD_STORE_MARKER_KEY_MAX];
    char node[DD_REDIS_CLUSTER_HOST_MAX + 8];
} seen_marker_t;
static seen_marker_t *seen;
static size_t nseen, seen_cap;

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

/*----- Markers of a connection -----*/

size_t dd_store_marker_count(const dd_store_conn_t *cn) {
    return cn->cluster != NULL ? dd_store_cluster_marker_count(cn->cluster) : 1;
}

const char *dd_store_marker_key(const dd_store_conn_t *cn, size_t i) {
    if (cn->cluster != NULL) {
        const dd_store_cluster_marker_t *m =
            dd_store_cluster_marker(cn->cluster, i);
        return m != NULL ? m->key : cn->marker_key;
    }
    return cn->marker_key;
}

/* The master of marker i ("" outside cluster mode). */
static const char *marker_node(const dd_store_conn_t *cn, size_t i) {
    const dd_store_cluster_marker_t *m =
        cn->cluster != NULL ? dd_store_cluster_marker(cn->cluster, i) : NULL;
    return m != NULL ? m->node : "";
}

/* mu held: 1 when marker i of cn is known to hold known_id, so that a
 * missing marker is a loss. Outside cluster mode, always (one marker,
 * ensured with the id). */
static int seen_has(const dd_store_conn_t *cn, size_t i) {
    const char *key, *node;

    if (cn->cluster == NULL)
        return 1;
    key = dd_store_marker_key(cn, i);
    node = marker_node(cn, i);
    for (size_t k = 0; k < nseen; k++)
        if (strcmp(seen[k].key, key) == 0 && strcmp(seen[k].node, node) == 0)
            return 1;
    return 0;
}

/* mu held: marker i of cn holds known_id. */
static void seen_add(const dd_store_conn_t *cn, size_t i) {
    if (cn->cluster == NULL || seen_has(cn, i))
        return;
    if (nseen == seen_cap) {
        seen_cap = seen_cap ? 2 * seen_cap : 8;
        seen = dd_xrealloc(seen, seen_cap * sizeof(*seen));
    }
    dd_strlcpy(seen[nseen].key, dd_store_marker_key(cn, i),
               sizeof(seen[nseen].key));
    dd_strlcpy(seen[nseen].node, marker_node(cn, i), sizeof(seen[nseen].node));
    nseen++;
}

/* mu held. */
static void declare_lost(const dd_store_conn_t *cn, size_t i, const char *why) {
    const char *node = marker_node(cn, i);

    if (lost)
        return;
    lost = 1;
    atomic_store(&lost_flag, 1);
    dd_metrics_inc(DD_C_REDIS_STATE_LOST);
    DD_LOG(DD_LOG_ERROR, "store", "redis_state_lost",
           "redis lost dispatchd's state: %s%s%s %s (expected id %s); "
           "answering nothing until POST /admin/redis-state-lost/ack",
           dd_store_marker_key(cn, i), node[0] != '\0' ? " on " : "", node, why,
           known_id);
}

/* mu held: adopt the marker value v (len bytes) after a recovery. */
static void recover(const char *v, size_t len, const char *how) {
    dd_strlcpy(known_id, v,
               len < sizeof(known_id) ? len + 1 : sizeof(known_id));
    lost = 0;
    ack_pending = 0;
    generation++;
    nseen = 0;
    atomic_store(&lost_flag, 0);
    DD_LOG(DD_LOG_WARN, "store", "redis_state_loss_acknowledged",
           "redis state loss %s: store id marker now %s; answering again", how,
           known_id);
}

/* A usable marker GET reply: a short string or nil. Else errstr filled and
 * the connection dropped. */
static int usable(dd_store_conn_t *cn, const char *key, const redisReply *r,
                  char *errstr, size_t errstr_size) {
    if ((r->type == REDIS_REPLY_STRING && r->len < DD_STORE_MARKER_ID_SIZE) ||
        r->type == REDIS_REPLY_NIL)
        return DD_OK;
    dd_set_error(errstr, errstr_size, "redis GET %s: %s", key,
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    dd_store_conn_drop(cn);
    return DD_ERR;
}

/* SET key id [NX], GET key in one round trip. *val gets the GET reply
 * (owned, a string) on DD_OK. */
static int set_get(dd_store_conn_t *cn, const char *key, const char *id, int nx,
                   redisReply **val, char *errstr, size_t errstr_size) {
    const char *set[4] = {"SET", key, id, "NX"};
    const size_t setlen[4] = {3, strlen(key), strlen(id), 2};
    const char *get[2] = {"GET", key};
    const size_t getlen[2] = {3, strlen(key)};
    redisReply *r;

    *val = NULL;
    if (dd_store_conn_append_argv(cn, nx ? 4 : 3, set, setlen) != DD_OK ||
        dd_store_conn_append_argv(cn, 2, get, getlen) != DD_OK) {
        dd_store_conn_lost(cn, "append", errstr, errstr_size);
        return DD_ERR;
    }
    if (dd_store_conn_get_reply(cn, &r, errstr, errstr_size) != DD_OK)
        return DD_ERR;
    /* OK or nil; an error reply (OOM, READONLY, ...) is the reason the GET
     * finds nothing, so it is the one to report. */
    if (r->type == REDIS_REPLY_ERROR)
        dd_set_error(errstr, errstr_size, "redis SET %s: %s", key, r->str);
    if (dd_store_conn_get_reply(cn, val, errstr, errstr_size) != DD_OK) {
        dd_store_reply_done(r);
        return DD_ERR;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        dd_store_reply_done(r);
        dd_store_reply_done(*val);
        *val = NULL;
        dd_store_conn_drop(cn);
        return DD_ERR;
    }
    dd_store_reply_done(r);
    if ((*val)->type != REDIS_REPLY_STRING ||
        (*val)->len >= DD_STORE_MARKER_ID_SIZE) {
        dd_set_error(errstr, errstr_size, "redis GET %s: %s", key,
                     (*val)->type == REDIS_REPLY_ERROR ? (*val)->str
                                                       : "unexpected reply");
        dd_store_reply_done(*val);
        *val = NULL;
        dd_store_conn_drop(cn);
        return DD_ERR;
    }
    return DD_OK;
}

/* Cluster mode: every marker of cn not known to hold id (a master, or a
 * marker slot, this process has not seen) gets it (SET NX, GET): one that
 * holds another id is a loss, one that holds id is seen from then on. */
static int ensure_new(dd_store_conn_t *cn, const char *id, uint64_t gen,
                      char *errstr, size_t errstr_size) {
    size_t n = dd_store_marker_count(cn);

    if (cn->cluster == NULL || id[0] == '\0' || dd_store_marker_is_lost())
        return DD_OK;
    for (size_t i = 0; i < n; i++) {
        redisReply *r;
        int have;

        pthread_mutex_lock(&mu);
        have = seen_has(cn, i);
        pthread_mutex_unlock(&mu);
        if (have)
            continue;
        if (set_get(cn, dd_store_marker_key(cn, i), id, 1, &r, errstr,
                    errstr_size) != DD_OK)
            return DD_ERR;
        pthread_mutex_lock(&mu);
        if (gen == generation) {
            if (r->len == strlen(id) && memcmp(r->str, id, r->len) == 0)
                seen_add(cn, i);
            else if (!ack_pending)
                declare_lost(cn, i, "holds another id");
        }
        pthread_mutex_unlock(&mu);
        dd_store_reply_done(r);
    }
    return DD_OK;
}

/* After dd_store_state_ack(): the first marker gets the remembered id back
 * unless it exists (SET NX, so a marker another process wrote wins), every
 * other marker what the first holds (SET), and that is adopted. */
static int ack_write(dd_store_conn_t *cn, const char *id, char *errstr,
                     size_t errstr_size) {
    size_t n = dd_store_marker_count(cn);
    char v[DD_STORE_MARKER_ID_SIZE];
    redisReply *r;

    if (set_get(cn, dd_store_marker_key(cn, 0), id, 1, &r, errstr,
                errstr_size) != DD_OK)
        return DD_ERR;
    dd_strlcpy(v, r->str, r->len + 1);
    dd_store_reply_done(r);
    for (size_t i = 1; i < n; i++) {
        if (set_get(cn, dd_store_marker_key(cn, i), v, 0, &r, errstr,
                    errstr_size) != DD_OK)
            return DD_ERR;
        dd_store_reply_done(r);
    }
    pthread_mutex_lock(&mu);
    if (lost) {
        recover(v, strlen(v), "acknowledged");
        for (size_t i = 0; i < n; i++)
            seen_add(cn, i);
    }
    pthread_mutex_unlock(&mu);
    return DD_OK;
}

int dd_store_marker_check(dd_store_conn_t *cn, char *errstr,
                          size_t errstr_size) {
    size_t n = dd_store_marker_count(cn), same = 0;
    char id[DD_STORE_MARKER_ID_SIZE];
    redisReply **r;
    uint64_t gen;
    int ack, rc = DD_OK;

    if (n == 0)
        return DD_OK;
    pthread_mutex_lock(&mu);
    gen = generation;
    pthread_mutex_unlock(&mu);
    r = dd_xcalloc(n, sizeof(redisReply *));
    if (cn->cluster == NULL) {
        /* One server: the GET in its own round trip. */
        const char *get[2] = {"GET", cn->marker_key};
        const size_t getlen[2] = {3, strlen(cn->marker_key)};

        rc = dd_store_conn_command(cn, "GET", 2, get, getlen, &r[0], errstr,
                                   errstr_size);
    } else {
        /* One GET per marker, in one pipeline (each to its master). */
        for (size_t i = 0; i < n && rc == DD_OK; i++) {
            const char *get[2] = {"GET", dd_store_marker_key(cn, i)};
            const size_t getlen[2] = {3, strlen(get[1])};

            if (dd_store_conn_append_argv(cn, 2, get, getlen) != DD_OK) {
                dd_store_conn_lost(cn, "append", errstr, errstr_size);
                rc = DD_ERR;
            }
        }
        for (size_t i = 0; i < n && rc == DD_OK; i++)
            rc = dd_store_conn_get_reply(cn, &r[i], errstr, errstr_size);
    }
    for (size_t i = 0; i < n && rc == DD_OK; i++)
        rc = usable(cn, dd_store_marker_key(cn, i), r[i], errstr, errstr_size);
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < n && rc == DD_OK && gen == generation; i++) {
        /* gen != generation: another worker recovered while these GETs
         * were on their way. */
        if (r[i]->type == REDIS_REPLY_NIL) {
            if (known_id[0] != '\0' && !ack_pending && seen_has(cn, i))
                declare_lost(cn, i, "is missing");
        } else if (known_id[0] == '\0') {
            dd_strlcpy(known_id, r[i]->str,
                       r[i]->len < sizeof(known_id) ? r[i]->len + 1
                                                    : sizeof(known_id));
            seen_add(cn, i);
            same++;
        } else if (r[i]->len == strlen(known_id) &&
                   memcmp(r[i]->str, known_id, r[i]->len) == 0) {
            seen_add(cn, i);
            same++;
        } else if (!ack_pending) {
            declare_lost(cn, i, "holds another id");
        }
    }
    if (rc == DD_OK && gen == generation && lost && same == n)
        recover(known_id, strlen(known_id), "acknowledged elsewhere");
    ack = lost && ack_pending;
    dd_strlcpy(id, known_id, sizeof(id));
    gen = generation;
    pthread_mutex_unlock(&mu);
    for (size_t i = 0; i < n; i++)
        if (r[i] != NULL)
            dd_store_reply_done(r[i]);
    dd_free(r);
    if (rc != DD_OK)
        return DD_ERR;
    if (ack)
        return ack_write(cn, id, errstr, errstr_size);
    /* Markers of masters (or slots) not seen yet are written, not judged. */
    return ensure_new(cn, id, gen, errstr, errstr_size);
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
    if (id[0] == '\0') {
        new_id(mine);
        if (set_get(cn, dd_store_marker_key(cn, 0), mine, 1, &r, errstr,
                    errstr_size) != DD_OK)
            return DD_ERR;
        pthread_mutex_lock(&mu);
        if (known_id[0] == '\0')
            dd_strlcpy(known_id, r->str,
                       r->len < sizeof(known_id) ? r->len + 1
                                                 : sizeof(known_id));
        if (dd_store_marker_count(cn) > 0 && r->len == strlen(known_id) &&
            memcmp(r->str, known_id, r->len) == 0)
            seen_add(cn, 0);
        dd_strlcpy(id, known_id, id_size);
        *gen = generation;
        pthread_mutex_unlock(&mu);
        dd_store_reply_done(r);
    }
    return ensure_new(cn, id, *gen, errstr, errstr_size);
}

int dd_store_marker_verdict(const dd_store_conn_t *cn, size_t i,
                            const redisReply *r, const char *id, uint64_t gen,
                            char *errstr, size_t errstr_size) {
    const char *key = dd_store_marker_key(cn, i);
    int have;

    if (r->type == REDIS_REPLY_STRING && r->len == strlen(id) &&
        memcmp(r->str, id, r->len) == 0)
        return DD_OK;
    if (r->type == REDIS_REPLY_ERROR) {
        dd_set_error(errstr, errstr_size, "redis GET %s: %s", key, r->str);
        return DD_ERR;
    }
    if (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL) {
        dd_set_error(errstr, errstr_size, "redis GET %s: unexpected reply",
                     key);
        return DD_ERR;
    }
    pthread_mutex_lock(&mu);
    have = seen_has(cn, i);
    pthread_mutex_unlock(&mu);
    if (r->type == REDIS_REPLY_NIL && !have) {
        /* A marker this process never wrote nor saw: the next connect
         * writes it (dd_store_marker_check()). */
        dd_set_error(errstr, errstr_size,
                     "redis marker %s on %s not written yet", key,
                     marker_node(cn, i));
        return DD_ERR;
    }
    pthread_mutex_lock(&mu);
    if (gen == generation)
        declare_lost(cn, i,
                     r->type == REDIS_REPLY_NIL
                         ? "is missing (batch check)"
                         : "holds another id (batch check)");
    pthread_mutex_unlock(&mu);
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
    nseen = 0;
    lost = 0;
    ack_pending = 0;
    generation++;
    atomic_store(&lost_flag, 0);
    pthread_mutex_unlock(&mu);
}
