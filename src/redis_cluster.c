/* SPDX-License-Identifier: MIT */
/*
 * redis_cluster: the pure parts of Redis Cluster routing (see
 * include/redis_cluster.h): CRC16 and hash slots as the Redis Cluster
 * specification defines them, the slot map of a CLUSTER SLOTS reply, and
 * the MOVED/ASK redirections. It does no I/O and keeps no state; every
 * reply is checked for shape before use, since it comes from the network.
 */
#include "redis_cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

uint16_t dd_redis_cluster_crc16(const char *buf, size_t len) {
    uint16_t crc = 0;

    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)((uint16_t)(unsigned char)buf[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021)
                                 : (uint16_t)(crc << 1);
    }
    return crc;
}

unsigned dd_redis_cluster_key_slot(const char *key, size_t len) {
    const char *open = memchr(key, '{', len);

    if (open != NULL) {
        size_t from = (size_t)(open - key) + 1;
        const char *close = memchr(key + from, '}', len - from);

        /* Only a non-empty tag counts: "foo{}{bar}" hashes the whole key. */
        if (close != NULL && close > key + from)
            return dd_redis_cluster_crc16(key + from,
                                          (size_t)(close - (key + from))) &
                   (DD_REDIS_CLUSTER_SLOTS - 1);
    }
    return dd_redis_cluster_crc16(key, len) & (DD_REDIS_CLUSTER_SLOTS - 1);
}

int dd_redis_cluster_tag_key(const char *base, unsigned lo, unsigned hi,
                             char *out, size_t size) {
    for (unsigned long t = 0; t < DD_REDIS_CLUSTER_TAG_TRIES; t++) {
        int n = snprintf(out, size, "%s:{%lu}", base, t);
        unsigned slot;

        if (n < 0 || (size_t)n >= size)
            return DD_ERR;
        slot = dd_redis_cluster_key_slot(out, (size_t)n);
        if (slot >= lo && slot <= hi)
            return DD_OK;
    }
    return DD_ERR;
}

/*----- Slot map -----*/

void dd_redis_cluster_map_close(dd_redis_cluster_map_t *m) {
    dd_free(m->nodes);
    m->nodes = NULL;
    m->nnodes = 0;
}

int dd_redis_cluster_map_find(const dd_redis_cluster_map_t *m, const char *host,
                              int port) {
    for (size_t i = 0; i < m->nnodes; i++)
        if (m->nodes[i].port == port && strcmp(m->nodes[i].host, host) == 0)
            return (int)i;
    return -1;
}

int dd_redis_cluster_map_equal(const dd_redis_cluster_map_t *a,
                               const dd_redis_cluster_map_t *b) {
    if (a->nnodes != b->nnodes)
        return 0;
    for (size_t i = 0; i < a->nnodes; i++)
        if (a->nodes[i].port != b->nodes[i].port ||
            strcmp(a->nodes[i].host, b->nodes[i].host) != 0)
            return 0;
    return memcmp(a->slot_node, b->slot_node, sizeof(a->slot_node)) == 0;
}

/* An integer element in lo..hi. */
static int int_in(const redisReply *r, long long lo, long long hi,
                  long long *out) {
    if (r->type != REDIS_REPLY_INTEGER || r->integer < lo || r->integer > hi)
        return DD_ERR;
    *out = r->integer;
    return DD_OK;
}

/* A node entry: [host, port, id?, ...]. "?" (Redis 7's unknown endpoint)
 * reads as "": the node that answered. */
static int node_parse(const redisReply *r, dd_redis_cluster_node_t *n) {
    long long port;

    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
        r->element[0]->type != REDIS_REPLY_STRING ||
        r->element[0]->len >= DD_REDIS_CLUSTER_HOST_MAX ||
        memchr(r->element[0]->str, '\0', r->element[0]->len) != NULL ||
        int_in(r->element[1], 1, 65535, &port) != DD_OK)
        return DD_ERR;
    if (r->element[0]->len == 1 && r->element[0]->str[0] == '?')
        n->host[0] = '\0';
    else
        memcpy(n->host, r->element[0]->str, r->element[0]->len + 1);
    n->port = (int)port;
    return DD_OK;
}

#define FAIL(...)                                                              \
    do {                                                                       \
        dd_set_error(errstr, errstr_size, __VA_ARGS__);                        \
        goto err;                                                              \
    } while (0)

int dd_redis_cluster_map_parse(const redisReply *r, dd_redis_cluster_map_t *m,
                               char *errstr, size_t errstr_size) {
    size_t cap = 0, served = 0;

    memset(m, 0, sizeof(*m));
    memset(m->slot_node, 0xff, sizeof(m->slot_node));
    if (r->type == REDIS_REPLY_ERROR)
        FAIL("CLUSTER SLOTS: %s", r->str);
    if (r->type != REDIS_REPLY_ARRAY)
        FAIL("CLUSTER SLOTS: not an array");
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        long long start, end;
        dd_redis_cluster_node_t n;
        int idx;

        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            int_in(e->element[0], 0, DD_REDIS_CLUSTER_SLOTS - 1, &start) !=
                DD_OK ||
            int_in(e->element[1], start, DD_REDIS_CLUSTER_SLOTS - 1, &end) !=
                DD_OK)
            FAIL("CLUSTER SLOTS: entry %zu: bad slot range", i);
        if (node_parse(e->element[2], &n) != DD_OK)
            FAIL("CLUSTER SLOTS: entry %zu: bad master", i);
        for (size_t j = 3; j < e->elements; j++)
            if (node_parse(e->element[j], &(dd_redis_cluster_node_t){0}) !=
                DD_OK)
                FAIL("CLUSTER SLOTS: entry %zu: bad replica", i);
        idx = dd_redis_cluster_map_find(m, n.host, n.port);
        if (idx < 0) {
            if (m->nnodes == DD_REDIS_CLUSTER_MAX_NODES)
                FAIL("CLUSTER SLOTS: more than %d masters",
                     DD_REDIS_CLUSTER_MAX_NODES);
            if (m->nnodes == cap) {
                cap = cap ? cap * 2 : 4;
                m->nodes = dd_xrealloc(m->nodes, cap * sizeof(*m->nodes));
            }
            m->nodes[m->nnodes] = n;
            idx = (int)m->nnodes++;
        }
        for (long long s = start; s <= end; s++) {
            if (m->slot_node[s] != DD_REDIS_CLUSTER_NO_NODE)
                FAIL("CLUSTER SLOTS: slot %lld served twice", s);
            m->slot_node[s] = (uint16_t)idx;
            served++;
        }
    }
    if (served == 0)
        FAIL("CLUSTER SLOTS: no slot is served");
    return DD_OK;

err:
    dd_redis_cluster_map_close(m);
    return DD_ERR;
}

/*----- Redirections -----*/

int dd_redis_cluster_parse_redirect(const char *err,
                                    dd_redis_cluster_redirect_t *rd) {
    const char *p, *colon, *end;
    unsigned long slot = 0, port = 0;
    size_t hostlen;

    if (strncmp(err, "MOVED ", 6) == 0) {
        rd->kind = DD_REDIS_CLUSTER_MOVED;
        p = err + 6;
    } else if (strncmp(err, "ASK ", 4) == 0) {
        rd->kind = DD_REDIS_CLUSTER_ASK;
        p = err + 4;
    } else {
        return DD_ERR;
    }
    if (*p < '0' || *p > '9')
        return DD_ERR;
    while (*p >= '0' && *p <= '9' && slot < DD_REDIS_CLUSTER_SLOTS)
        slot = slot * 10 + (unsigned long)(*p++ - '0');
    if (slot >= DD_REDIS_CLUSTER_SLOTS || *p++ != ' ')
        return DD_ERR;
    end = p + strcspn(p, " ");
    if (*end != '\0')
        return DD_ERR;
    colon = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == ':')
            colon = q;
    if (colon == NULL || colon + 1 == end)
        return DD_ERR;
    for (const char *q = colon + 1; q < end; q++) {
        if (*q < '0' || *q > '9' || port > 65535)
            return DD_ERR;
        port = port * 10 + (unsigned long)(*q - '0');
    }
    hostlen = (size_t)(colon - p);
    if (port < 1 || port > 65535 || hostlen >= DD_REDIS_CLUSTER_HOST_MAX)
        return DD_ERR;
    memcpy(rd->host, p, hostlen);
    rd->host[hostlen] = '\0';
    rd->slot = (unsigned)slot;
    rd->port = (int)port;
    return DD_OK;
}
