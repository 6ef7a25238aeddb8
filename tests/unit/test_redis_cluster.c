/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for redis_cluster: CRC16 and hash slots with the vectors of
 * the Redis Cluster specification, slot maps built from CLUSTER SLOTS
 * replies (given as RESP bytes to hiredis's reader, as the connection reads
 * them), malformed replies refused, and MOVED/ASK redirections parsed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "redis_cluster.h"
#include "util.h"

static unsigned slot_of(const char *key) {
    return dd_redis_cluster_key_slot(key, strlen(key));
}

static void test_crc16(void **state) {
    (void)state;
    assert_int_equal(dd_redis_cluster_crc16("123456789", 9), 0x31C3);
    assert_int_equal(dd_redis_cluster_crc16("", 0), 0);
}

static void test_key_slot(void **state) {
    (void)state;
    assert_int_equal(slot_of("foo"), 12182);
    assert_int_equal(slot_of("bar"), 5061);
    assert_int_equal(slot_of("123456789"), 0x31C3);
    assert_int_equal(slot_of("{user1000}.following"),
                     slot_of("{user1000}.followers"));
    assert_int_equal(slot_of("{user1000}.following"), slot_of("user1000"));
    /* An empty tag: the whole key. */
    assert_int_equal(slot_of("foo{}{bar}"),
                     dd_redis_cluster_crc16("foo{}{bar}", 10) & 16383);
    assert_int_not_equal(slot_of("foo{}{bar}"), slot_of("bar"));
    /* First '{', next '}': the tag is "{bar". */
    assert_int_equal(slot_of("foo{{bar}}zap"), slot_of("{bar"));
    assert_int_equal(slot_of("foo{bar}{zap}"), slot_of("bar"));
    /* No closing brace: the whole key. */
    assert_int_equal(slot_of("foo{bar"),
                     dd_redis_cluster_crc16("foo{bar", 7) & 16383);
    /* Binary-safe: a NUL inside the tag counts. */
    assert_int_equal(dd_redis_cluster_key_slot("{a\0b}", 5),
                     dd_redis_cluster_crc16("a\0b", 3) & 16383);
}

/* The one reply of RESP bytes s, or NULL when they do not make one. */
static redisReply *resp(const char *s) {
    redisReader *rd = redisReaderCreate();
    void *r = NULL;

    assert_non_null(rd);
    assert_int_equal(redisReaderFeed(rd, s, strlen(s)), REDIS_OK);
    if (redisReaderGetReply(rd, &r) != REDIS_OK)
        r = NULL;
    redisReaderFree(rd);
    assert_non_null(r);
    return r;
}

/* A node entry as Redis 7 writes it: host, port, id, {hostname...}. */
#define NODE(port)                                                             \
    "*4\r\n$9\r\n127.0.0.1\r\n:" #port "\r\n$40\r\n"                           \
    "0123456789012345678901234567890123456789\r\n*0\r\n"

static void test_map_parse(void **state) {
    /* Three masters, the second with a replica, slots in four ranges. */
    redisReply *r =
        resp("*4\r\n"
             "*3\r\n:0\r\n:5460\r\n" NODE(
                 17101) "*4\r\n:5461\r\n:10922\r\n" NODE(17102)
                 NODE(17105) "*3\r\n:10923\r\n:16000\r\n" NODE(
                     17103) "*3\r\n:16001\r\n:16383\r\n" NODE(17101));
    dd_redis_cluster_map_t m, m2;
    char err[256] = "";

    (void)state;
    assert_int_equal(dd_redis_cluster_map_parse(r, &m, err, sizeof(err)),
                     DD_OK);
    assert_int_equal(m.nnodes, 3);
    assert_string_equal(m.nodes[0].host, "127.0.0.1");
    assert_int_equal(m.nodes[0].port, 17101);
    assert_int_equal(m.nodes[2].port, 17103);
    assert_int_equal(m.slot_node[0], 0);
    assert_int_equal(m.slot_node[5460], 0);
    assert_int_equal(m.slot_node[5461], 1);
    assert_int_equal(m.slot_node[12182], 2);
    assert_int_equal(m.slot_node[16383], 0);
    assert_int_equal(dd_redis_cluster_map_find(&m, "127.0.0.1", 17102), 1);
    assert_int_equal(dd_redis_cluster_map_find(&m, "127.0.0.1", 17105), -1);
    assert_int_equal(dd_redis_cluster_map_parse(r, &m2, err, sizeof(err)),
                     DD_OK);
    assert_true(dd_redis_cluster_map_equal(&m, &m2));
    m2.slot_node[7] = 2;
    assert_false(dd_redis_cluster_map_equal(&m, &m2));
    dd_redis_cluster_map_close(&m);
    dd_redis_cluster_map_close(&m2);
    dd_redis_cluster_map_close(&m2); /* twice is fine */
    freeReplyObject(r);

    /* A gap is allowed (not every slot served); "?" is the asked node. */
    r = resp("*1\r\n*3\r\n:100\r\n:200\r\n*2\r\n$1\r\n?\r\n:7000\r\n");
    assert_int_equal(dd_redis_cluster_map_parse(r, &m, err, sizeof(err)),
                     DD_OK);
    assert_int_equal(m.nnodes, 1);
    assert_string_equal(m.nodes[0].host, "");
    assert_int_equal(m.slot_node[99], DD_REDIS_CLUSTER_NO_NODE);
    assert_int_equal(m.slot_node[150], 0);
    dd_redis_cluster_map_close(&m);
    freeReplyObject(r);
}

static void test_map_malformed(void **state) {
#define CASE(s)                                                                \
    { s, sizeof(s) - 1 }
    static const struct {
        const char *s;
        size_t len;
    } bad[] = {
        CASE("-ERR This instance has cluster support disabled\r\n"),
        CASE("+OK\r\n"),
        CASE(":1\r\n"),
        /* no slot; an entry that is no array; an entry without master */
        CASE("*0\r\n"),
        CASE("*1\r\n:1\r\n"),
        CASE("*1\r\n*2\r\n:0\r\n:10\r\n"),
        /* end < start, end past 16383, start < 0, start a string */
        CASE("*1\r\n*3\r\n:10\r\n:0\r\n*2\r\n$1\r\nh\r\n:1\r\n"),
        CASE("*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n$1\r\nh\r\n:1\r\n"),
        CASE("*1\r\n*3\r\n:-1\r\n:3\r\n*2\r\n$1\r\nh\r\n:1\r\n"),
        CASE("*1\r\n*3\r\n$1\r\n0\r\n:3\r\n*2\r\n$1\r\nh\r\n:1\r\n"),
        /* master: no port, port 0, port 65536, host an integer, a NUL in
         * the host, not an array */
        CASE("*1\r\n*3\r\n:0\r\n:3\r\n*1\r\n$1\r\nh\r\n"),
        CASE("*1\r\n*3\r\n:0\r\n:3\r\n*2\r\n$1\r\nh\r\n:0\r\n"),
        CASE("*1\r\n*3\r\n:0\r\n:3\r\n*2\r\n$1\r\nh\r\n:65536\r\n"),
        CASE("*1\r\n*3\r\n:0\r\n:3\r\n*2\r\n:1\r\n:1\r\n"),
        CASE("*1\r\n*3\r\n:0\r\n:3\r\n*2\r\n$3\r\nh\0h\r\n:1\r\n"),
        CASE("*1\r\n*3\r\n:0\r\n:3\r\n$1\r\nh\r\n"),
        /* a replica that is no node entry */
        CASE("*1\r\n*4\r\n:0\r\n:3\r\n*2\r\n$1\r\nh\r\n:1\r\n:5\r\n"),
        /* slot 3 served twice */
        CASE("*2\r\n*3\r\n:0\r\n:3\r\n*2\r\n$1\r\nh\r\n:1\r\n"
             "*3\r\n:3\r\n:4\r\n*2\r\n$1\r\ni\r\n:1\r\n"),
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        redisReader *rd = redisReaderCreate();
        dd_redis_cluster_map_t m;
        char err[256] = "";
        void *r = NULL;

        assert_int_equal(redisReaderFeed(rd, bad[i].s, bad[i].len), REDIS_OK);
        assert_int_equal(redisReaderGetReply(rd, &r), REDIS_OK);
        assert_non_null(r);
        redisReaderFree(rd);
        if (dd_redis_cluster_map_parse(r, &m, err, sizeof(err)) != DD_ERR)
            fail_msg("case %zu accepted", i);
        assert_null(m.nodes);
        assert_true(strncmp(err, "CLUSTER SLOTS: ", 15) == 0);
        freeReplyObject(r);
    }
}

static void test_redirect(void **state) {
    dd_redis_cluster_redirect_t rd;

    (void)state;
    assert_int_equal(
        dd_redis_cluster_parse_redirect("MOVED 3999 127.0.0.1:6381", &rd),
        DD_OK);
    assert_int_equal(rd.kind, DD_REDIS_CLUSTER_MOVED);
    assert_int_equal(rd.slot, 3999);
    assert_string_equal(rd.host, "127.0.0.1");
    assert_int_equal(rd.port, 6381);
    assert_int_equal(dd_redis_cluster_parse_redirect("ASK 16383 ::1:7000", &rd),
                     DD_OK);
    assert_int_equal(rd.kind, DD_REDIS_CLUSTER_ASK);
    assert_int_equal(rd.slot, 16383);
    assert_string_equal(rd.host, "::1");
    assert_int_equal(rd.port, 7000);
    assert_int_equal(dd_redis_cluster_parse_redirect("MOVED 0 :7001", &rd),
                     DD_OK);
    assert_string_equal(rd.host, "");
    assert_int_equal(rd.port, 7001);

    assert_int_equal(dd_redis_cluster_parse_redirect("MOVED", &rd), DD_ERR);
    assert_int_equal(dd_redis_cluster_parse_redirect("MOVED 1", &rd), DD_ERR);
    assert_int_equal(dd_redis_cluster_parse_redirect("MOVED 16384 h:1", &rd),
                     DD_ERR);
    assert_int_equal(
        dd_redis_cluster_parse_redirect("MOVED 99999999999999999999 h:1", &rd),
        DD_ERR);
    assert_int_equal(dd_redis_cluster_parse_redirect("MOVED x h:1", &rd),
                     DD_ERR);
    assert_int_equal(dd_redis_cluster_parse_redirect("MOVED 1 h", &rd), DD_ERR);
    assert_int_equal(dd_redis_cluster_parse_redirect("MOVED 1 h:", &rd),
                     DD_ERR);
    assert_int_equal(dd_redis_cluster_parse_redirect("MOVED 1 h:0", &rd),
                     DD_ERR);
    assert_int_equal(dd_redis_cluster_parse_redirect("MOVED 1 h:65536", &rd),
                     DD_ERR);
    assert_int_equal(dd_redis_cluster_parse_redirect("MOVED 1 h:1x", &rd),
                     DD_ERR);
    assert_int_equal(dd_redis_cluster_parse_redirect("MOVED 1 h:1 z", &rd),
                     DD_ERR);
    assert_int_equal(dd_redis_cluster_parse_redirect("ASKING", &rd), DD_ERR);
    assert_int_equal(
        dd_redis_cluster_parse_redirect("CLUSTERDOWN The cluster is down", &rd),
        DD_ERR);
    assert_int_equal(dd_redis_cluster_parse_redirect("", &rd), DD_ERR);
}

/* Every slot of a few ranges gets a tag that hashes into it, the
 * shortest one, and ranges give a tag inside them. */
static void test_tag_key(void **state) {
    static const unsigned ranges[][2] = {
        {0, 99}, {5461, 5560}, {10923, 11000}, {16300, 16383}};
    char key[128];
    (void)state;

    for (size_t k = 0; k < sizeof(ranges) / sizeof(ranges[0]); k++) {
        for (unsigned s = ranges[k][0]; s <= ranges[k][1]; s++) {
            assert_int_equal(dd_redis_cluster_tag_key("p:dispatchd:store_id", s,
                                                      s, key, sizeof(key)),
                             DD_OK);
            assert_int_equal(dd_redis_cluster_key_slot(key, strlen(key)), s);
            assert_non_null(strstr(key, "p:dispatchd:store_id:{"));
        }
        assert_int_equal(dd_redis_cluster_tag_key(
                             "x", ranges[k][0], ranges[k][1], key, sizeof(key)),
                         DD_OK);
        assert_in_range(dd_redis_cluster_key_slot(key, strlen(key)),
                        ranges[k][0], ranges[k][1]);
    }
    /* The whole range: tag 0, the shortest. */
    assert_int_equal(dd_redis_cluster_tag_key("b", 0, 16383, key, sizeof(key)),
                     DD_OK);
    assert_string_equal(key, "b:{0}");
    /* A hash tag in the base pins the slot: only its own range works. */
    assert_int_equal(
        dd_redis_cluster_tag_key("{x}b", 0, 16383, key, sizeof(key)), DD_OK);
    {
        unsigned s = dd_redis_cluster_key_slot("x", 1);
        assert_int_equal(dd_redis_cluster_tag_key("{x}b", (s + 1) % 16384,
                                                  (s + 1) % 16384, key,
                                                  sizeof(key)),
                         DD_ERR);
    }
    /* Too small a buffer. */
    assert_int_equal(dd_redis_cluster_tag_key("b", 0, 16383, key, 4), DD_ERR);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc16),     cmocka_unit_test(test_key_slot),
        cmocka_unit_test(test_map_parse), cmocka_unit_test(test_map_malformed),
        cmocka_unit_test(test_redirect),  cmocka_unit_test(test_tag_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
