/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the Redis Cluster parsers of src/redis_cluster.c:
 * feeds the input as RESP bytes to hiredis's reply reader (the one the
 * store's connections use) and hands every reply to the CLUSTER SLOTS
 * parser, and the text of every error reply to the MOVED/ASK parser; the
 * raw input, cut at its first NUL, goes to the redirection parser and the
 * hash slot function too. It checks what they promise: an accepted slot map
 * names 1..DD_REDIS_CLUSTER_MAX_NODES masters with NUL-terminated hosts and
 * ports in 1..65535, gives every slot a master index in range or none, and
 * serves at least one slot; a refused one holds nothing and says why; a
 * parsed redirection has a slot below 16384, a port in range and a
 * NUL-terminated host. A broken promise aborts, which libFuzzer reports as
 * a crash. Run by `make fuzz`.
 */
#include <stdint.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "redis_cluster.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond))                                                           \
            dd_panic("fuzz_cluster_slots: check failed: %s", #cond);           \
    } while (0)

static void check_redirect(const char *text) {
    dd_redis_cluster_redirect_t rd;

    if (dd_redis_cluster_parse_redirect(text, &rd) != DD_OK)
        return;
    CHECK(rd.kind == DD_REDIS_CLUSTER_MOVED || rd.kind == DD_REDIS_CLUSTER_ASK);
    CHECK(rd.slot < DD_REDIS_CLUSTER_SLOTS);
    CHECK(rd.port >= 1 && rd.port <= 65535);
    CHECK(memchr(rd.host, '\0', sizeof(rd.host)) != NULL);
}

static void check_map(const redisReply *r) {
    dd_redis_cluster_map_t m;
    char err[256] = "";
    size_t served = 0;

    if (dd_redis_cluster_map_parse(r, &m, err, sizeof(err)) != DD_OK) {
        CHECK(m.nodes == NULL && m.nnodes == 0);
        CHECK(err[0] != '\0');
        return;
    }
    CHECK(m.nnodes >= 1 && m.nnodes <= DD_REDIS_CLUSTER_MAX_NODES);
    for (size_t i = 0; i < m.nnodes; i++) {
        CHECK(memchr(m.nodes[i].host, '\0', sizeof(m.nodes[i].host)) != NULL);
        CHECK(m.nodes[i].port >= 1 && m.nodes[i].port <= 65535);
        CHECK(dd_redis_cluster_map_find(&m, m.nodes[i].host, m.nodes[i].port) ==
              (int)i);
    }
    for (size_t s = 0; s < DD_REDIS_CLUSTER_SLOTS; s++) {
        CHECK(m.slot_node[s] == DD_REDIS_CLUSTER_NO_NODE ||
              m.slot_node[s] < m.nnodes);
        served += m.slot_node[s] != DD_REDIS_CLUSTER_NO_NODE;
    }
    CHECK(served > 0);
    CHECK(dd_redis_cluster_map_equal(&m, &m));
    dd_redis_cluster_map_close(&m);
}

/* hiredis allocates an array's element pointers before they arrive: a
 * "*<huge>" header is an out-of-memory, not a finding. */
static int claims_too_many(const uint8_t *data, size_t size) {
    for (size_t i = 0; i < size; i++) {
        size_t n = 0, j = i + 1;
        if (data[i] != '*')
            continue;
        for (; j < size && data[j] >= '0' && data[j] <= '9' && n <= size; j++)
            n = n * 10 + (size_t)(data[j] - '0');
        if (n > size)
            return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    redisReader *rd;
    void *reply = NULL;
    char text[512];
    size_t n = size < sizeof(text) - 1 ? size : sizeof(text) - 1;

    memcpy(text, data, n);
    text[n] = '\0';
    check_redirect(text);
    CHECK(dd_redis_cluster_key_slot((const char *)data, size) <
          DD_REDIS_CLUSTER_SLOTS);
    if (claims_too_many(data, size))
        return 0;
    rd = redisReaderCreate();
    CHECK(rd != NULL);
    if (redisReaderFeed(rd, (const char *)data, size) == REDIS_OK) {
        while (redisReaderGetReply(rd, &reply) == REDIS_OK && reply != NULL) {
            const redisReply *r = reply;

            check_map(r);
            if (r->type == REDIS_REPLY_ERROR)
                check_redirect(r->str);
            freeReplyObject(reply);
            reply = NULL;
        }
    }
    redisReaderFree(rd);
    return 0;
}
