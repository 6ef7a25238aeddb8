/* SPDX-License-Identifier: MIT */
/*
 * store_cluster: Redis Cluster routing inside the connection layer of the
 * Redis adapter. Its one job is to make a Redis Cluster look like one
 * server to the command layer (store.c, store_commit.c, store_marker.c),
 * which keeps calling dd_store_conn_append_argv() and
 * dd_store_conn_get_reply(): every command goes to the master of the hash
 * slot of its key (argv[1]; a command without key to the master of slot
 * 0), each master has its own hiredis context, and the replies come back
 * in the order the commands were appended.
 *
 * A pipeline still costs about one round trip: appending only buffers,
 * and the first read of a pipeline first writes the buffer of every node
 * (hiredis writes a context's buffer only when that context is read), so
 * every node works on its commands while the first reply is awaited.
 * Every appended command keeps its RESP bytes, so that it can be sent
 * again: after "MOVED slot host:port" the slot's entry points to the new
 * master (the whole map is read again at the next ensure) and the command
 * goes there; after "ASK slot host:port" it goes there once, after ASKING.
 * Before a command is sent again to a node that still owes replies of the
 * pipeline, those replies are read ahead and kept, so the order holds. At
 * most DD_STORE_CLUSTER_MAX_REDIRECTS redirections per command, then the
 * call fails as a transient error. A lost context fails the call; the
 * caller then drops every context (dd_store_cluster_close_all()), and the
 * next ensure reads CLUSTER SLOTS again from a known master or a seed and
 * connects every master. CLUSTERDOWN and TRYAGAIN are error replies the
 * command layer classes as transient; they mark the map stale too.
 *
 * The pure parts (hash slots, the CLUSTER SLOTS parser, MOVED/ASK) are in
 * redis_cluster.c.
 *
 * DESIGN: like the rest of the connection layer, a dd_store_cluster_t
 * belongs to one dd_store_conn_t and so to one worker thread; nothing here
 * locks, and every context is used by that thread only. The slot map, the
 * contexts and the commands of the pipeline in flight are owned here. The
 * one process-wide value is the fingerprint of the slot map last logged
 * (an atomic, exchanged without a lock), so that the workers, which each
 * read the same map, log a change once.
 */
#include "store_int.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "redis_cluster.h"
#include "util.h"

#define DD_STORE_CLUSTER_MAX_REDIRECTS 5

/* One appended command of the pipeline in flight. */
typedef struct sent {
    int node;      /* index in map.nodes it was (last) sent to */
    char *cmd;     /* owned RESP bytes, to send it again */
    size_t len;    /* bytes of cmd */
    redisReply *r; /* owned reply read ahead, or NULL */
} sent_t;

struct dd_store_cluster {
    dd_redis_seed_t *seeds; /* owned copies */
    size_t nseeds;
    dd_redis_cluster_map_t map; /* no node before the first refresh */
    redisContext **ctx;         /* per map node; NULL: not connected */
    int stale;                  /* read CLUSTER SLOTS at the next ensure */
    int patched;                /* a redirection changed the map since */
    sent_t *sent;               /* the pipeline in flight */
    size_t nsent, cap, next;    /* next: index of the next reply */
    int flushed;                /* every node's buffer written */
    char why[256];              /* why the last append failed */
    dd_store_cluster_stats_t stats;
    /* The lost-state markers of the map (store_marker.c): one per master
     * that can hold a key of ours, recomputed after a map change. */
    dd_store_cluster_marker_t *markers; /* owned */
    size_t nmarkers;
    int markers_stale; /* the map changed since they were computed */
};

/*----- Lifecycle -----*/

dd_store_cluster_t *dd_store_cluster_new(const dd_redis_seed_t *seeds,
                                         size_t nseeds) {
    dd_store_cluster_t *cl = dd_xcalloc(1, sizeof(*cl));

    cl->seeds = dd_xcalloc(nseeds, sizeof(*cl->seeds));
    for (size_t i = 0; i < nseeds; i++) {
        cl->seeds[i].host = dd_xstrdup(seeds[i].host);
        cl->seeds[i].port = seeds[i].port;
    }
    cl->nseeds = nseeds;
    cl->stale = 1;
    cl->flushed = 1;
    return cl;
}

static void pipeline_reset(dd_store_cluster_t *cl) {
    for (size_t i = 0; i < cl->nsent; i++) {
        dd_free(cl->sent[i].cmd);
        if (cl->sent[i].r != NULL)
            dd_store_reply_done(cl->sent[i].r);
    }
    cl->nsent = cl->next = 0;
    cl->flushed = 1;
}

void dd_store_cluster_close_all(dd_store_cluster_t *cl) {
    for (size_t i = 0; i < cl->map.nnodes; i++) {
        redisFree(cl->ctx[i]);
        cl->ctx[i] = NULL;
    }
    pipeline_reset(cl);
    cl->stale = 1;
}

void dd_store_cluster_destroy(dd_store_cluster_t *cl) {
    if (cl == NULL)
        return;
    dd_store_cluster_close_all(cl);
    dd_free(cl->ctx);
    dd_free(cl->sent);
    dd_free(cl->markers);
    dd_redis_cluster_map_close(&cl->map);
    for (size_t i = 0; i < cl->nseeds; i++)
        dd_free(cl->seeds[i].host);
    dd_free(cl->seeds);
    dd_free(cl);
}

int dd_store_cluster_is_stale(const dd_store_cluster_t *cl) {
    return cl->stale;
}

int dd_store_cluster_is_up(const dd_store_cluster_t *cl) {
    if (cl->map.nnodes == 0)
        return 0;
    for (size_t i = 0; i < cl->map.nnodes; i++)
        if (cl->ctx[i] == NULL)
            return 0;
    return 1;
}

const char *dd_store_cluster_why(const dd_store_cluster_t *cl) {
    return cl->why[0] != '\0' ? cl->why : "out of memory";
}

void dd_store_cluster_get_stats(const dd_store_cluster_t *cl,
                                dd_store_cluster_stats_t *out) {
    *out = cl->stats;
}

/*----- Slot map -----*/

/* Fingerprint (FNV-1a) of the slot map last logged by any worker. */
static _Atomic uint64_t logged_map;

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;

    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* One line when the map changes: the masters and how many slots each;
 * not again when another worker read the same map. */
static void log_map(const dd_redis_cluster_map_t *m) {
    char line[2048];
    size_t used = 0, served = 0;
    size_t count[DD_REDIS_CLUSTER_MAX_NODES] = {0};
    uint64_t fp = 0xcbf29ce484222325ULL;

    for (size_t i = 0; i < m->nnodes; i++) {
        fp = fnv1a(fp, m->nodes[i].host, strlen(m->nodes[i].host) + 1);
        fp = fnv1a(fp, &m->nodes[i].port, sizeof(m->nodes[i].port));
    }
    fp = fnv1a(fp, m->slot_node, sizeof(m->slot_node));
    if (atomic_exchange(&logged_map, fp) == fp)
        return;

    for (size_t s = 0; s < DD_REDIS_CLUSTER_SLOTS; s++) {
        if (m->slot_node[s] != DD_REDIS_CLUSTER_NO_NODE) {
            count[m->slot_node[s]]++;
            served++;
        }
    }
    line[0] = '\0';
    for (size_t i = 0; i < m->nnodes && used + 1 < sizeof(line); i++) {
        int n = snprintf(line + used, sizeof(line) - used, "%s%s:%d (%zu)",
                         i > 0 ? ", " : "", m->nodes[i].host, m->nodes[i].port,
                         count[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    DD_LOG(DD_LOG_INFO, "store", "redis_cluster_slots",
           "redis cluster slot map: %zu masters, %zu of %d slots served: %s",
           m->nnodes, served, DD_REDIS_CLUSTER_SLOTS, line);
}

/* Installs m (taken) as the slot map: contexts of masters that stay are
 * kept, tmp (taken, to host:port, may be NULL) becomes the context of its
 * master if it is one, the others are closed. */
static void map_install(dd_store_cluster_t *cl, dd_redis_cluster_map_t *m,
                        redisContext *tmp, const char *host, int port) {
    redisContext **ctx = dd_xcalloc(m->nnodes, sizeof(redisContext *));
    int changed = cl->map.nnodes == 0 || cl->patched ||
                  !dd_redis_cluster_map_equal(&cl->map, m);

    for (size_t j = 0; j < m->nnodes; j++) {
        int i = dd_redis_cluster_map_find(&cl->map, m->nodes[j].host,
                                          m->nodes[j].port);
        if (i >= 0 && cl->ctx[i] != NULL) {
            ctx[j] = cl->ctx[i];
            cl->ctx[i] = NULL;
        } else if (tmp != NULL && m->nodes[j].port == port &&
                   strcmp(m->nodes[j].host, host) == 0) {
            ctx[j] = tmp;
            tmp = NULL;
        }
    }
    for (size_t i = 0; i < cl->map.nnodes; i++)
        redisFree(cl->ctx[i]);
    redisFree(tmp);
    dd_free(cl->ctx);
    dd_redis_cluster_map_close(&cl->map);
    cl->map = *m;
    cl->ctx = ctx;
    memset(m, 0, sizeof(*m));
    cl->stale = 0;
    cl->patched = 0;
    cl->stats.refreshes++;
    cl->markers_stale = 1;
    if (changed) {
        cl->stats.map_changes++;
        log_map(&cl->map);
    }
}

/* CLUSTER SLOTS on c (at host:port). DD_OK with *m, else errstr. A lost
 * context is freed and *c set to NULL. */
static int slots_read(redisContext **c, const char *host, int port,
                      dd_redis_cluster_map_t *m, char *errstr,
                      size_t errstr_size) {
    redisReply *r = redisCommand(*c, "CLUSTER SLOTS");
    char why[256];

    if (r == NULL) {
        dd_set_error(errstr, errstr_size, "redis CLUSTER SLOTS %s:%d: %s", host,
                     port, (*c)->err ? (*c)->errstr : "no reply");
        redisFree(*c);
        *c = NULL;
        return DD_ERR;
    }
    if (dd_redis_cluster_map_parse(r, m, why, sizeof(why)) != DD_OK) {
        dd_set_error(errstr, errstr_size, "redis %s (from %s:%d)", why, host,
                     port);
        dd_store_reply_done(r);
        return DD_ERR;
    }
    dd_store_reply_done(r);
    /* "" (an unknown endpoint): the node that answered. */
    for (size_t i = 0; i < m->nnodes; i++)
        if (m->nodes[i].host[0] == '\0')
            dd_strlcpy(m->nodes[i].host, host, sizeof(m->nodes[i].host));
    return DD_OK;
}

/* Reads the slot map from the first node that answers: the masters known
 * (connected ones first), then the seeds. */
static int map_refresh(dd_store_conn_t *cn, char *errstr, size_t errstr_size) {
    dd_store_cluster_t *cl = cn->cluster;
    dd_redis_cluster_map_t m;
    size_t known = cl->map.nnodes;

    /* Connected masters: no connect needed. */
    for (size_t i = 0; i < known; i++) {
        if (cl->ctx[i] == NULL)
            continue;
        if (slots_read(&cl->ctx[i], cl->map.nodes[i].host,
                       cl->map.nodes[i].port, &m, errstr,
                       errstr_size) == DD_OK) {
            map_install(cl, &m, NULL, "", 0);
            return DD_OK;
        }
    }
    /* Then every master known and every seed, each on a new context. */
    for (size_t k = 0; k < known + cl->nseeds; k++) {
        char host[DD_REDIS_CLUSTER_HOST_MAX];
        int port;
        redisContext *c = NULL;

        if (k < known) {
            if (cl->ctx[k] != NULL)
                continue;
            dd_strlcpy(host, cl->map.nodes[k].host, sizeof(host));
            port = cl->map.nodes[k].port;
        } else {
            dd_strlcpy(host, cl->seeds[k - known].host, sizeof(host));
            port = cl->seeds[k - known].port;
        }
        if (dd_store_conn_open(cn, host, port, &c, errstr, errstr_size) !=
            DD_OK)
            continue;
        if (slots_read(&c, host, port, &m, errstr, errstr_size) == DD_OK) {
            map_install(cl, &m, c, host, port);
            return DD_OK;
        }
        redisFree(c);
    }
    return DD_ERR;
}

/*----- Lost-state markers -----*/

/* One marker per master of the map: base ":{tag}" in the first range of
 * the master's slots. A master no such key reaches (the key prefix holds
 * a hash tag of another slot) holds no key of ours and gets none. */
static void markers_compute(dd_store_cluster_t *cl, const char *base) {
    const dd_redis_cluster_map_t *m = &cl->map;

    dd_free(cl->markers);
    cl->markers =
        dd_xcalloc(m->nnodes > 0 ? m->nnodes : 1, sizeof(*cl->markers));
    cl->nmarkers = 0;
    for (size_t i = 0; i < m->nnodes; i++) {
        dd_store_cluster_marker_t *mk = &cl->markers[cl->nmarkers];
        unsigned lo = 0, hi;

        while (lo < DD_REDIS_CLUSTER_SLOTS && m->slot_node[lo] != i)
            lo++;
        if (lo == DD_REDIS_CLUSTER_SLOTS)
            continue; /* no slot: a node a redirection added */
        hi = lo;
        while (hi + 1 < DD_REDIS_CLUSTER_SLOTS && m->slot_node[hi + 1] == i)
            hi++;
        if (dd_redis_cluster_tag_key(base, lo, hi, mk->key, sizeof(mk->key)) !=
            DD_OK)
            continue;
        snprintf(mk->node, sizeof(mk->node), "%s:%d", m->nodes[i].host,
                 m->nodes[i].port);
        cl->nmarkers++;
    }
    cl->markers_stale = 0;
}

size_t dd_store_cluster_marker_count(const dd_store_cluster_t *cl) {
    return cl->nmarkers;
}

const dd_store_cluster_marker_t *
dd_store_cluster_marker(const dd_store_cluster_t *cl, size_t i) {
    return i < cl->nmarkers ? &cl->markers[i] : NULL;
}

int dd_store_cluster_ensure(dd_store_conn_t *cn, char *errstr,
                            size_t errstr_size) {
    dd_store_cluster_t *cl = cn->cluster;

    /* Replies still owed by a pipeline the caller gave up on would be
     * taken for the next ones: start over on new contexts. */
    if (cl->next < cl->nsent)
        dd_store_cluster_close_all(cl);
    pipeline_reset(cl);
    if ((cl->stale || cl->map.nnodes == 0) &&
        map_refresh(cn, errstr, errstr_size) != DD_OK)
        return DD_ERR;
    if (cl->markers_stale)
        markers_compute(cl, cn->marker_key);
    for (size_t i = 0; i < cl->map.nnodes; i++) {
        if (cl->ctx[i] == NULL &&
            dd_store_conn_open(cn, cl->map.nodes[i].host, cl->map.nodes[i].port,
                               &cl->ctx[i], errstr, errstr_size) != DD_OK) {
            cl->stale = 1; /* a failover may have moved its slots */
            return DD_ERR;
        }
    }
    return DD_OK;
}

/* Index of host:port in the map, added (and connected) when it is not
 * there: the target of a redirection. */
static int node_get(dd_store_conn_t *cn, const char *host, int port,
                    char *errstr, size_t errstr_size) {
    dd_store_cluster_t *cl = cn->cluster;
    int i = dd_redis_cluster_map_find(&cl->map, host, port);

    if (i < 0) {
        dd_redis_cluster_node_t *n;

        if (cl->map.nnodes == DD_REDIS_CLUSTER_MAX_NODES) {
            dd_set_error(errstr, errstr_size,
                         "redis cluster: more than %d nodes",
                         DD_REDIS_CLUSTER_MAX_NODES);
            return -1;
        }
        cl->map.nodes = dd_xrealloc(cl->map.nodes, (cl->map.nnodes + 1) *
                                                       sizeof(*cl->map.nodes));
        cl->ctx =
            dd_xrealloc(cl->ctx, (cl->map.nnodes + 1) * sizeof(redisContext *));
        n = &cl->map.nodes[cl->map.nnodes];
        dd_strlcpy(n->host, host, sizeof(n->host));
        n->port = port;
        cl->ctx[cl->map.nnodes] = NULL;
        i = (int)cl->map.nnodes++;
    }
    if (cl->ctx[i] == NULL && dd_store_conn_open(cn, host, port, &cl->ctx[i],
                                                 errstr, errstr_size) != DD_OK)
        return -1;
    return i;
}

/*----- Pipeline -----*/

int dd_store_cluster_append(dd_store_conn_t *cn, int argc, const char **argv,
                            const size_t *argvlen) {
    dd_store_cluster_t *cl = cn->cluster;
    unsigned slot =
        argc >= 2 ? dd_redis_cluster_key_slot(argv[1], argvlen[1]) : 0;
    int node = cl->map.slot_node[slot];
    size_t size = 23, len;
    char *buf;
    sent_t *s;

    cl->why[0] = '\0';
    if (cl->next == cl->nsent)
        pipeline_reset(cl); /* the last pipeline is read: a new one */
    if (node == DD_REDIS_CLUSTER_NO_NODE || (size_t)node >= cl->map.nnodes ||
        cl->ctx[node] == NULL) {
        dd_set_error(cl->why, sizeof(cl->why), "slot %u is not served", slot);
        cl->stale = 1;
        return DD_ERR;
    }
    for (int i = 0; i < argc; i++)
        size += 25 + argvlen[i];
    buf = dd_xmalloc(size);
    len = dd_store_resp_format(buf, size, argc, argv, argvlen);
    dd_assert(len > 0);
    if (redisAppendFormattedCommand(cl->ctx[node], buf, len) != REDIS_OK) {
        dd_free(buf);
        return DD_ERR;
    }
    if (cl->nsent == cl->cap) {
        cl->cap = cl->cap ? cl->cap * 2 : 64;
        cl->sent = dd_xrealloc(cl->sent, cl->cap * sizeof(*cl->sent));
    }
    s = &cl->sent[cl->nsent++];
    s->node = node;
    s->cmd = buf;
    s->len = len;
    s->r = NULL;
    cl->flushed = 0;
    cn->stats->commands++;
    return DD_OK;
}

/* Writes the whole output buffer of node i. */
static int node_flush(dd_store_conn_t *cn, int i, const char *what,
                      char *errstr, size_t errstr_size) {
    dd_store_cluster_t *cl = cn->cluster;
    redisContext *c = cl->ctx[i];
    int done = 0;

    while (!done) {
        if (redisBufferWrite(c, &done) != REDIS_OK) {
            cn->stats->io_errors++;
            dd_set_error(errstr, errstr_size, "redis %s %s:%d: %s", what,
                         cl->map.nodes[i].host, cl->map.nodes[i].port,
                         c->errstr);
            return DD_ERR;
        }
    }
    return DD_OK;
}

/* The next reply of node i (which must have a context). */
static int node_read(dd_store_conn_t *cn, int i, const char *what,
                     redisReply **r, char *errstr, size_t errstr_size) {
    dd_store_cluster_t *cl = cn->cluster;
    redisContext *c = cl->ctx[i];

    *r = NULL;
    if (redisGetReply(c, (void **)r) != REDIS_OK || *r == NULL) {
        cn->stats->io_errors++;
        dd_set_error(errstr, errstr_size, "redis %s %s:%d: %s", what,
                     cl->map.nodes[i].host, cl->map.nodes[i].port,
                     c->err ? c->errstr : "connection closed");
        return DD_ERR;
    }
    return DD_OK;
}

/* Before a command is sent again to node t: the replies t still owes to
 * later commands of the pipeline are read now and kept. */
static int node_drain(dd_store_conn_t *cn, int t, const char *what,
                      char *errstr, size_t errstr_size) {
    dd_store_cluster_t *cl = cn->cluster;

    for (size_t j = cl->next + 1; j < cl->nsent; j++) {
        sent_t *s = &cl->sent[j];
        if (s->node != t || s->r != NULL)
            continue;
        if (node_read(cn, t, what, &s->r, errstr, errstr_size) != DD_OK)
            return DD_ERR;
        cl->stats.read_ahead++;
    }
    return DD_OK;
}

/* Follows one redirection of the current command: sends it (after ASKING
 * for ASK) to the node named, and reads its reply into *r. */
static int redirect(dd_store_conn_t *cn, const dd_redis_cluster_redirect_t *rd,
                    const char *what, redisReply **r, char *errstr,
                    size_t errstr_size) {
    dd_store_cluster_t *cl = cn->cluster;
    sent_t *s = &cl->sent[cl->next];
    char host[DD_REDIS_CLUSTER_HOST_MAX];
    int t;

    /* "MOVED 3999 :6381": the host of the node that answered. */
    dd_strlcpy(host,
               rd->host[0] != '\0' ? rd->host : cl->map.nodes[s->node].host,
               sizeof(host));
    t = node_get(cn, host, rd->port, errstr, errstr_size);
    if (t < 0 || node_drain(cn, t, what, errstr, errstr_size) != DD_OK)
        return DD_ERR;
    if (rd->kind == DD_REDIS_CLUSTER_MOVED) {
        cl->map.slot_node[rd->slot] = (uint16_t)t;
        cl->stale = 1; /* read the whole map at the next ensure */
        cl->patched = 1;
        cl->stats.moved++;
        dd_metrics_inc(DD_C_REDIS_MOVED);
    } else {
        static const char asking[] = "*1\r\n$6\r\nASKING\r\n";
        if (redisAppendFormattedCommand(cl->ctx[t], asking,
                                        sizeof(asking) - 1) != REDIS_OK) {
            dd_set_error(errstr, errstr_size, "redis %s: out of memory", what);
            return DD_ERR;
        }
        cl->stats.ask++;
        dd_metrics_inc(DD_C_REDIS_ASK);
    }
    if (redisAppendFormattedCommand(cl->ctx[t], s->cmd, s->len) != REDIS_OK) {
        dd_set_error(errstr, errstr_size, "redis %s: out of memory", what);
        return DD_ERR;
    }
    if (node_flush(cn, t, what, errstr, errstr_size) != DD_OK)
        return DD_ERR;
    cl->stats.reply_writes++;
    cn->stats->commands++;
    s->node = t;
    if (rd->kind == DD_REDIS_CLUSTER_ASK) {
        /* ASKING answers +OK; an error shows in the command's reply. */
        if (node_read(cn, t, what, r, errstr, errstr_size) != DD_OK)
            return DD_ERR;
        dd_store_reply_done(*r);
    }
    return node_read(cn, t, what, r, errstr, errstr_size);
}

static int has_code(const char *text, const char *code) {
    size_t len = strlen(code);
    return strncmp(text, code, len) == 0 &&
           (text[len] == ' ' || text[len] == '\0');
}

int dd_store_cluster_get_reply(dd_store_conn_t *cn, const char *what,
                               redisReply **r, char *errstr,
                               size_t errstr_size) {
    dd_store_cluster_t *cl = cn->cluster;
    sent_t *s;

    *r = NULL;
    if (cl->next >= cl->nsent) {
        dd_set_error(errstr, errstr_size, "redis %s: no command pending", what);
        return DD_ERR;
    }
    if (!cl->flushed) {
        uint64_t nodes = 0;

        for (size_t i = 0; i < cl->map.nnodes; i++) {
            if (cl->ctx[i] == NULL || sdslen(cl->ctx[i]->obuf) == 0)
                continue;
            if (node_flush(cn, (int)i, what, errstr, errstr_size) != DD_OK)
                return DD_ERR;
            nodes++;
        }
        cl->flushed = 1;
        cl->stats.flushes++;
        cl->stats.flush_nodes = nodes;
    }
    s = &cl->sent[cl->next];
    if (s->r != NULL) {
        *r = s->r;
        s->r = NULL;
    } else if (node_read(cn, s->node, what, r, errstr, errstr_size) != DD_OK) {
        return DD_ERR;
    }
    for (int hops = 0; (*r)->type == REDIS_REPLY_ERROR; hops++) {
        dd_redis_cluster_redirect_t rd;

        if (dd_redis_cluster_parse_redirect((*r)->str, &rd) != DD_OK)
            break;
        if (hops == DD_STORE_CLUSTER_MAX_REDIRECTS) {
            dd_set_error(errstr, errstr_size,
                         "redis %s: more than %d redirections (last: %s)", what,
                         DD_STORE_CLUSTER_MAX_REDIRECTS, (*r)->str);
            dd_store_reply_done(*r);
            *r = NULL;
            cl->stale = 1;
            return DD_ERR;
        }
        dd_store_reply_done(*r);
        *r = NULL;
        if (redirect(cn, &rd, what, r, errstr, errstr_size) != DD_OK)
            return DD_ERR;
    }
    if ((*r)->type == REDIS_REPLY_ERROR &&
        (has_code((*r)->str, "CLUSTERDOWN") || has_code((*r)->str, "TRYAGAIN")))
        cl->stale = 1;
    cl->next++;
    return DD_OK;
}

int dd_store_cluster_ping(dd_store_conn_t *cn, redisReply **r, char *errstr,
                          size_t errstr_size) {
    dd_store_cluster_t *cl = cn->cluster;

    *r = NULL;
    for (size_t i = 0; i < cl->map.nnodes; i++) {
        redisContext *c = cl->ctx[i];
        redisReply *one;

        if (c == NULL)
            continue;
        cn->stats->commands++;
        one = redisCommand(c, "PING");
        if (one == NULL) {
            cn->stats->io_errors++;
            dd_set_error(errstr, errstr_size, "redis PING %s:%d: %s",
                         cl->map.nodes[i].host, cl->map.nodes[i].port,
                         c->err ? c->errstr : "connection closed");
            if (*r != NULL)
                dd_store_reply_done(*r);
            *r = NULL;
            return DD_ERR;
        }
        if (*r != NULL)
            dd_store_reply_done(*r);
        *r = one;
        if (one->type != REDIS_REPLY_STATUS || strcmp(one->str, "PONG") != 0)
            break; /* the first that is not ready speaks for all */
    }
    if (*r == NULL) {
        dd_set_error(errstr, errstr_size, "redis PING: no master connected");
        return DD_ERR;
    }
    return DD_OK;
}
