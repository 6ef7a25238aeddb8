/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for Redis URL parsing: feeds the input, as a C string,
 * to dd_redis_url_parse() (the --redis / DISPATCHD_REDIS value) and
 * checks what redis_url.h promises. A parsed URL is either a unix socket
 * (absolute path, port 0) or a TCP host with a port in 1..65535, a
 * database >= 0 and credentials without NUL bytes; written back as a URL
 * (credentials percent-encoded) it parses to the same fields. A failure
 * leaves the struct zeroed with a non-empty error line. The same input goes
 * to dd_redis_url_parse_cluster() (--redis-cluster): well-formed seeds, the
 * first one as host and port, and the printed form parses to the same
 * seeds. A broken promise aborts, which libFuzzer reports as a crash. Run
 * by `make fuzz`.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_url.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond))                                                           \
            dd_panic("fuzz_redis_url: check failed: %s", #cond);               \
    } while (0)

/* A growing string; aborts on overflow of the fixed buffer. */
typedef struct sbuf {
    char *s;
    size_t len, size;
} sbuf_t;

static void put(sbuf_t *b, const char *s, size_t n) {
    CHECK(b->len + n < b->size);
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void puts_str(sbuf_t *b, const char *s) {
    put(b, s, strlen(s));
}

/* Percent-encode everything but unreserved characters. */
static void puts_pct(sbuf_t *b, const char *s) {
    static const char hex[] = "0123456789ABCDEF";

    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
            (c >= '0' && c <= '9') || strchr("-._~", c) != NULL) {
            put(b, (const char *)&c, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            put(b, e, 3);
        }
    }
}

static int str_eq(const char *a, const char *b) {
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

static void check_parsed(const dd_redis_url_t *u) {
    CHECK(u->db >= 0);
    CHECK(u->user == NULL || u->user[0] != '\0');
    CHECK(u->password == NULL || u->password[0] != '\0');
    if (u->unix_path != NULL) {
        CHECK(u->host == NULL && u->port == 0);
        CHECK(u->unix_path[0] == '/' && strlen(u->unix_path) >= 2);
        CHECK(strchr(u->unix_path, '?') == NULL);
    } else {
        CHECK(u->host != NULL && u->host[0] != '\0');
        CHECK(u->port >= 1 && u->port <= 65535);
    }
}

/* Write u back as a URL and parse that: the same fields must come out. */
static void check_round_trip(const dd_redis_url_t *u, size_t in_len) {
    size_t size = 3 * in_len + 128;
    sbuf_t b = {malloc(size), 0, size};
    dd_redis_url_t v;
    char num[32], errstr[256];

    CHECK(b.s != NULL);
    b.s[0] = '\0';
    if (u->unix_path != NULL) {
        puts_str(&b, "unix://");
        puts_str(&b, u->unix_path);
        snprintf(num, sizeof(num), "?db=%d", u->db);
        puts_str(&b, num);
        if (u->user != NULL) {
            puts_str(&b, "&user=");
            puts_pct(&b, u->user);
        }
        if (u->password != NULL) {
            puts_str(&b, "&password=");
            puts_pct(&b, u->password);
        }
    } else {
        puts_str(&b, "redis://");
        if (u->user != NULL || u->password != NULL) {
            if (u->user != NULL)
                puts_pct(&b, u->user);
            puts_str(&b, ":");
            if (u->password != NULL)
                puts_pct(&b, u->password);
            puts_str(&b, "@");
        }
        if (strchr(u->host, ':') != NULL) {
            puts_str(&b, "[");
            puts_str(&b, u->host);
            puts_str(&b, "]");
        } else {
            puts_str(&b, u->host);
        }
        snprintf(num, sizeof(num), ":%d/%d", u->port, u->db);
        puts_str(&b, num);
    }

    if (dd_redis_url_parse(b.s, &v, errstr, sizeof(errstr)) != DD_OK)
        dd_panic("fuzz_redis_url: written back as '%s', it fails: %s", b.s,
                 errstr);
    CHECK(str_eq(v.host, u->host) && v.port == u->port);
    CHECK(str_eq(v.unix_path, u->unix_path) && v.db == u->db);
    CHECK(str_eq(v.user, u->user) && str_eq(v.password, u->password));
    dd_redis_url_close(&v);
    free(b.s);
}

/* The Redis Cluster form (--redis-cluster): the seeds are well-formed, the
 * first is host/port, and printing (password redacted) and parsing again
 * with the real password gives the same seeds. */
static void check_cluster(const char *url) {
    dd_redis_url_t u, v;
    char errstr[256], *printed = NULL;
    size_t plen = 0;
    FILE *fp;

    if (dd_redis_url_parse_cluster(url, &u, errstr, sizeof(errstr)) != DD_OK) {
        CHECK(u.seeds == NULL && u.nseeds == 0 && u.host == NULL &&
              u.user == NULL && u.password == NULL);
        CHECK(errstr[0] != '\0');
        return;
    }
    CHECK(u.unix_path == NULL && u.db == 0);
    if (url[0] == '\0') {
        CHECK(u.nseeds == 0 && u.host == NULL);
        return;
    }
    CHECK(u.nseeds >= 1 && u.nseeds <= DD_REDIS_URL_MAX_SEEDS);
    CHECK(str_eq(u.host, u.seeds[0].host) && u.port == u.seeds[0].port);
    for (size_t i = 0; i < u.nseeds; i++) {
        CHECK(u.seeds[i].host != NULL && u.seeds[i].host[0] != '\0');
        CHECK(u.seeds[i].port >= 1 && u.seeds[i].port <= 65535);
    }
    fp = open_memstream(&printed, &plen);
    CHECK(fp != NULL);
    /* Without the password: printing redacts it as ***. */
    {
        char *pw = u.password;
        u.password = NULL;
        dd_redis_url_print(&u, fp);
        u.password = pw;
    }
    fclose(fp);
    if (dd_redis_url_parse_cluster(printed, &v, errstr, sizeof(errstr)) !=
        DD_OK)
        dd_panic("fuzz_redis_url: cluster URL printed as '%s' fails: %s",
                 printed, errstr);
    CHECK(v.nseeds == u.nseeds && str_eq(v.user, u.user));
    for (size_t i = 0; i < u.nseeds; i++)
        CHECK(str_eq(v.seeds[i].host, u.seeds[i].host) &&
              v.seeds[i].port == u.seeds[i].port);
    dd_redis_url_close(&v);
    dd_redis_url_close(&u);
    free(printed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *url = malloc(size + 1);
    char errstr[256];
    dd_redis_url_t u;

    CHECK(url != NULL);
    if (size > 0)
        memcpy(url, data, size);
    url[size] = '\0';
    memset(errstr, 'x', sizeof(errstr));

    if (dd_redis_url_parse(url, &u, errstr, sizeof(errstr)) == DD_OK) {
        check_parsed(&u);
        check_round_trip(&u, size);
        dd_redis_url_close(&u);
    } else {
        CHECK(u.host == NULL && u.unix_path == NULL && u.user == NULL &&
              u.password == NULL && u.port == 0 && u.db == 0);
        CHECK(memchr(errstr, '\0', sizeof(errstr)) != NULL);
        CHECK(errstr[0] != '\0');
    }
    /* errstr is optional. */
    if (dd_redis_url_parse(url, &u, NULL, 0) == DD_OK)
        dd_redis_url_close(&u);
    check_cluster(url);
    free(url);
    return 0;
}
