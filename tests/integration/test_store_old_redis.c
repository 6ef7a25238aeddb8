/* SPDX-License-Identifier: MIT */
/*
 * Integration tests of the store's reservations against servers that do
 * not take SET ... NX GET: a scripted server (one thread, one client at a
 * time, a few keys in memory) that says Redis 6.2 in INFO server, or says
 * 7.0 and still answers "ERR syntax error" to SET NX GET, as a server
 * older than 7.0.0 does. The store must use SET NX EX and GET there; in
 * the second case the refused form fails one batch as transient and is
 * not tried again. Needs no services: the server runs in the test.
 *
 * DESIGN: the server thread owns the socket and the keys; the counters it
 * keeps are read by the test under the server's mutex, after the store
 * call that made them returned.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "store.h"
#include "util.h"

#define MAX_KEYS 64
#define MAX_ARGS 16

typedef struct fake {
    int lfd;             /* listening socket */
    int port;            /* its port */
    const char *version; /* redis_version in INFO server */
    int refuse_nx_get;   /* 1: SET ... NX GET is a syntax error */
    pthread_t thread;
    pthread_mutex_t mu;
    /* Under mu: */
    char *keys[MAX_KEYS], *vals[MAX_KEYS];
    int nkeys;
    int set_nx_get; /* SET with NX and GET received */
    int set;        /* every SET */
    int get;        /* every GET */
    int conns;      /* connections accepted */
} fake_t;

static char *find(fake_t *fk, const char *k) {
    for (int i = 0; i < fk->nkeys; i++)
        if (strcmp(fk->keys[i], k) == 0)
            return fk->vals[i];
    return NULL;
}

static void put(fake_t *fk, const char *k, const char *v) {
    for (int i = 0; i < fk->nkeys; i++)
        if (strcmp(fk->keys[i], k) == 0) {
            dd_free(fk->vals[i]);
            fk->vals[i] = dd_xstrdup(v);
            return;
        }
    assert_true(fk->nkeys < MAX_KEYS);
    fk->keys[fk->nkeys] = dd_xstrdup(k);
    fk->vals[fk->nkeys++] = dd_xstrdup(v);
}

static void send_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w <= 0)
            return;
        buf += w;
        len -= (size_t)w;
    }
}

static void send_bulk(int fd, const char *v) {
    char head[32];

    if (v == NULL) {
        send_all(fd, "$-1\r\n", 5);
        return;
    }
    snprintf(head, sizeof(head), "$%zu\r\n", strlen(v));
    send_all(fd, head, strlen(head));
    send_all(fd, v, strlen(v));
    send_all(fd, "\r\n", 2);
}

/* Answers one command of argc arguments (NUL-terminated). */
static void answer(fake_t *fk, int fd, int argc, char **argv) {
    const char *cmd = argv[0];

    pthread_mutex_lock(&fk->mu);
    if (strcasecmp(cmd, "INFO") == 0) {
        char info[128];
        snprintf(info, sizeof(info), "# Server\r\nredis_version:%s\r\n",
                 fk->version);
        send_bulk(fd, info);
    } else if (strcasecmp(cmd, "PING") == 0) {
        send_all(fd, "+PONG\r\n", 7);
    } else if (strcasecmp(cmd, "GET") == 0 && argc == 2) {
        fk->get++;
        send_bulk(fd, find(fk, argv[1]));
    } else if (strcasecmp(cmd, "SET") == 0 && argc >= 3) {
        int nx = 0, get = 0;
        char *old = find(fk, argv[1]);

        fk->set++;
        for (int i = 3; i < argc; i++) {
            nx |= strcasecmp(argv[i], "NX") == 0;
            get |= strcasecmp(argv[i], "GET") == 0;
        }
        fk->set_nx_get += nx && get;
        if (nx && get && fk->refuse_nx_get)
            send_all(fd, "-ERR syntax error\r\n", 19);
        else if (nx && old != NULL)
            send_bulk(fd, get ? old : NULL);
        else {
            put(fk, argv[1], argv[2]);
            if (get)
                send_bulk(fd, NULL);
            else
                send_all(fd, "+OK\r\n", 5);
        }
    } else if (strcasecmp(cmd, "MGET") == 0) {
        char head[32];
        snprintf(head, sizeof(head), "*%d\r\n", argc - 1);
        send_all(fd, head, strlen(head));
        for (int i = 1; i < argc; i++)
            send_bulk(fd, find(fk, argv[i]));
    } else if (strcasecmp(cmd, "AUTH") == 0 || strcasecmp(cmd, "SELECT") == 0 ||
               strcasecmp(cmd, "CLIENT") == 0) {
        send_all(fd, "+OK\r\n", 5);
    } else {
        send_all(fd, "-ERR unknown command\r\n", 22);
    }
    pthread_mutex_unlock(&fk->mu);
}

/* Parses the complete commands at the head of buf[0..*len) and answers
 * them; keeps an incomplete one. */
static void serve_buffer(fake_t *fk, int fd, char *buf, size_t *len) {
    for (;;) {
        char *p = buf, *end = buf + *len, *argv[MAX_ARGS];
        int argc;

        if (p >= end || *p != '*' || memchr(p, '\n', (size_t)(end - p)) == NULL)
            return;
        argc = atoi(p + 1);
        assert_true(argc > 0 && argc <= MAX_ARGS);
        p = (char *)memchr(p, '\n', (size_t)(end - p)) + 1;
        for (int i = 0; i < argc; i++) {
            char *nl;
            long l;

            if (p >= end || (nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
                return;
            l = atol(p + 1);
            p = nl + 1;
            if (end - p < l + 2)
                return;
            argv[i] = p;
            p += l;
            *p = '\0'; /* the CR */
            p += 2;
        }
        answer(fk, fd, argc, argv);
        *len = (size_t)(end - p);
        memmove(buf, p, *len);
    }
}

static void *serve(void *arg) {
    fake_t *fk = arg;
    static char buf[1 << 16];

    for (;;) {
        int fd = accept(fk->lfd, NULL, NULL);
        size_t len = 0;

        if (fd < 0)
            return NULL; /* shut down */
        pthread_mutex_lock(&fk->mu);
        fk->conns++;
        pthread_mutex_unlock(&fk->mu);
        for (;;) {
            ssize_t r = read(fd, buf + len, sizeof(buf) - len);
            if (r <= 0)
                break;
            len += (size_t)r;
            serve_buffer(fk, fd, buf, &len);
        }
        close(fd);
    }
}

static void fake_start(fake_t *fk, const char *version, int refuse_nx_get) {
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);

    memset(fk, 0, sizeof(*fk));
    fk->version = version;
    fk->refuse_nx_get = refuse_nx_get;
    pthread_mutex_init(&fk->mu, NULL);
    fk->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fk->lfd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fk->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fk->lfd, 8), 0);
    assert_int_equal(getsockname(fk->lfd, (struct sockaddr *)&sa, &sl), 0);
    fk->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&fk->thread, NULL, serve, fk), 0);
}

/* Stops the server; the store using it must be destroyed first (the
 * server serves one connection at a time, until its client closes it). */
static void fake_stop(fake_t *fk) {
    shutdown(fk->lfd, SHUT_RDWR);
    pthread_join(fk->thread, NULL);
    close(fk->lfd);
    for (int i = 0; i < fk->nkeys; i++) {
        dd_free(fk->keys[i]);
        dd_free(fk->vals[i]);
    }
    pthread_mutex_destroy(&fk->mu);
}

static dd_store_t *fake_store(const fake_t *fk) {
    dd_store_conf_t conf;
    char errstr[256];
    dd_store_t *st;

    memset(&conf, 0, sizeof(conf));
    conf.host = "127.0.0.1";
    conf.port = fk->port;
    conf.timeout_ms = 5000;
    conf.prefix = "dd_old:";
    conf.eta_ttl_s = 60;
    conf.reservation_ttl_s = 30;
    conf.idempotency_ttl_s = 3600;
    st = dd_store_new(&conf, errstr, sizeof(errstr));
    if (st == NULL)
        fail_msg("dd_store_new: %s", errstr);
    return st;
}

static int reserve(dd_store_t *st, const char *rid, const char *cid,
                   int *chosen, char *errstr, size_t errstr_size) {
    const char *ids[1] = {cid};
    dd_store_reserve_t rv;
    int rc;

    memset(&rv, 0, sizeof(rv));
    rv.request_id = rid;
    rv.candidate_ids = ids;
    rv.ncandidates = 1;
    rc = dd_store_reserve(st, &rv, 1, errstr, errstr_size);
    assert_int_equal(rv.data_error, 0);
    *chosen = rv.chosen;
    return rc;
}

/* On a fake server saying version (refusing SET NX GET when refuse): r-1
 * reserves c-1, then r-2 finds it held by r-1 and a redelivery of r-1
 * finds it its own. Returns the commands the last two reservations took;
 * the fake is stopped, its counters left in fk. */
static uint64_t commands_of_two_reservations(fake_t *fk, const char *version,
                                             int refuse) {
    dd_store_t *st;
    dd_store_stats_t before, after;
    char errstr[256];
    int chosen;

    dd_store_state_reset();
    fake_start(fk, version, refuse);
    st = fake_store(fk);
    if (reserve(st, "r-1", "c-1", &chosen, errstr, sizeof(errstr)) != DD_OK)
        fail_msg("reserve: %s", errstr);
    assert_int_equal(chosen, 0); /* the first write also sets the marker */
    dd_store_get_stats(st, &before);
    if (reserve(st, "r-2", "c-1", &chosen, errstr, sizeof(errstr)) != DD_OK)
        fail_msg("reserve: %s", errstr);
    assert_int_equal(chosen, DD_STORE_RESERVE_NONE); /* held by r-1 */
    if (reserve(st, "r-1", "c-1", &chosen, errstr, sizeof(errstr)) != DD_OK)
        fail_msg("reserve: %s", errstr);
    assert_int_equal(chosen, 0); /* r-1's own */
    dd_store_get_stats(st, &after);
    dd_store_destroy(st);
    fake_stop(fk);
    return after.commands - before.commands;
}

/* A server that says 6.2: SET NX EX and GET, never SET NX GET. */
static void test_store_reserves_with_two_commands_before_redis_7(void **st_) {
    fake_t fk;

    (void)st_;
    /* Each: the marker's GET, SET NX EX, GET. */
    assert_int_equal(commands_of_two_reservations(&fk, "6.2.14", 1), 6);
    assert_int_equal(fk.set_nx_get, 0);
    assert_int_equal(fk.conns, 1);
}

/* A server that says 7.0 but refuses SET NX GET as a syntax error: that
 * batch fails as transient, the store stops using the form, and the retry
 * reserves with two commands. */
static void test_store_syntax_error_turns_set_nx_get_off(void **st_) {
    fake_t fk;
    dd_store_t *st;
    dd_store_stats_t before, after;
    char errstr[256] = "";
    int chosen, set_nx_get;

    (void)st_;
    dd_store_state_reset();
    fake_start(&fk, "7.0.0", 1);
    st = fake_store(&fk);
    assert_int_equal(reserve(st, "r-1", "c-1", &chosen, errstr, sizeof(errstr)),
                     DD_ERR);
    print_message("refused: %s\n", errstr);
    assert_non_null(strstr(errstr, "syntax error"));
    assert_non_null(strstr(errstr, "reservation:c-1"));
    assert_int_equal(chosen, DD_STORE_RESERVE_NONE);
    assert_int_equal(dd_store_backoff_ms(st), 0); /* one quick retry */
    if (reserve(st, "r-1", "c-1", &chosen, errstr, sizeof(errstr)) != DD_OK)
        fail_msg("retry: %s", errstr);
    assert_int_equal(chosen, 0);
    dd_store_get_stats(st, &before);
    if (reserve(st, "r-2", "c-1", &chosen, errstr, sizeof(errstr)) != DD_OK)
        fail_msg("reserve: %s", errstr);
    assert_int_equal(chosen, DD_STORE_RESERVE_NONE);
    dd_store_get_stats(st, &after);
    assert_int_equal(after.commands - before.commands, 3);
    assert_int_equal(after.reply_errors, before.reply_errors);
    dd_store_destroy(st);
    fake_stop(&fk);
    pthread_mutex_lock(&fk.mu);
    set_nx_get = fk.set_nx_get;
    pthread_mutex_unlock(&fk.mu);
    assert_int_equal(set_nx_get, 1); /* tried once, never again */
    assert_int_equal(fk.conns, 2);   /* the failed batch dropped the first */
}

/* The same server, when it takes SET NX GET: one command per candidate. */
static void test_store_reserves_with_one_command_on_redis_7(void **st_) {
    fake_t fk;

    (void)st_;
    /* Each: the marker's GET and one SET NX GET. */
    assert_int_equal(commands_of_two_reservations(&fk, "7.2.4", 0), 4);
    assert_int_equal(fk.set_nx_get, 3);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_reserves_with_two_commands_before_redis_7),
        cmocka_unit_test(test_store_syntax_error_turns_set_nx_get_off),
        cmocka_unit_test(test_store_reserves_with_one_command_on_redis_7),
    };
    return cmocka_run_group_tests_name("store_old_redis", tests, NULL, NULL);
}
