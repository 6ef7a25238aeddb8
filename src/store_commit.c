/* SPDX-License-Identifier: MIT */
/*
 * store_commit: the writes of the Redis adapter (DESIGN.md section 3): RT3,
 * dd_store_reserve(), which reserves a courier per request in rounds of
 * pipelined single-key commands (one SET NX GET per candidate on Redis >=
 * 7.0.0, else SET NX and GET), best candidate first; and RT4,
 * dd_store_record(), which writes the ETA cache entries and the result
 * record of every request, and reads back the record of those another
 * delivery wrote first. The loads (RT1), the ETA reads (RT2) and the
 * store's lifecycle are in store.c; the two share the store and its
 * command helpers through store_cmd.h.
 *
 * DESIGN: as store.c: one store, one connection, used by one thread. No
 * script and no transaction: every command names one key, at argv[1], so
 * each can be routed to the node of its hash slot (Redis Cluster), and
 * Redis runs each one atomically. The steps of one request rid, ranked
 * candidates c1, c2, ...:
 *
 *   R0  RT1 (store.c): read result:{rid} (one server: an element of the
 *       batch's MGET; a cluster: a GET); a stored result is the answer. A
 *       key of another type reads as absent in an MGET: the request goes
 *       on, its W is refused (NX: the key exists) and its G gets
 *       WRONGTYPE, a data error of that request alone, as it was at R0
 *       with GET; what it reserved on the way is an orphan (below).
 *   Rk  reserve round k (round 1 starts with the batch's GET of the
 *       store id marker), in one of two forms:
 *       - one command, where every server handshaken says Redis >= 7.0.0
 *         (store_conn.c; NX and GET together are allowed since 7.0.0):
 *         SET reservation:{ck} rid NX GET EX <reservation-ttl>. Nil: the
 *         SET created the key, ck is ours. A string: the SET was refused
 *         and that is the holder.
 *       - two commands otherwise (or with reserve_two_commands):
 *         SET reservation:{ck} rid NX EX <reservation-ttl> and GET
 *         reservation:{ck}, pipelined together. OK: ck is ours. Nil: the
 *         SET was refused and the GET's string is the holder (nil if it
 *         expired in between).
 *       The holder is rid: ck was reserved by an earlier delivery of rid
 *       (a crash between reserve and record), it is ours. Otherwise
 *       another request holds ck (or held it and it just expired): try
 *       c(k+1) in the next round; after the last, none. A SET NX GET
 *       answered "ERR syntax error" (a server older than 7.0.0 behind a
 *       handshake that said otherwise) turns the one-command form off for
 *       the store and fails the batch as transient: the retry uses two.
 *   W   record: SET result:{rid} <json> NX EX <idempotency-ttl>, json built
 *       once by dispatch.c for the courier chosen (or the rejection); the
 *       pipeline starts with another GET of the marker.
 *   G   only when W was refused: GET result:{rid}; those bytes, not ours,
 *       are the answer.
 *   P   publish (pool.c), then the offset may be committed.
 *
 * Why it is correct:
 *   - A courier is never reserved by two requests: reservation:{c} is only
 *     ever created by SET NX (never overwritten, never deleted by us), so
 *     while it lives it names one request id, and a request takes c only
 *     when its SET created the key or the key names its own id. Two
 *     requests racing for c: Redis runs one SET NX first, the other is
 *     refused and reads the winner's id. The one-command form is at least
 *     as strong as the pair: the test (NX), the write and the read of the
 *     holder are one atomic command, so the holder read is the one that
 *     refused the SET, while between the pair's SET and GET the key may
 *     expire (the GET then shows nil or a newer holder: c is skipped, as
 *     for any other holder, never taken twice). Both forms create the key
 *     only with SET NX, so stores using different forms (the two-command
 *     fallback next to the one-command form) exclude each other too.
 *   - A redelivered request republishes byte-identical bytes: once W (or a
 *     concurrent duplicate's W) has run, result:{rid} holds the bytes, is
 *     never overwritten (NX) and lives longer than any redelivery window
 *     (idempotency TTL). The redelivery finds them at R0, or at G when it
 *     raced past R0; it publishes those bytes, never the ones it built.
 *   - A crash between any two steps: after Rk (some reservation of rid
 *     taken, nothing recorded) the redelivery ranks again and walks the
 *     same candidates: a courier it took before is found holding rid and
 *     is taken again (unless a better ranked one became free meanwhile:
 *     then the earlier reservation is an orphan, see below). The result is
 *     built and recorded by the redelivery; nothing was published before,
 *     so no answer is contradicted. After W, before P: the redelivery finds
 *     the record at R0 and publishes it. After P, before the commit: the
 *     same, and the duplicate is byte-identical. A crash inside a
 *     pipelined round (some commands run, some not) is one of these cases
 *     per request, since each request's commands in a round are one SET NX
 *     GET, or one SET NX and one GET, of one key.
 *   - Two processes on one rid at once (a rebalance while a batch is in
 *     flight): both may take different couriers (one took ck, the other,
 *     ranking again with fresher data, a better one), but only one W is
 *     stored; the other process reads it at G and publishes the same bytes.
 *     What can remain is a reservation that no stored result names: an
 *     orphan. It keeps that courier from other requests until its TTL
 *     (--reservation-ttl), exactly as a reservation whose result was
 *     published does; it never makes a courier reserved twice and never
 *     changes a published answer. The same holds for a crash after Rk
 *     whose redelivery picks another courier, and for a reservation taken
 *     in the round that found the marker lost (below).
 *   - The marker (store_marker.c) replaces the script's check with a GET
 *     at the head of three pipelines of the batch: R0 (once the process
 *     has an id), round 1 and W. A loss that happened before the batch is
 *     found at R0, before anything of the batch is written. One that
 *     happens during the batch is found at round 1 or W, but the commands
 *     pipelined behind that GET have run by then (no check is atomic
 *     without a script: another client's FLUSHALL can fall between two
 *     commands of a pipeline). They can only have written reservations
 *     and results of this batch into the new data set, which the batch
 *     does not publish (it fails and the store is held until an operator
 *     acknowledges); after that its redelivery finds them as above (its
 *     own reservation, its own stored result).
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

/* The marker reply at the head of a write pipeline: DD_ERR (errstr, loss
 * declared when it is one) unless it holds the id this process remembers. */
static int take_marker_reply(dd_store_t *st, char *errstr, size_t errstr_size) {
    return dd_store_cmd_marker_reply(st, st->store_id, st->store_id_gen, errstr,
                                     errstr_size);
}

/* Connects, refuses the batch while the state is lost, and makes sure the
 * marker exists (the first write of this process) with the id it holds. */
static int begin_writes(dd_store_t *st, char *errstr, size_t errstr_size) {
    if (dd_store_begin(st, errstr, errstr_size) != DD_OK)
        return DD_ERR;
    return dd_store_marker_ensure(&st->conn, st->store_id, sizeof(st->store_id),
                                  &st->store_id_gen, errstr, errstr_size);
}

/* Charges an error reply r of cmd on kind + id to (text, *data_error):
 * 0 when r is no error reply, 1 when it was a data error (counted), -1
 * when it is transient (errstr filled: the batch fails). */
static int take_error(dd_store_t *st, const redisReply *r, const char *cmd,
                      const char *kind, const char *id, char *text,
                      size_t text_size, int *data_error, char *errstr,
                      size_t errstr_size) {
    char key[DD_STORE_PREFIX_MAX + 16 + 256];
    int cls;

    if (r->type != REDIS_REPLY_ERROR)
        return 0;
    snprintf(key, sizeof(key), "%s%s%s", st->prefix, kind, id);
    cls = dd_store_reply_error(st, r, cmd, key, text, text_size, errstr,
                               errstr_size);
    if (cls != DD_STORE_ERROR_DATA)
        return -1;
    *data_error = 1;
    st->stats.data_errors++;
    return 1;
}

/* A reply of a type the command never gives: a data error of its key. */
static void unexpected(dd_store_t *st, const char *cmd, const char *kind,
                       const char *id, char *text, size_t text_size,
                       int *data_error) {
    dd_set_error(text, text_size, "redis %s %s%s%s: unexpected reply", cmd,
                 st->prefix, kind, id);
    *data_error = 1;
    st->stats.data_errors++;
}

/* Drops the connection after a failed write call (a transient error reply
 * or the marker: a lost context was dropped already). */
static int writes_failed(dd_store_t *st) {
    if (dd_store_conn_is_up(&st->conn))
        dd_store_conn_drop(&st->conn);
    return DD_ERR;
}

/*----- RT3: reservations -----*/

/* The holder of a reservation that was not created by us (a refused SET
 * NX's GET, or what SET NX GET returned): 1 when it is decided (held by
 * an earlier delivery of rid, so ours; or none left), 0 when its next
 * candidate is to be tried. */
static int take_holder(dd_store_reserve_t *rv, size_t k,
                       const redisReply *holder) {
    size_t idlen = strlen(rv->request_id);

    if (holder->type == REDIS_REPLY_STRING && holder->len == idlen &&
        memcmp(holder->str, rv->request_id, idlen) == 0) {
        rv->chosen = (int)k; /* held by an earlier delivery of rid */
        return 1;
    }
    return k + 1 >= rv->ncandidates; /* held by another: next, if any */
}

/* The SET NX and GET replies of one reservation's round: 1 when it is
 * decided (chosen, none left, or a data error), 0 when its next candidate
 * is to be tried, -1 when a transient error fails the batch. */
static int take_reserve_replies(dd_store_t *st, dd_store_reserve_t *rv,
                                size_t k, const redisReply *set,
                                const redisReply *get, char *errstr,
                                size_t errstr_size) {
    const char *c = rv->candidate_ids[k];
    int t;

    t = take_error(st, set, "SET", "reservation:", c, rv->error,
                   sizeof(rv->error), &rv->data_error, errstr, errstr_size);
    if (t == 0)
        t = take_error(st, get, "GET", "reservation:", c, rv->error,
                       sizeof(rv->error), &rv->data_error, errstr, errstr_size);
    if (t != 0)
        return t;
    if (set->type == REDIS_REPLY_STATUS) { /* OK: created by us */
        rv->chosen = (int)k;
        return 1;
    }
    if (set->type != REDIS_REPLY_NIL ||
        (get->type != REDIS_REPLY_STRING && get->type != REDIS_REPLY_NIL)) {
        unexpected(st, set->type != REDIS_REPLY_NIL ? "SET" : "GET",
                   "reservation:", c, rv->error, sizeof(rv->error),
                   &rv->data_error);
        return 1;
    }
    return take_holder(rv, k, get);
}

/* The reply of one reservation's SET NX GET: nil when the SET created the
 * key (ours), else the holder's id. Same returns as above. A syntax error
 * says the server does not take NX with GET (older than 7.0.0, though the
 * handshake said otherwise): the store stops using the form and the batch
 * fails as transient, to be retried with SET NX and GET. */
static int take_reserve_reply(dd_store_t *st, dd_store_reserve_t *rv, size_t k,
                              const redisReply *r, char *errstr,
                              size_t errstr_size) {
    const char *c = rv->candidate_ids[k];

    if (r->type == REDIS_REPLY_ERROR &&
        strncmp(r->str, "ERR syntax error", 16) == 0) {
        st->stats.reply_errors++;
        st->set_nx_get_off = 1;
        dd_set_error(errstr, errstr_size,
                     "redis SET %sreservation:%s NX GET: %s (SET NX GET "
                     "needs Redis >= 7.0.0; retried as SET NX and GET)",
                     st->prefix, c, r->str);
        return -1;
    }
    switch (take_error(st, r, "SET", "reservation:", c, rv->error,
                       sizeof(rv->error), &rv->data_error, errstr,
                       errstr_size)) {
        case 1:
            return 1;
        case -1:
            return -1;
        default:
            break;
    }
    if (r->type == REDIS_REPLY_NIL) { /* created by us */
        rv->chosen = (int)k;
        return 1;
    }
    if (r->type != REDIS_REPLY_STRING) {
        unexpected(st, "SET", "reservation:", c, rv->error, sizeof(rv->error),
                   &rv->data_error);
        return 1;
    }
    return take_holder(rv, k, r);
}

/* Appends one reservation's commands for candidate k: SET NX GET EX when
 * one, else SET NX EX and GET. */
static int append_reserve(dd_store_t *st, dd_store_argv_t *a,
                          const dd_store_reserve_t *rv, size_t k, int one) {
    int failed;

    dd_store_argv_add_str(a, "SET");
    dd_store_cmd_add_key(a, st, "reservation:", rv->candidate_ids[k]);
    dd_store_argv_add_str(a, rv->request_id);
    dd_store_argv_add_str(a, "NX");
    if (one)
        dd_store_argv_add_str(a, "GET");
    dd_store_argv_add_str(a, "EX");
    dd_store_argv_add_str(a, st->reservation_ttl);
    failed = dd_store_cmd_append(st, a) != DD_OK;
    if (one)
        return failed ? DD_ERR : DD_OK;
    dd_store_argv_add_str(a, "GET");
    dd_store_cmd_add_key(a, st, "reservation:", rv->candidate_ids[k]);
    failed |= dd_store_cmd_append(st, a) != DD_OK;
    return failed ? DD_ERR : DD_OK;
}

/* The replies of one reservation's round (one, or SET and GET) into t:
 * DD_ERR only when the context was lost. */
static int read_reserve(dd_store_t *st, dd_store_reserve_t *rv, size_t k,
                        int one, int failed, int *t, char *errstr,
                        size_t errstr_size) {
    redisReply *set, *get = NULL;

    if (dd_store_conn_get_reply(&st->conn, &set, errstr, errstr_size) != DD_OK)
        return DD_ERR;
    if (!one && dd_store_conn_get_reply(&st->conn, &get, errstr, errstr_size) !=
                    DD_OK) {
        dd_store_reply_done(set);
        return DD_ERR;
    }
    if (failed)
        *t = 1;
    else if (one)
        *t = take_reserve_reply(st, rv, k, set, errstr, errstr_size);
    else
        *t = take_reserve_replies(st, rv, k, set, get, errstr, errstr_size);
    dd_store_reply_done(set);
    if (get != NULL)
        dd_store_reply_done(get);
    return DD_OK;
}

/* One round: the marker first (round 1), then the commands of every open
 * reservation (one per candidate when one, else two); next[] and open[]
 * advance. DD_ERR fails the batch. */
static int reserve_round(dd_store_t *st, dd_store_argv_t *a,
                         dd_store_reserve_t *rs, size_t *open, size_t *nopen,
                         size_t *next, int first, int one, char *errstr,
                         size_t errstr_size) {
    size_t left = 0;
    int failed = 0;

    if (first)
        failed |= dd_store_cmd_marker_get(st, a) != DD_OK;
    for (size_t i = 0; i < *nopen && !failed; i++)
        failed |=
            append_reserve(st, a, &rs[open[i]], next[open[i]], one) != DD_OK;
    if (dd_store_cmd_sent(st, failed, errstr, errstr_size) != DD_OK)
        return DD_ERR;
    st->stats.reserve_rounds++;
    if (first && take_marker_reply(st, errstr, errstr_size) != DD_OK)
        return DD_ERR;
    for (size_t i = 0; i < *nopen; i++) {
        int t;

        if (read_reserve(st, &rs[open[i]], next[open[i]], one, failed, &t,
                         errstr, errstr_size) != DD_OK)
            return DD_ERR;
        if (t < 0)
            failed = 1;
        else if (t == 0) {
            next[open[i]]++;
            open[left++] = open[i];
        }
    }
    *nopen = left;
    return failed ? DD_ERR : DD_OK;
}

int dd_store_reserve(dd_store_t *st, dd_store_reserve_t *rs, size_t n,
                     char *errstr, size_t errstr_size) {
    dd_store_argv_t a;
    size_t *open, *next, nopen = 0;
    int rc = DD_OK, one;

    for (size_t i = 0; i < n; i++) {
        rs[i].chosen = DD_STORE_RESERVE_NONE;
        rs[i].data_error = 0;
        rs[i].error[0] = '\0';
        dd_assert(rs[i].ncandidates <= DD_STORE_CANDIDATES_MAX);
        nopen += rs[i].ncandidates > 0;
    }
    if (nopen == 0)
        return DD_OK;
    if (begin_writes(st, errstr, errstr_size) != DD_OK)
        return DD_ERR;

    open = dd_xcalloc(nopen, sizeof(*open));
    next = dd_xcalloc(n, sizeof(*next));
    nopen = 0;
    for (size_t i = 0; i < n; i++)
        if (rs[i].ncandidates > 0)
            open[nopen++] = i;
    /* Decided once per call: the connection is the one handshaken above. */
    one = !st->set_nx_get_off && dd_store_conn_set_nx_get_ok(&st->conn);
    dd_store_argv_init(&a, 8);
    for (int first = 1; nopen > 0 && rc == DD_OK; first = 0)
        rc = reserve_round(st, &a, rs, open, &nopen, next, first, one, errstr,
                           errstr_size);
    dd_store_argv_close(&a);
    dd_free(open);
    dd_free(next);
    if (rc != DD_OK) {
        for (size_t i = 0; i < n; i++)
            rs[i].chosen = DD_STORE_RESERVE_NONE;
        return writes_failed(st);
    }
    dd_store_conn_ok(&st->conn);
    return DD_OK;
}

/*----- RT4: records -----*/

void dd_store_record_clear(dd_store_record_t *rec) {
    dd_free(rec->stored);
    rec->stored = NULL;
    rec->stored_len = 0;
    rec->data_error = 0;
    rec->error[0] = '\0';
}

/* The SET NX reply of a record: 1 when the NX was refused (read the
 * stored bytes next), 0 when done (stored, or a data error), -1 when a
 * transient error fails the batch. */
static int take_record_reply(dd_store_t *st, dd_store_record_t *rec,
                             const redisReply *r, char *errstr,
                             size_t errstr_size) {
    int t =
        take_error(st, r, "SET", "result:", rec->request_id, rec->error,
                   sizeof(rec->error), &rec->data_error, errstr, errstr_size);

    if (t != 0)
        return t < 0 ? -1 : 0;
    if (r->type == REDIS_REPLY_NIL)
        return 1;
    if (r->type != REDIS_REPLY_STATUS)
        unexpected(st, "SET", "result:", rec->request_id, rec->error,
                   sizeof(rec->error), &rec->data_error);
    return 0;
}

/* The GET of a record whose NX was refused: the stored bytes, a data
 * error, or -1 (transient, or the record vanished: the batch is retried). */
static int take_stored_reply(dd_store_t *st, dd_store_record_t *rec,
                             const redisReply *r, char *errstr,
                             size_t errstr_size) {
    int t =
        take_error(st, r, "GET", "result:", rec->request_id, rec->error,
                   sizeof(rec->error), &rec->data_error, errstr, errstr_size);

    if (t != 0)
        return t < 0 ? -1 : 0;
    if (r->type == REDIS_REPLY_NIL) {
        dd_set_error(errstr, errstr_size,
                     "redis GET %sresult:%s: absent right after SET NX "
                     "found it",
                     st->prefix, rec->request_id);
        return -1;
    }
    if (r->type != REDIS_REPLY_STRING) {
        unexpected(st, "GET", "result:", rec->request_id, rec->error,
                   sizeof(rec->error), &rec->data_error);
        return 0;
    }
    /* Every byte (a NUL included): stored_len must be what is there. */
    rec->stored = dd_xmalloc(r->len + 1);
    memcpy(rec->stored, r->str, r->len);
    rec->stored[r->len] = '\0';
    rec->stored_len = r->len;
    return 0;
}

/* The follow-up round trip: GET result:{rid} of every record flagged in
 * refused[]. */
static int read_stored(dd_store_t *st, dd_store_argv_t *a,
                       dd_store_record_t *recs, size_t n, const int *refused,
                       char *errstr, size_t errstr_size) {
    int failed = 0;

    for (size_t i = 0; i < n && !failed; i++) {
        if (!refused[i])
            continue;
        dd_store_argv_add_str(a, "GET");
        dd_store_cmd_add_key(a, st, "result:", recs[i].request_id);
        failed |= dd_store_cmd_append(st, a) != DD_OK;
    }
    if (dd_store_cmd_sent(st, failed, errstr, errstr_size) != DD_OK)
        return DD_ERR;
    for (size_t i = 0; i < n; i++) {
        redisReply *r;

        if (!refused[i])
            continue;
        if (dd_store_conn_get_reply(&st->conn, &r, errstr, errstr_size) !=
            DD_OK)
            return DD_ERR;
        st->stats.record_reads++;
        if (!failed &&
            take_stored_reply(st, &recs[i], r, errstr, errstr_size) < 0)
            failed = 1;
        dd_store_reply_done(r);
    }
    return failed ? DD_ERR : DD_OK;
}

/* Appends the marker GET (when there are records), the ETA puts and the
 * SET NX of every record. */
static int append_records(dd_store_t *st, dd_store_argv_t *a,
                          const dd_store_eta_put_t *puts, size_t nputs,
                          const dd_store_record_t *recs, size_t n) {
    char secs[24];
    int failed = n > 0 && dd_store_cmd_marker_get(st, a) != DD_OK;

    for (size_t i = 0; i < nputs && !failed; i++) {
        dd_store_argv_add_str(a, "SET");
        dd_store_cmd_add_key(a, st, "", puts[i].key);
        dd_store_argv_add_str(a,
                              dd_store_dec_str(secs, (long long)puts[i].secs));
        dd_store_argv_add_str(a, "EX");
        dd_store_argv_add_str(a, st->eta_ttl);
        failed |= dd_store_cmd_append(st, a) != DD_OK;
    }
    for (size_t i = 0; i < n && !failed; i++) {
        dd_store_argv_add_str(a, "SET");
        dd_store_cmd_add_key(a, st, "result:", recs[i].request_id);
        dd_store_argv_add(a, recs[i].json, recs[i].json_len);
        dd_store_argv_add_str(a, "NX");
        dd_store_argv_add_str(a, "EX");
        dd_store_argv_add_str(a, st->idempotency_ttl);
        failed |= dd_store_cmd_append(st, a) != DD_OK;
    }
    return failed ? DD_ERR : DD_OK;
}

int dd_store_record(dd_store_t *st, dd_store_eta_put_t *puts, size_t nputs,
                    dd_store_record_t *recs, size_t n, int *eta_put_errors,
                    char *errstr, size_t errstr_size) {
    dd_store_argv_t a;
    int failed, put_errors = 0, nrefused = 0;
    int *refused = NULL;

    for (size_t i = 0; i < n; i++) {
        recs[i].stored = NULL;
        recs[i].stored_len = 0;
        recs[i].data_error = 0;
        recs[i].error[0] = '\0';
    }
    if (eta_put_errors != NULL)
        *eta_put_errors = 0;
    for (size_t i = 0; i < nputs; i++)
        puts[i].error = 0;
    if (nputs == 0 && n == 0)
        return DD_OK;
    if ((n > 0 ? begin_writes(st, errstr, errstr_size)
               : dd_store_begin(st, errstr, errstr_size)) != DD_OK)
        return DD_ERR;

    dd_store_argv_init(&a, 8);
    failed = append_records(st, &a, puts, nputs, recs, n) != DD_OK;
    if (dd_store_cmd_sent(st, failed, errstr, errstr_size) != DD_OK) {
        dd_store_argv_close(&a);
        return DD_ERR;
    }
    refused = dd_xcalloc(n ? n : 1, sizeof(*refused));
    if (n > 0 && take_marker_reply(st, errstr, errstr_size) != DD_OK)
        goto err;
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
        dd_store_reply_done(r);
    }
    for (size_t i = 0; i < n; i++) {
        redisReply *r;
        int t;
        if (dd_store_conn_get_reply(&st->conn, &r, errstr, errstr_size) !=
            DD_OK)
            goto err;
        t = failed ? 0
                   : take_record_reply(st, &recs[i], r, errstr, errstr_size);
        dd_store_reply_done(r);
        failed |= t < 0;
        refused[i] = t > 0;
        nrefused += t > 0;
    }
    if (failed)
        goto err;
    if (nrefused > 0 &&
        read_stored(st, &a, recs, n, refused, errstr, errstr_size) != DD_OK)
        goto err;

    dd_store_argv_close(&a);
    dd_free(refused);
    st->stats.eta_errors += (uint64_t)put_errors;
    if (eta_put_errors != NULL)
        *eta_put_errors = put_errors;
    dd_store_conn_ok(&st->conn);
    return DD_OK;

err:
    dd_store_argv_close(&a);
    dd_free(refused);
    for (size_t i = 0; i < n; i++)
        dd_store_record_clear(&recs[i]);
    return writes_failed(st);
}
