/* SPDX-License-Identifier: MIT */
/*
 * store_commit: RT3 of the Redis adapter (DESIGN.md section 3): the
 * reserve-and-record script, and dd_store_commit(), which writes the ETA
 * cache entries and runs the script by EVALSHA for every request of a batch
 * in one round trip, loading the script again when Redis answers NOSCRIPT.
 * The loads (RT1), the ETA reads (RT2) and the store's lifecycle are in
 * store.c; the two share the store and its command helpers through
 * store_cmd.h.
 *
 * DESIGN: as store.c: one store, one connection, used by one thread. The
 * script runs atomically on the server, so two workers (or two dispatchd
 * instances) racing for a courier reserve it once, and a redelivered
 * request gets its stored result back unchanged. It assumes a single Redis
 * (not Cluster): its keys span hash slots.
 */
#include "store.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "store_cmd.h"
#include "store_int.h"
#include "util.h"

#define CANDIDATES_MAX 64

/*
 * KEYS[1] = result:{rid}, KEYS[2] = the store id marker,
 * KEYS[2+i] = reservation:{candidate i};
 * ARGV[1] = rid, ARGV[2] = reservation TTL, ARGV[3] = result TTL,
 * ARGV[4] = fallback JSON, ARGV[5] = the store id this process remembers,
 * ARGV[5+i] = JSON for candidate i (1-based).
 * Returns {index, bytes}: -2 for an existing result, 0-based candidate
 * index for a reservation taken (or already ours), -1 for the fallback; or
 * the error STATELOST, writing nothing, when the marker does not hold the
 * id (the data set was flushed or replaced: see store_marker.c).
 */
#define STATELOST "STATELOST"
const char dd_store_reserve_lua[] =
    "if redis.call('GET', KEYS[2]) ~= ARGV[5] then\n"
    "  return redis.error_reply('" STATELOST
    " store id marker missing or changed')\n"
    "end\n"
    "local r = redis.call('GET', KEYS[1])\n"
    "if r then return {-2, r} end\n"
    "local rid = ARGV[1]\n"
    "for i = 3, #KEYS do\n"
    "  local cur = redis.call('GET', KEYS[i])\n"
    "  if not cur then\n"
    "    redis.call('SET', KEYS[i], rid, 'EX', ARGV[2])\n"
    "  end\n"
    "  if (not cur) or cur == rid then\n"
    "    local res = ARGV[3 + i]\n"
    "    redis.call('SET', KEYS[1], res, 'EX', ARGV[3])\n"
    "    return {i - 3, res}\n"
    "  end\n"
    "end\n"
    "redis.call('SET', KEYS[1], ARGV[4], 'EX', ARGV[3])\n"
    "return {-1, ARGV[4]}\n";

const size_t dd_store_reserve_lua_len = sizeof(dd_store_reserve_lua) - 1;

/*----- RT3: writes -----*/

void dd_store_commit_clear(dd_store_commit_t *commit) {
    dd_free(commit->result);
    commit->result = NULL;
    commit->result_len = 0;
    commit->chosen = DD_STORE_COMMIT_FALLBACK;
    commit->data_error = 0;
    commit->error[0] = '\0';
}

/* Drops a commit's result, keeping its error. */
static void commit_drop_result(dd_store_commit_t *cm) {
    dd_free(cm->result);
    cm->result = NULL;
    cm->result_len = 0;
    cm->chosen = DD_STORE_COMMIT_FALLBACK;
}

static void commits_clear(dd_store_commit_t *commits, size_t n) {
    for (size_t i = 0; i < n; i++)
        dd_store_commit_clear(&commits[i]);
}

static int append_evalsha(dd_store_t *st, dd_store_argv_t *a,
                          const dd_store_commit_t *cm) {
    char nkeys[24];

    dd_store_argv_add_str(a, "EVALSHA");
    dd_store_argv_add_str(a, st->conn.sha);
    /* copied by the append below */
    dd_store_argv_add_str(
        a, dd_store_dec_str(nkeys, (long long)cm->ncandidates + 2));
    dd_store_cmd_add_key(a, st, "result:", cm->request_id);
    dd_store_argv_add_str(a, st->conn.marker_key);
    for (size_t j = 0; j < cm->ncandidates; j++)
        dd_store_cmd_add_key(a, st, "reservation:", cm->candidate_ids[j]);
    dd_store_argv_add_str(a, cm->request_id);
    dd_store_argv_add_str(a, st->reservation_ttl);
    dd_store_argv_add_str(a, st->idempotency_ttl);
    dd_store_argv_add_str(a, cm->fallback_json);
    dd_store_argv_add_str(a, st->store_id);
    for (size_t j = 0; j < cm->ncandidates; j++)
        dd_store_argv_add_str(a, cm->candidate_json[j]);
    return dd_store_cmd_append(st, a);
}

/* The keys of a commit for an error text: result:{rid}, then as many
 * reservation keys as fit. */
static void commit_keys(const dd_store_t *st, const dd_store_commit_t *cm,
                        char *buf, size_t size) {
    size_t len;

    snprintf(buf, size, "%sresult:%s", st->prefix, cm->request_id);
    for (size_t j = 0; j < cm->ncandidates; j++) {
        len = strlen(buf);
        if (len + strlen(st->prefix) + strlen(cm->candidate_ids[j]) + 18 >=
            size) {
            snprintf(buf + len, size - len, " ...");
            break;
        }
        snprintf(buf + len, size - len, " %sreservation:%s", st->prefix,
                 cm->candidate_ids[j]);
    }
}

/* Takes the script's {index, bytes} reply. 0 = done or charged to cm as a
 * data error, 1 = NOSCRIPT (send again), -1 = a transient error fails the
 * batch (errstr filled). */
static int take_script_reply(dd_store_t *st, const redisReply *r,
                             dd_store_commit_t *cm, char *errstr,
                             size_t errstr_size) {
    char keys[160], perr[128];
    int cls;

    if (r->type == REDIS_REPLY_ERROR &&
        strncmp(r->str, STATELOST, sizeof(STATELOST) - 1) == 0) {
        /* The script found the store id marker gone or changed: not a
         * data error of this request, the whole store is held. */
        st->stats.reply_errors++;
        dd_store_marker_lost(st->conn.marker_key,
                             "does not hold this process's store id "
                             "(reserve script)",
                             st->store_id_gen);
        dd_set_error(errstr, errstr_size, "%s", dd_store_state_lost_reason);
        return -1;
    }
    /* The keys' text only for an error (it is built with snprintf()). */
    if (r->type == REDIS_REPLY_ERROR) {
        commit_keys(st, cm, keys, sizeof(keys));
        cls = dd_store_reply_error(st, r, "EVALSHA", keys, cm->error,
                                   sizeof(cm->error), errstr, errstr_size);
        if (cls == DD_STORE_ERROR_NOSCRIPT)
            return 1;
        if (cls == DD_STORE_ERROR_TRANSIENT)
            return -1;
    } else if (dd_store_parse_script_reply(r, cm, perr, sizeof(perr)) == 0) {
        return 0;
    } else { /* "redis EVALSHA: <why>" */
        commit_keys(st, cm, keys, sizeof(keys));
        dd_set_error(cm->error, sizeof(cm->error), "redis EVALSHA %s: %s", keys,
                     strncmp(perr, "redis EVALSHA: ", 15) == 0 ? perr + 15
                                                               : perr);
    }
    commit_drop_result(cm);
    cm->data_error = 1;
    st->stats.data_errors++;
    return 0;
}

/* SCRIPT LOAD again after NOSCRIPT (SCRIPT FLUSH, or a restarted server
 * that kept the connection alive behind a proxy). */
static int reload_script(dd_store_t *st, char *errstr, size_t errstr_size) {
    const char *argv[3] = {"SCRIPT", "LOAD", dd_store_reserve_lua};
    const size_t argvlen[3] = {6, 4, dd_store_reserve_lua_len};
    redisReply *r;
    int rc = DD_ERR;

    st->stats.round_trips++;
    st->stats.script_reloads++;
    if (dd_store_conn_command(&st->conn, "SCRIPT LOAD", 3, argv, argvlen, &r,
                              errstr, errstr_size) != DD_OK)
        return DD_ERR;
    if (r->type == REDIS_REPLY_STRING && r->len == DD_STORE_SHA_SIZE - 1) {
        memcpy(st->conn.sha, r->str, DD_STORE_SHA_SIZE - 1);
        st->conn.sha[DD_STORE_SHA_SIZE - 1] = '\0';
        rc = DD_OK;
    } else {
        st->stats.reply_errors++;
        dd_set_error(errstr, errstr_size, "redis SCRIPT LOAD: %s",
                     r->type == REDIS_REPLY_ERROR ? r->str
                                                  : "unexpected reply");
    }
    freeReplyObject(r);
    return rc;
}

int dd_store_commit(dd_store_t *st, dd_store_eta_put_t *puts, size_t nputs,
                    dd_store_commit_t *commits, size_t n, int *eta_put_errors,
                    char *errstr, size_t errstr_size) {
    dd_store_argv_t a;
    char secs[24];
    int failed = 0, put_errors = 0, redo = 0;
    int *noscript = NULL;

    for (size_t i = 0; i < n; i++) {
        commits[i].result = NULL;
        commits[i].result_len = 0;
        commits[i].chosen = DD_STORE_COMMIT_FALLBACK;
        commits[i].data_error = 0;
        commits[i].error[0] = '\0';
        dd_assert(commits[i].ncandidates <= CANDIDATES_MAX);
    }
    if (eta_put_errors != NULL)
        *eta_put_errors = 0;
    for (size_t i = 0; i < nputs; i++)
        puts[i].error = 0;
    if (nputs == 0 && n == 0)
        return DD_OK;
    if (dd_store_begin(st, errstr, errstr_size) != DD_OK)
        return DD_ERR;
    /* The first write of this process makes sure the marker exists; later
     * ones take the id it remembers (it may change with an ack). */
    if (dd_store_marker_ensure(&st->conn, st->store_id, sizeof(st->store_id),
                               &st->store_id_gen, errstr, errstr_size) != DD_OK)
        return DD_ERR;

    dd_store_argv_init(&a, 2 * CANDIDATES_MAX + 8);
    for (size_t i = 0; i < nputs && !failed; i++) {
        dd_store_argv_add_str(&a, "SET");
        dd_store_cmd_add_key(&a, st, "", puts[i].key);
        dd_store_argv_add_str(&a,
                              dd_store_dec_str(secs, (long long)puts[i].secs));
        dd_store_argv_add_str(&a, "EX");
        dd_store_argv_add_str(&a, st->eta_ttl);
        failed |= dd_store_cmd_append(st, &a) != DD_OK;
    }
    for (size_t i = 0; i < n && !failed; i++)
        failed |= append_evalsha(st, &a, &commits[i]) != DD_OK;
    if (dd_store_cmd_sent(st, failed, errstr, errstr_size) != DD_OK) {
        dd_store_argv_close(&a);
        return DD_ERR;
    }
    noscript = dd_xcalloc(n ? n : 1, sizeof(*noscript));
    for (size_t i = 0; i < nputs; i++) {
        redisReply *r;
        if (dd_store_conn_get_reply(&st->conn, &r, errstr, errstr_size) !=
            DD_OK)
            goto err;
        puts[i].error = r->type == REDIS_REPLY_ERROR;
        if (puts[i].error) {
            st->stats.reply_errors++;
            put_errors++;
        }
        freeReplyObject(r);
    }
    for (size_t i = 0; i < n; i++) {
        redisReply *r;
        int t;
        if (dd_store_conn_get_reply(&st->conn, &r, errstr, errstr_size) !=
            DD_OK)
            goto err;
        t = failed ? 0
                   : take_script_reply(st, r, &commits[i], errstr, errstr_size);
        freeReplyObject(r);
        if (t < 0)
            failed = 1;
        else if (t > 0)
            noscript[i] = redo = 1;
    }
    if (failed)
        goto err;

    if (redo) {
        if (reload_script(st, errstr, errstr_size) != DD_OK)
            goto err;
        for (size_t i = 0; i < n && !failed; i++)
            if (noscript[i])
                failed |= append_evalsha(st, &a, &commits[i]) != DD_OK;
        if (dd_store_cmd_sent(st, failed, errstr, errstr_size) != DD_OK)
            goto err;
        for (size_t i = 0; i < n; i++) {
            redisReply *r;
            int t;
            if (!noscript[i])
                continue;
            if (dd_store_conn_get_reply(&st->conn, &r, errstr, errstr_size) !=
                DD_OK)
                goto err;
            t = failed ? 0
                       : take_script_reply(st, r, &commits[i], errstr,
                                           errstr_size);
            if (t > 0)
                dd_set_error(errstr, errstr_size,
                             "redis EVALSHA: NOSCRIPT right after SCRIPT "
                             "LOAD");
            freeReplyObject(r);
            if (t != 0)
                failed = 1;
        }
        if (failed)
            goto err;
    }

    dd_store_argv_close(&a);
    dd_free(noscript);
    st->stats.eta_errors += (uint64_t)put_errors;
    if (eta_put_errors != NULL)
        *eta_put_errors = put_errors;
    dd_store_conn_ok(&st->conn);
    return DD_OK;

err:
    dd_store_argv_close(&a);
    dd_free(noscript);
    commits_clear(commits, n);
    if (dd_store_conn_is_up(&st->conn))
        dd_store_conn_drop(&st->conn); /* a transient error reply */
    return DD_ERR;
}
