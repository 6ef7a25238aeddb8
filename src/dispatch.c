/* SPDX-License-Identifier: MIT */
/*
 * dispatch: request -> result for a batch of requests (see dispatch.h for
 * the rules). The batch goes through the store in four steps:
 *
 *   RT1 load:    the ledger of every request; the parcel and the couriers
 *                of every request that has not expired.
 *   RT2 ETA:     every distinct eta:v1:... key the batch needs (a key shared
 *                by two legs is read once).
 *   RT3 reserve: the ranked candidates of every request not answered from
 *                the ledger; the store reserves the first one free or
 *                already this request's (one round trip without conflicts).
 *   RT4 record:  the cache misses written back, and the result JSON, built
 *                once per request for the courier reserved or the fallback
 *                rejection, stored unless another delivery stored first.
 *
 * A result that was already stored is validated (dd_codec_result_check())
 * and its status and reason read back from its JSON, since the stored
 * bytes are the answer.
 *
 * The checks of data read from Redis (a stored result, a cached ETA, a
 * fleet hash) and their rate-limited warnings are in dispatch_data.c.
 *
 * No state, no locks: it runs on the thread that owns the store (the rate
 * limiters of the data warnings, in dispatch_data.c, are atomics shared by
 * every thread). Never includes hiredis or librdkafka.
 */
#include "dispatch.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "dispatch_int.h"
#include "log.h"
#include "route.h"
#include "store.h"
#include "util.h"

/* One ranked candidate of one request. */
typedef struct cand {
    const char *id;  /* borrowed from the request */
    double lat, lon; /* degrees */
    dd_vehicle_t vehicle;
    char cell[DD_ROUTE_CELL_SIZE]; /* courier cell */
    size_t leg1, leg2;             /* indexes into the batch's legs */
    int64_t secs1, secs2;          /* s */
    int cached;                    /* both legs were cache hits */
    size_t order;                  /* position in the request */
} cand_t;

/* One ETA leg of one candidate. */
typedef struct leg {
    char key[DD_ROUTE_ETA_KEY_MAX];
    dd_vehicle_t vehicle;
    const char *from; /* borrowed cells */
    const char *to;
    size_t item; /* index of the item the leg belongs to */
    size_t uniq; /* index of its distinct key */
} leg_t;

/* A leg in the sorted view (a struct, so qsort moves a plain value). */
typedef struct leg_ref {
    leg_t *lg;
} leg_ref_t;

/* Per-item working state of a batch. The per-courier arrays are slices of
 * batch-wide arrays sized by the couriers the batch names, not 64 slots per
 * item: zeroing those for every request was a measurable cost. */
typedef struct work {
    const char **ids; /* couriers to load, deduped: slice of the batch's */
    size_t nids;
    dd_store_courier_t *couriers; /* borrowed slice of the batch array */
    int expired;
    int answered;          /* result known after RT1 */
    int failed;            /* a store data error answers it (RT1) */
    dd_status_t fb_status; /* fallback when no candidate is free */
    const char *fb_reason;
    char pickup_cell[DD_ROUTE_CELL_SIZE];
    char dropoff_cell[DD_ROUTE_CELL_SIZE];
    cand_t *cands; /* nids slots, slices of the batch's arrays */
    size_t ncands;
    const char **cand_ids; /* ranked ids, a slice of the batch's */
    char *json;            /* owned: the result built (RT4) */
    size_t reserve;        /* index into the reservations */
    size_t record;         /* index into the records */
} work_t;

/* The batch: everything allocated for one dd_dispatch_batch() call. */
typedef struct batch {
    work_t *w;
    dd_store_load_t *loads;
    dd_store_courier_t *couriers;
    const char **ids;      /* the work slices: ids */
    cand_t *cands;         /* ... candidates */
    const char **cand_ids; /* ... ranked ids */
    leg_t *legs;
    size_t nlegs;
    leg_ref_t *sorted;
    const char **ukeys; /* distinct keys */
    int64_t *usecs;     /* their seconds after RT2 (and the fill-in) */
    int64_t *ufetched;  /* what RT2 said: secs, miss or error */
    size_t *ufirst;     /* the first leg with each key */
    size_t nuniq;
    dd_store_eta_put_t *puts;
    size_t *put_uniq;
    size_t nputs;
    dd_store_reserve_t *reserves;
    size_t nreserves;
    dd_store_record_t *records;
    size_t nrecords;
} batch_t;

void dd_dispatch_item_reset(dd_dispatch_item_t *item) {
    dd_free(item->result);
    item->result = NULL;
    item->result_len = 0;
    item->status = DD_STATUS_REJECTED;
    item->reason = NULL;
    item->from_ledger = 0;
    item->eta_hits = 0;
    item->eta_misses = 0;
    item->eta_errors = 0;
    item->data_error = 0;
    item->data_text[0] = '\0';
}

/* A store data error on one of the item's keys: its answer. */
static void data_error(dd_dispatch_item_t *it, const char *text) {
    it->data_error = 1;
    dd_strlcpy(it->data_text, text, sizeof(it->data_text));
}

static int is_expired(const dd_dispatch_item_t *it, int64_t now_wall_ms) {
    return it->req->deadline_ms > 0 && it->msg_ts_ms >= 0 &&
           now_wall_ms > it->msg_ts_ms + it->req->deadline_ms;
}

/* The couriers a request names, without duplicates, in request order. */
static void collect_ids(const dd_request_t *req, work_t *w) {
    w->nids = 0;
    if (req->n_candidates == 0) {
        w->ids[w->nids++] = req->courier_id;
        return;
    }
    for (int i = 0; i < req->n_candidates; i++) {
        int dup = 0;
        for (size_t j = 0; j < w->nids && !dup; j++)
            dup = strcmp(w->ids[j], req->candidates[i]) == 0;
        if (!dup)
            w->ids[w->nids++] = req->candidates[i];
    }
}

/* The error text is the last field of the structs alloc_with_error()
 * allocates. */
#define ERROR_IS_LAST(T)                                                       \
    _Static_assert(sizeof(T) - offsetof(T, error) < DD_STORE_ERROR_MAX + 8,    \
                   #T ": error must be the last field")
ERROR_IS_LAST(dd_store_load_t);
ERROR_IS_LAST(dd_store_reserve_t);
ERROR_IS_LAST(dd_store_record_t);

/* n structs of size bytes, zeroed up to their last field, the error text
 * (err_off bytes), which is made empty: the same as dd_xcalloc() for every
 * reader, without clearing DD_STORE_ERROR_MAX bytes per request. */
static void *alloc_with_error(size_t n, size_t size, size_t err_off) {
    char *p = dd_xmalloc(n * size);

    for (size_t i = 0; i < n; i++) {
        memset(p + i * size, 0, err_off);
        p[i * size + err_off] = '\0';
    }
    return p;
}

static void batch_free(batch_t *b, size_t n) {
    for (size_t i = 0; b->w != NULL && i < n; i++)
        dd_free(b->w[i].json);
    for (size_t i = 0; b->loads != NULL && i < n; i++)
        dd_store_load_clear(&b->loads[i]);
    for (size_t i = 0; b->records != NULL && i < b->nrecords; i++)
        dd_store_record_clear(&b->records[i]);
    dd_free(b->w);
    dd_free(b->loads);
    dd_free(b->couriers);
    dd_free(b->ids);
    dd_free(b->cands);
    dd_free(b->cand_ids);
    dd_free(b->legs);
    dd_free(b->sorted);
    dd_free(b->ukeys);
    dd_free(b->usecs);
    dd_free(b->ufetched);
    dd_free(b->ufirst);
    dd_free(b->puts);
    dd_free(b->put_uniq);
    dd_free(b->reserves);
    dd_free(b->records);
}

/* RT1 input: the ledger for every item, lookups only for live ones. */
static void plan_loads(batch_t *b, dd_dispatch_item_t *items, size_t n,
                       int64_t now_wall_ms) {
    size_t ncouriers = 0, nslots = 0, off = 0;

    b->w = dd_xcalloc(n, sizeof(*b->w));
    b->loads = alloc_with_error(n, sizeof(*b->loads),
                                offsetof(dd_store_load_t, error));
    for (size_t i = 0; i < n; i++) {
        b->w[i].expired = is_expired(&items[i], now_wall_ms);
        if (!b->w[i].expired) /* at most this many distinct couriers */
            nslots += items[i].req->n_candidates == 0
                          ? 1
                          : (size_t)items[i].req->n_candidates;
    }
    b->ids = dd_xcalloc(nslots, sizeof(*b->ids));
    for (size_t i = 0; i < n; i++) {
        b->w[i].ids = b->ids + ncouriers;
        if (!b->w[i].expired)
            collect_ids(items[i].req, &b->w[i]);
        ncouriers += b->w[i].nids;
    }
    /* Every slice below has nids slots. */
    b->couriers = dd_xcalloc(ncouriers, sizeof(*b->couriers));
    b->cands = dd_xcalloc(ncouriers, sizeof(*b->cands));
    b->cand_ids = dd_xcalloc(ncouriers, sizeof(*b->cand_ids));
    for (size_t i = 0; i < n; i++) {
        dd_store_load_t *l = &b->loads[i];

        b->w[i].couriers = b->couriers + off;
        b->w[i].cands = b->cands + off;
        b->w[i].cand_ids = b->cand_ids + off;
        off += b->w[i].nids;
        l->request_id = items[i].req->request_id;
        l->parcel_id = b->w[i].expired ? NULL : items[i].req->parcel_id;
        l->courier_ids = b->w[i].ids;
        l->ncouriers = b->w[i].nids;
        l->couriers = b->w[i].couriers;
    }
}

static void add_leg(batch_t *b, size_t item, dd_vehicle_t v, const char *from,
                    const char *to, size_t *idx) {
    leg_t *lg = &b->legs[b->nlegs];

    /* Cells and vehicle were validated, so the key always fits. */
    dd_assert(dd_route_eta_key(v, from, to, lg->key, sizeof(lg->key)) == DD_OK);
    lg->vehicle = v;
    lg->from = from;
    lg->to = to;
    lg->item = item;
    *idx = b->nlegs++;
}

/* After RT1: decide what each item needs. Items with a ledger entry are
 * answered; expired ones, unknown or invalid parcels and unknown, invalid
 * or unavailable couriers get no candidate (their rejection is recorded);
 * the rest get two legs per eligible candidate. */
static void evaluate(batch_t *b, dd_dispatch_item_t *items, size_t n) {
    size_t maxlegs = 0;

    for (size_t i = 0; i < n; i++)
        maxlegs += 2 * b->w[i].nids;
    b->legs = dd_xcalloc(maxlegs, sizeof(*b->legs));

    for (size_t i = 0; i < n; i++) {
        work_t *w = &b->w[i];
        const dd_store_load_t *l = &b->loads[i];
        const dd_store_parcel_t *p = &l->parcel;
        int courier_mode = items[i].req->n_candidates == 0;
        size_t ninvalid = 0;

        if (l->data_error) {
            w->failed = 1;
            continue;
        }
        if (l->ledger != NULL) {
            w->answered = 1;
            continue;
        }
        w->fb_status = DD_STATUS_REJECTED;
        if (w->expired) {
            w->fb_status = DD_STATUS_EXPIRED;
            w->fb_reason = DD_REASON(DEADLINE_EXPIRED);
            continue;
        }
        if (!p->found ||
            dd_route_cell(p->pickup_lat, p->pickup_lon, w->pickup_cell,
                          sizeof(w->pickup_cell)) != DD_OK ||
            dd_route_cell(p->dropoff_lat, p->dropoff_lon, w->dropoff_cell,
                          sizeof(w->dropoff_cell)) != DD_OK) {
            /* A found parcel is on the globe (store_parse.c), so its cells
             * exist; "pickup_lat" covers a store that did not check. */
            int invalid = p->invalid || p->found;

            w->fb_reason = invalid ? DD_REASON(PARCEL_DATA_INVALID)
                                   : DD_REASON(UNKNOWN_PARCEL);
            if (invalid)
                dd_dispatch_log_fleet_invalid(
                    &items[i], "parcel", items[i].req->parcel_id,
                    p->invalid ? p->bad_field : "pickup_lat");
            continue;
        }
        w->fb_reason = courier_mode ? DD_REASON(COURIER_UNAVAILABLE)
                                    : DD_REASON(NO_CANDIDATE_AVAILABLE);
        for (size_t j = 0; j < w->nids; j++) {
            const dd_store_courier_t *co = &w->couriers[j];
            cand_t *c = &w->cands[w->ncands];
            const char *bad = co->invalid ? co->bad_field : NULL;

            /* As for the parcel: checked by the store, kept for safety. */
            if (co->found &&
                dd_route_vehicle_parse(co->vehicle, strlen(co->vehicle),
                                       &c->vehicle) != DD_OK)
                bad = "vehicle";
            else if (co->found && dd_route_cell(co->lat, co->lon, c->cell,
                                                sizeof(c->cell)) != DD_OK)
                bad = "lat";
            if (bad != NULL) {
                ninvalid++;
                dd_dispatch_log_fleet_invalid(&items[i], "courier", w->ids[j],
                                              bad);
                if (courier_mode)
                    w->fb_reason = DD_REASON(COURIER_DATA_INVALID);
                continue;
            }
            if (!co->found) {
                if (courier_mode)
                    w->fb_reason = DD_REASON(UNKNOWN_COURIER);
                continue;
            }
            if (!co->available)
                continue;
            c->id = w->ids[j];
            c->lat = co->lat;
            c->lon = co->lon;
            c->order = j;
            add_leg(b, i, c->vehicle, c->cell, w->pickup_cell, &c->leg1);
            add_leg(b, i, c->vehicle, w->pickup_cell, w->dropoff_cell,
                    &c->leg2);
            w->ncands++;
        }
        /* Every candidate invalid: only fixing the data can help. */
        if (!courier_mode && ninvalid == w->nids)
            w->fb_reason = DD_REASON(COURIER_DATA_INVALID);
    }
}

static int cmp_leg(const void *a, const void *b) {
    const leg_ref_t *x = a, *y = b;
    return strcmp(x->lg->key, y->lg->key);
}

/* RT2 input: the distinct keys of all legs. */
static void plan_eta(batch_t *b) {
    b->sorted = dd_xcalloc(b->nlegs, sizeof(*b->sorted));
    b->ukeys = dd_xcalloc(b->nlegs, sizeof(*b->ukeys));
    b->usecs = dd_xcalloc(b->nlegs, sizeof(*b->usecs));
    b->ufetched = dd_xcalloc(b->nlegs, sizeof(*b->ufetched));
    b->ufirst = dd_xcalloc(b->nlegs, sizeof(*b->ufirst));
    for (size_t i = 0; i < b->nlegs; i++)
        b->sorted[i].lg = &b->legs[i];
    qsort(b->sorted, b->nlegs, sizeof(*b->sorted), cmp_leg);
    for (size_t i = 0; i < b->nlegs; i++) {
        leg_t *lg = b->sorted[i].lg;
        if (i == 0 || strcmp(lg->key, b->ukeys[b->nuniq - 1]) != 0) {
            b->ukeys[b->nuniq] = lg->key;
            /* The first leg of a key in batch order owns its put. */
            b->ufirst[b->nuniq] = (size_t)(lg - b->legs);
            b->nuniq++;
        } else if ((size_t)(lg - b->legs) < b->ufirst[b->nuniq - 1]) {
            b->ufirst[b->nuniq - 1] = (size_t)(lg - b->legs);
        }
        lg->uniq = b->nuniq - 1;
    }
}

/* After RT2: a cached value the model cannot give is an error (recomputed
 * and written back below); logged, rate limited. */
static void check_eta(batch_t *b, const dd_dispatch_item_t *items) {
    for (size_t u = 0; u < b->nuniq; u++) {
        const leg_t *lg = &b->legs[b->ufirst[u]];

        if (!dd_dispatch_eta_check(&items[lg->item], lg->key, lg->vehicle,
                                   lg->from, lg->to, b->ufetched[u]))
            b->ufetched[u] = DD_STORE_ETA_ERROR;
    }
}

/* After RT2: compute every leg the cache did not have, and plan its put. */
static void fill_eta(batch_t *b, dd_dispatch_item_t *items) {
    check_eta(b, items);
    b->puts = dd_xcalloc(b->nuniq, sizeof(*b->puts));
    b->put_uniq = dd_xcalloc(b->nuniq, sizeof(*b->put_uniq));
    for (size_t u = 0; u < b->nuniq; u++) {
        const leg_t *lg = &b->legs[b->ufirst[u]];

        if (b->ufetched[u] >= 0) {
            b->usecs[u] = b->ufetched[u];
            continue;
        }
        b->usecs[u] = dd_route_leg_seconds(lg->vehicle, lg->from, lg->to);
        dd_assert(b->usecs[u] >= 0); /* validated cells and vehicle */
        b->puts[b->nputs].key = b->ukeys[u];
        b->puts[b->nputs].secs = b->usecs[u];
        b->put_uniq[b->nputs] = u;
        b->nputs++;
    }
    for (size_t i = 0; i < b->nlegs; i++) {
        const leg_t *lg = &b->legs[i];
        int64_t f = b->ufetched[lg->uniq];

        if (f >= 0)
            items[lg->item].eta_hits++;
        else if (f == DD_STORE_ETA_MISS)
            items[lg->item].eta_misses++;
        else
            items[lg->item].eta_errors++;
    }
}

/* Ranks the candidates by pickup ETA, ties in request order (insertion
 * sort: stable, and n <= 64), and plans the item's reservation. */
static void rank(batch_t *b, work_t *w, const dd_dispatch_item_t *it) {
    dd_store_reserve_t *rv = &b->reserves[b->nreserves];

    for (size_t j = 0; j < w->ncands; j++) {
        cand_t *c = &w->cands[j];
        size_t u1 = b->legs[c->leg1].uniq, u2 = b->legs[c->leg2].uniq;
        c->secs1 = b->usecs[u1];
        c->secs2 = b->usecs[u2];
        c->cached = b->ufetched[u1] >= 0 && b->ufetched[u2] >= 0;
    }
    for (size_t j = 1; j < w->ncands; j++) {
        cand_t tmp = w->cands[j];
        size_t k = j;
        while (k > 0 && (w->cands[k - 1].secs1 > tmp.secs1 ||
                         (w->cands[k - 1].secs1 == tmp.secs1 &&
                          w->cands[k - 1].order > tmp.order))) {
            w->cands[k] = w->cands[k - 1];
            k--;
        }
        w->cands[k] = tmp;
    }
    for (size_t j = 0; j < w->ncands; j++)
        w->cand_ids[j] = w->cands[j].id;
    rv->request_id = it->req->request_id;
    rv->candidate_ids = w->cand_ids;
    rv->ncandidates = w->ncands;
    w->reserve = b->nreserves++;
}

/* The item's result JSON (owned), built once: the assignment of ranked
 * candidate chosen, or the fallback for DD_STORE_RESERVE_NONE. The codec
 * refusing validated requests and Kafka coordinates is a bug (or a caller
 * passing a bad source), never bad input. */
static char *build(const dd_dispatch_item_t *it, const work_t *w,
                   const dd_store_load_t *l, int chosen, int64_t now_wall_ms) {
    dd_result_t res;
    const dd_store_parcel_t *p = &l->parcel;
    char *json;

    memset(&res, 0, sizeof(res));
    dd_strlcpy(res.request_id, it->req->request_id, sizeof(res.request_id));
    dd_strlcpy(res.parcel_id, it->req->parcel_id, sizeof(res.parcel_id));
    dd_strlcpy(res.source_topic, it->source_topic, sizeof(res.source_topic));
    res.source_partition = it->source_partition;
    res.source_offset = it->source_offset;
    res.processed_at_ms = now_wall_ms;
    if (chosen >= 0) {
        const cand_t *c = &w->cands[chosen];
        res.status = DD_STATUS_ASSIGNED;
        dd_strlcpy(res.courier_id, c->id, sizeof(res.courier_id));
        res.pickup_eta_seconds = c->secs1;
        res.eta_seconds = c->secs1 + c->secs2;
        res.distance_m =
            dd_route_distance_m(c->lat, c->lon, p->pickup_lat, p->pickup_lon,
                                p->dropoff_lat, p->dropoff_lon);
        res.eta_cached = c->cached;
    } else {
        res.status = w->fb_status;
        res.reason = w->fb_reason;
        /* A rejection names the courier the request named, if any. */
        dd_strlcpy(res.courier_id, it->req->courier_id, sizeof(res.courier_id));
    }
    json = dd_codec_result_json(&res, NULL);
    if (json == NULL)
        dd_panic("codec refused the result of request %s", res.request_id);
    return json;
}

/* Clear the items' outputs, then RT1 (ledger, parcels, couriers) and RT2
 * (ETA cache reads), shared by real and dry runs; then the ranking and the
 * reservations planned for every item not answered by RT1. DD_ERR when the
 * store failed; nothing was written. */
static int read_phase(dd_store_t *st, batch_t *b, dd_dispatch_item_t *items,
                      size_t n, int64_t now_wall_ms, char *errstr,
                      size_t errstr_size) {
    for (size_t i = 0; i < n; i++) {
        items[i].result = NULL;
        dd_dispatch_item_reset(&items[i]);
    }
    plan_loads(b, items, n, now_wall_ms);
    if (dd_store_load(st, b->loads, n, errstr, errstr_size) != DD_OK)
        return DD_ERR;
    evaluate(b, items, n);
    plan_eta(b);
    if (dd_store_eta_get(st, b->ukeys, b->nuniq, b->ufetched, errstr,
                         errstr_size) != DD_OK)
        return DD_ERR;
    fill_eta(b, items);
    b->reserves = alloc_with_error(n, sizeof(*b->reserves),
                                   offsetof(dd_store_reserve_t, error));
    b->records = alloc_with_error(n, sizeof(*b->records),
                                  offsetof(dd_store_record_t, error));
    for (size_t i = 0; i < n; i++)
        if (!b->w[i].answered && !b->w[i].failed)
            rank(b, &b->w[i], &items[i]);
    return DD_OK;
}

/* Hands item i its answer when RT1 gave it one (a store data error, or the
 * stored result); true then. Shared by real and dry runs. */
static int answer_from_rt1(batch_t *b, dd_dispatch_item_t *items, size_t i) {
    dd_store_load_t *l = &b->loads[i];

    if (b->w[i].failed) {
        data_error(&items[i], l->error);
        return 1;
    }
    if (b->w[i].answered) {
        dd_dispatch_take_stored(&items[i], &l->ledger, l->ledger_len);
        return 1;
    }
    return 0;
}

/* Frees the batch; on DD_ERR the items are left with no answer. */
static int batch_end(batch_t *b, dd_dispatch_item_t *items, size_t n, int rc) {
    if (rc != DD_OK)
        for (size_t i = 0; i < n; i++)
            dd_dispatch_item_reset(&items[i]);
    batch_free(b, n);
    return rc;
}

/* After RT3: the result of every item whose reservation is decided, and
 * its record for RT4. */
static void plan_records(batch_t *b, const dd_dispatch_item_t *items, size_t n,
                         int64_t now_wall_ms) {
    for (size_t i = 0; i < n; i++) {
        work_t *w = &b->w[i];
        const dd_store_reserve_t *rv = &b->reserves[w->reserve];
        dd_store_record_t *rec = &b->records[b->nrecords];

        if (w->answered || w->failed || rv->data_error)
            continue;
        w->json = build(&items[i], w, &b->loads[i], rv->chosen, now_wall_ms);
        rec->request_id = items[i].req->request_id;
        rec->json = w->json;
        rec->json_len = strlen(w->json);
        w->record = b->nrecords++;
    }
}

/* After RT4: item i's answer: a data error of its reservation or record,
 * the bytes another delivery stored first (checked as a ledger), or ours. */
static void answer(batch_t *b, dd_dispatch_item_t *it, size_t i) {
    work_t *w = &b->w[i];
    const dd_store_reserve_t *rv = &b->reserves[w->reserve];
    dd_store_record_t *rec = &b->records[w->record];

    if (rv->data_error) {
        data_error(it, rv->error);
    } else if (rec->data_error) {
        data_error(it, rec->error);
    } else if (rec->stored != NULL) {
        dd_dispatch_take_stored(it, &rec->stored, rec->stored_len);
    } else {
        it->result = w->json; /* transferred */
        it->result_len = rec->json_len;
        w->json = NULL;
        it->status = rv->chosen >= 0 ? DD_STATUS_ASSIGNED : w->fb_status;
        it->reason = rv->chosen >= 0 ? NULL : w->fb_reason;
    }
}

int dd_dispatch_batch(dd_store_t *st, dd_dispatch_item_t *items, size_t n,
                      int64_t now_wall_ms, char *errstr, size_t errstr_size) {
    batch_t b;
    int put_errors = 0;

    memset(&b, 0, sizeof(b));
    if (n == 0)
        return DD_OK;
    if (read_phase(st, &b, items, n, now_wall_ms, errstr, errstr_size) !=
            DD_OK ||
        dd_store_reserve(st, b.reserves, b.nreserves, errstr, errstr_size) !=
            DD_OK)
        return batch_end(&b, items, n, DD_ERR);
    plan_records(&b, items, n, now_wall_ms);
    if (dd_store_record(st, b.puts, b.nputs, b.records, b.nrecords, &put_errors,
                        errstr, errstr_size) != DD_OK)
        return batch_end(&b, items, n, DD_ERR);
    for (size_t k = 0; k < b.nputs; k++)
        if (b.puts[k].error)
            items[b.legs[b.ufirst[b.put_uniq[k]]].item].eta_errors++;

    /* Hand every answer over: the stored bytes, never others. */
    for (size_t i = 0; i < n; i++)
        if (!answer_from_rt1(&b, items, i))
            answer(&b, &items[i], i);
    return batch_end(&b, items, n, DD_OK);
}

int dd_dispatch_batch_dry_run(dd_store_t *st, dd_dispatch_item_t *items,
                              size_t n, int64_t now_wall_ms, char *errstr,
                              size_t errstr_size) {
    batch_t b;

    memset(&b, 0, sizeof(b));
    if (n == 0)
        return DD_OK;
    /* RT1 and RT2 as in a real run; the planned ETA puts are not sent. */
    if (read_phase(st, &b, items, n, now_wall_ms, errstr, errstr_size) != DD_OK)
        return batch_end(&b, items, n, DD_ERR);

    /* No RT3 nor RT4: what would be picked if no reservation were held. */
    for (size_t i = 0; i < n; i++) {
        dd_dispatch_item_t *it = &items[i];
        const work_t *w = &b.w[i];
        int chosen = w->ncands > 0 ? 0 : DD_STORE_RESERVE_NONE;

        if (answer_from_rt1(&b, items, i))
            continue;
        it->result = build(it, w, &b.loads[i], chosen, now_wall_ms);
        it->result_len = strlen(it->result);
        it->status = chosen >= 0 ? DD_STATUS_ASSIGNED : w->fb_status;
        it->reason = chosen >= 0 ? NULL : w->fb_reason;
    }
    return batch_end(&b, items, n, DD_OK);
}
