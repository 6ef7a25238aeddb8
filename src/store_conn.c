/* SPDX-License-Identifier: MIT */
/*
 * store_conn: the connection layer of the Redis adapter, apart from the
 * commands (store.c) the way hiredis keeps net.c apart from its command
 * layer. Its one job is to hold a usable hiredis context: connect over TCP
 * or a unix socket with a timeout, run the handshake (AUTH [user]
 * password, SELECT, CLIENT SETNAME, INFO server in one pipeline, then the
 * lost-state marker check of store_marker.c), bound every read and write with
 * the socket timeouts, and after a failure reconnect no sooner than a
 * capped exponential backoff with jitter allows. The command layer appends
 * commands and reads replies only through the dd_store_conn_*() calls of
 * store_int.h, so Redis Cluster routing sits between the two without
 * touching the commands: with cluster seeds (dd_store_conf_t), every call
 * goes to store_cluster.c (slot map, one context per master opened by
 * dd_store_conn_open(), MOVED/ASK), while the backoff, the counters and the
 * marker check stay here, common to both modes.
 *
 * DESIGN: one blocking context per connection, used by the one thread that
 * owns the store (a redisContext is not thread-safe). A NULL reply, or
 * redisGetReply() failing, means the context is dead (hiredis sets c->err;
 * a timeout shows as an I/O error "Resource temporarily unavailable"): it
 * is freed, the call fails and the next dd_store_conn_ensure() reconnects
 * after the backoff.
 */
#include "store_int.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "util.h"

static uint64_t rng_next(dd_store_conn_t *cn) {
    uint64_t x = cn->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    cn->rng = x;
    return x;
}

/* Delay before attempt number failures + 1: none after the first failure
 * (a connection that worked gets one immediate retry), then 50 ms doubling
 * to 5 s, each with equal jitter in [d/2, d]. */
static int backoff_delay_ms(dd_store_conn_t *cn) {
    int64_t d = DD_STORE_BACKOFF_MIN_MS;

    if (cn->failures <= 1)
        return 0;
    for (int i = 2; i < cn->failures && d < DD_STORE_BACKOFF_MAX_MS; i++)
        d *= 2;
    if (d > DD_STORE_BACKOFF_MAX_MS)
        d = DD_STORE_BACKOFF_MAX_MS;
    return (int)(d / 2 + (int64_t)(rng_next(cn) % (uint64_t)(d / 2 + 1)));
}

void dd_store_conn_drop(dd_store_conn_t *cn) {
    redisFree(cn->c);
    cn->c = NULL;
    if (cn->cluster != NULL)
        dd_store_cluster_close_all(cn->cluster);
    cn->failures++;
    cn->next_attempt_ms = dd_now_ms() + backoff_delay_ms(cn);
}

void dd_store_conn_lost(dd_store_conn_t *cn, const char *what, char *errstr,
                        size_t errstr_size) {
    const char *why = "out of memory";

    if (cn->cluster != NULL)
        why = dd_store_cluster_why(cn->cluster);
    else if (cn->c != NULL && cn->c->err)
        why = cn->c->errstr;
    else if (cn->c != NULL)
        why = "connection closed";
    dd_set_error(errstr, errstr_size, "redis %s: %s", what, why);
    dd_store_conn_drop(cn);
}

void dd_store_conn_ok(dd_store_conn_t *cn) {
    cn->failures = 0;
}

int dd_store_conn_set_nx_get_ok(const dd_store_conn_t *cn) {
    return cn->servers_seen > 0 && cn->servers_pre7 == 0;
}

int dd_store_conn_is_up(const dd_store_conn_t *cn) {
    if (cn->cluster != NULL)
        return dd_store_cluster_is_up(cn->cluster);
    return cn->c != NULL;
}

int dd_store_conn_backoff_ms(const dd_store_conn_t *cn) {
    int64_t left;

    if (dd_store_conn_is_up(cn))
        return 0;
    left = cn->next_attempt_ms - dd_now_ms();
    return left > 0 ? (int)left : 0;
}

static void set_timeval(struct timeval *tv, int ms) {
    tv->tv_sec = ms / 1000;
    tv->tv_usec = (ms % 1000) * 1000;
}

/* Appends the command a0 a1, and a2 (len2 bytes) unless it is NULL. */
static void append_cmd(redisContext *c, const char *a0, const char *a1,
                       const char *a2, size_t len2) {
    const char *argv[3] = {a0, a1, a2};
    const size_t argvlen[3] = {strlen(a0), strlen(a1), len2};

    redisAppendCommandArgv(c, a2 != NULL ? 3 : 2, argv, argvlen);
}

/* The major version in an INFO server reply (its "redis_version:" line),
 * or -1 when r is no such reply. */
static int info_major(const redisReply *r) {
    static const char field[] = "redis_version:";
    const char *p;

    if (r->type != REDIS_REPLY_STRING)
        return -1;
    for (p = strstr(r->str, field); p != NULL; p = strstr(p + 1, field)) {
        const char *v = p + sizeof(field) - 1;
        int major = 0, digits = 0;

        if (p != r->str && p[-1] != '\n')
            continue;
        for (; *v >= '0' && *v <= '9' && digits < 6; v++, digits++)
            major = major * 10 + (*v - '0');
        return digits > 0 ? major : -1;
    }
    return -1;
}

/* AUTH, SELECT, CLIENT SETNAME and INFO server in one pipeline on a fresh
 * context c; in cluster mode no SELECT (a cluster has db 0 only). An error
 * reply (wrong password, bad db) fails the connect like an I/O error does;
 * the password never goes into errstr. INFO only tells the version (see
 * dd_store_conn_set_nx_get_ok()): refused (an ACL user without +info) or
 * without one, the server counts as older than 7.0.0, and the connect
 * goes on. */
static int handshake(dd_store_conn_t *cn, redisContext *c, char *errstr,
                     size_t errstr_size) {
    char dbs[16];
    int nreplies = 0, rc = DD_OK, major = -1;
    const char *step[5];

    /* AUTH user password for a Redis 6+ ACL user (a "nopass" user takes
     * any password, so none is sent as ""), else AUTH password. */
    if (cn->user != NULL || cn->password != NULL) {
        const char *password = cn->password != NULL ? cn->password : "";

        if (cn->user != NULL)
            append_cmd(c, "AUTH", cn->user, password, strlen(password));
        else
            append_cmd(c, "AUTH", password, NULL, 0);
        step[nreplies++] = "AUTH";
    }
    if (cn->db > 0 && cn->cluster == NULL) {
        snprintf(dbs, sizeof(dbs), "%d", cn->db);
        append_cmd(c, "SELECT", dbs, NULL, 0);
        step[nreplies++] = "SELECT";
    }
    /* A name makes dispatchd's connections easy to find in CLIENT LIST. */
    append_cmd(c, "CLIENT", "SETNAME", DD_STORE_CLIENT_NAME,
               strlen(DD_STORE_CLIENT_NAME));
    step[nreplies++] = "CLIENT SETNAME";
    append_cmd(c, "INFO", "server", NULL, 0);
    step[nreplies++] = "INFO";

    for (int i = 0; i < nreplies; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL)
            return DD_ERR; /* the caller reports c->errstr */
        if (i == nreplies - 1) {
            major = info_major(r); /* INFO server, last */
        } else if (r->type == REDIS_REPLY_ERROR && rc == DD_OK) {
            dd_set_error(errstr, errstr_size, "redis %s: %s", step[i], r->str);
            rc = DD_ERR;
        }
        dd_store_reply_done(r);
    }
    if (rc == DD_OK) {
        cn->servers_seen++;
        cn->servers_pre7 += major < 7;
    }
    return rc;
}

int dd_store_conn_open(dd_store_conn_t *cn, const char *host, int port,
                       redisContext **c, char *errstr, size_t errstr_size) {
    struct timeval tv;
    char hs_err[256] = "";

    set_timeval(&tv, cn->timeout_ms);
    *c = redisConnectWithTimeout(host, port, tv);
    if (*c == NULL || (*c)->err || redisSetTimeout(*c, tv) != REDIS_OK)
        goto err;
    (void)redisEnableKeepAlive(*c);
    dd_store_replies_attach(&cn->replies, (*c)->reader);
    if (handshake(cn, *c, hs_err, sizeof(hs_err)) != DD_OK)
        goto err;
    cn->stats->connects++;
    return DD_OK;

err:
    cn->stats->connect_errors++;
    if (hs_err[0] != '\0')
        dd_set_error(errstr, errstr_size, "%s (%s:%d)", hs_err, host, port);
    else
        dd_set_error(errstr, errstr_size, "redis connect %s:%d: %s", host, port,
                     *c == NULL  ? "out of memory"
                     : (*c)->err ? (*c)->errstr
                                 : "connection closed");
    redisFree(*c);
    *c = NULL;
    return DD_ERR;
}

int dd_store_conn_ensure(dd_store_conn_t *cn, char *errstr,
                         size_t errstr_size) {
    struct timeval tv;
    int64_t now = dd_now_ms();
    char hs_err[256] = "";
    int up = dd_store_conn_is_up(cn);

    /* In cluster mode a stale slot map is read again on the contexts
     * there are, without waiting for the backoff. */
    if (up && (cn->cluster == NULL || !dd_store_cluster_is_stale(cn->cluster)))
        return DD_OK;
    if (!up && now < cn->next_attempt_ms) {
        dd_set_error(errstr, errstr_size,
                     "redis unavailable: next connect attempt in %lld ms",
                     (long long)(cn->next_attempt_ms - now));
        return DD_ERR;
    }
    if (cn->cluster != NULL) {
        if (dd_store_cluster_ensure(cn, errstr, errstr_size) != DD_OK) {
            dd_store_conn_drop(cn);
            return DD_ERR;
        }
        return dd_store_marker_check(cn, errstr, errstr_size);
    }
    set_timeval(&tv, cn->timeout_ms);
    if (cn->unix_path != NULL)
        cn->c = redisConnectUnixWithTimeout(cn->unix_path, tv);
    else
        cn->c = redisConnectWithTimeout(cn->host, cn->port, tv);
    if (cn->c == NULL || cn->c->err)
        goto err;
    /* redisConnectWithTimeout() bounds only the connect; the socket
     * timeouts bound every later read and write. */
    if (redisSetTimeout(cn->c, tv) != REDIS_OK)
        goto err;
    (void)redisEnableKeepAlive(cn->c);
    dd_store_replies_attach(&cn->replies, cn->c->reader);
    if (handshake(cn, cn->c, hs_err, sizeof(hs_err)) != DD_OK)
        goto err;
    cn->stats->connects++;
    /* Every (re)connect checks that Redis still holds our state. */
    return dd_store_marker_check(cn, errstr, errstr_size);

err:
    cn->stats->connect_errors++;
    if (hs_err[0] != '\0') {
        dd_set_error(errstr, errstr_size, "%s", hs_err);
        dd_store_conn_drop(cn);
    } else {
        char what[300];
        if (cn->unix_path != NULL)
            snprintf(what, sizeof(what), "connect %s", cn->unix_path);
        else
            snprintf(what, sizeof(what), "connect %s:%d", cn->host, cn->port);
        dd_store_conn_lost(cn, what, errstr, errstr_size);
    }
    return DD_ERR;
}

/* hiredis's formatting (sds strings grown piece by piece) was a measurable
 * part of the worker's CPU, so a command is formatted to RESP in one stack
 * buffer (dd_store_resp_format(), the same bytes); one that does not fit
 * goes through hiredis. */
int dd_store_conn_append_argv(dd_store_conn_t *cn, int argc, const char **argv,
                              const size_t *argvlen) {
    char buf[8192];
    size_t len;
    int rc;

    if (cn->cluster != NULL)
        return dd_store_cluster_append(cn, argc, argv, argvlen);
    len = dd_store_resp_format(buf, sizeof(buf), argc, argv, argvlen);
    rc = len > 0 ? redisAppendFormattedCommand(cn->c, buf, len)
                 : redisAppendCommandArgv(cn->c, argc, argv, argvlen);
    cn->stats->commands++;
    return rc == REDIS_OK ? DD_OK : DD_ERR;
}

int dd_store_conn_get_reply(dd_store_conn_t *cn, redisReply **r, char *errstr,
                            size_t errstr_size) {
    *r = NULL;
    if (cn->cluster != NULL) {
        if (dd_store_cluster_get_reply(cn, "read", r, errstr, errstr_size) ==
            DD_OK)
            return DD_OK;
        dd_store_conn_drop(cn);
        return DD_ERR;
    }
    if (redisGetReply(cn->c, (void **)r) != REDIS_OK || *r == NULL) {
        cn->stats->io_errors++;
        dd_store_conn_lost(cn, "read", errstr, errstr_size);
        return DD_ERR;
    }
    return DD_OK;
}

int dd_store_conn_command(dd_store_conn_t *cn, const char *what, int argc,
                          const char **argv, const size_t *argvlen,
                          redisReply **r, char *errstr, size_t errstr_size) {
    if (cn->cluster != NULL) {
        int rc;

        /* PING asks every master; another command is a pipeline of one. */
        if (argc == 1 && argvlen[0] == 4 && memcmp(argv[0], "PING", 4) == 0)
            rc = dd_store_cluster_ping(cn, r, errstr, errstr_size);
        else if (dd_store_cluster_append(cn, argc, argv, argvlen) != DD_OK) {
            dd_set_error(errstr, errstr_size, "redis %s: %s", what,
                         dd_store_cluster_why(cn->cluster));
            rc = DD_ERR;
        } else
            rc = dd_store_cluster_get_reply(cn, what, r, errstr, errstr_size);
        if (rc != DD_OK)
            dd_store_conn_drop(cn);
        return rc;
    }
    cn->stats->commands++;
    *r = redisCommandArgv(cn->c, argc, argv, argvlen);
    if (*r == NULL) {
        cn->stats->io_errors++;
        dd_store_conn_lost(cn, what, errstr, errstr_size);
        return DD_ERR;
    }
    return DD_OK;
}

/*----- Lifecycle -----*/

int dd_store_conn_init(dd_store_conn_t *cn, const dd_store_conf_t *conf,
                       dd_store_stats_t *stats, char *errstr,
                       size_t errstr_size) {
    int cluster = conf->cluster_nseeds > 0;
    int use_unix =
        !cluster && conf->unix_path != NULL && conf->unix_path[0] != '\0';

    memset(cn, 0, sizeof(*cn));
    if (cluster) {
        for (size_t i = 0; i < conf->cluster_nseeds; i++) {
            const dd_redis_seed_t *sd = &conf->cluster_seeds[i];
            if (sd->host == NULL || sd->host[0] == '\0' || sd->port < 1 ||
                sd->port > 65535) {
                dd_set_error(errstr, errstr_size,
                             "store: redis cluster seed %zu: bad host or port",
                             i + 1);
                return DD_ERR;
            }
        }
    } else if (!use_unix && (conf->host == NULL || conf->host[0] == '\0')) {
        dd_set_error(errstr, errstr_size, "store: no redis host");
        return DD_ERR;
    }
    if (!use_unix && !cluster && (conf->port < 1 || conf->port > 65535)) {
        dd_set_error(errstr, errstr_size, "store: redis port %d out of range",
                     conf->port);
        return DD_ERR;
    }
    if (conf->db < 0) {
        dd_set_error(errstr, errstr_size, "store: redis db %d < 0", conf->db);
        return DD_ERR;
    }
    cn->host = dd_xstrdup(use_unix || cluster ? "" : conf->host);
    cn->port = conf->port;
    cn->unix_path = use_unix ? dd_xstrdup(conf->unix_path) : NULL;
    cn->user = (conf->user != NULL && conf->user[0] != '\0')
                   ? dd_xstrdup(conf->user)
                   : NULL;
    cn->password = (conf->password != NULL && conf->password[0] != '\0')
                       ? dd_xstrdup(conf->password)
                       : NULL;
    cn->db = cluster ? 0 : conf->db;
    if (cluster)
        cn->cluster =
            dd_store_cluster_new(conf->cluster_seeds, conf->cluster_nseeds);
    cn->timeout_ms =
        conf->timeout_ms > 0 ? conf->timeout_ms : DD_STORE_TIMEOUT_MS_DEFAULT;
    cn->stats = stats;
    snprintf(cn->marker_key, sizeof(cn->marker_key), "%s%s",
             conf->prefix != NULL ? conf->prefix : "", DD_STORE_MARKER_KEY);
    cn->rng =
        (uint64_t)dd_now_us() ^ (uint64_t)(uintptr_t)cn ^ 0x9e3779b97f4a7c15ULL;
    if (cn->rng == 0)
        cn->rng = 1;
    return DD_OK;
}

void dd_store_conn_close(dd_store_conn_t *cn) {
    redisFree(cn->c);
    cn->c = NULL;
    dd_store_cluster_destroy(cn->cluster);
    cn->cluster = NULL;
    dd_store_replies_free(&cn->replies);
    dd_free(cn->host);
    dd_free(cn->unix_path);
    dd_free(cn->user);
    cn->user = NULL;
    if (cn->password != NULL) {
        memset(cn->password, 0, strlen(cn->password));
        dd_free(cn->password);
    }
    cn->host = cn->unix_path = cn->password = NULL;
}
