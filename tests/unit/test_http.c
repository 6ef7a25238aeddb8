/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for http: a real server on 127.0.0.1, port 0, with fake
 * sources, and real HTTP over sockets: the bodies and codes of every
 * endpoint (200/404/405/500/503, HEAD), the bound port, the dd-http thread
 * name, and the bounds: a slowloris connection, an oversized header and a
 * client over its per-IP limit never stop a concurrent normal request; the
 * idle timeout closes the slow connection. No librdkafka, so it runs under
 * ThreadSanitizer. Waits are for observable conditions with deadlines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define IDLE_TIMEOUT_S 3 /* server idle timeout in these tests */
#define PER_IP_LIMIT   4

/* What the fake sources answer; written by the test, read on dd-http. */
typedef struct fake {
    atomic_int healthy;
    atomic_int not_ready; /* number of reasons to report */
    atomic_int debug_null;
    atomic_int calls;
} fake_t;

typedef struct fixture {
    fake_t fake;
    dd_http_t *h;
    int port;
} fixture_t;

static const char *const fake_reasons[] = {"redis is not answering",
                                           "consumer has not joined \"yet\""};

static int64_t patience_ms(void) {
    const char *m = getenv("DD_TEST_TIMEOUT_MULTIPLIER");
    int64_t mult = m != NULL ? atoll(m) : 1;
    return 10000 * (mult > 0 ? mult : 1);
}

static int fake_health(void *opaque, char *reason, size_t size) {
    fake_t *f = opaque;
    atomic_fetch_add(&f->calls, 1);
    if (atomic_load(&f->healthy))
        return 1;
    snprintf(reason, size, "worker 3 has been in state redis for 61000 ms");
    return 0;
}

static size_t fake_ready(void *opaque, const char **reasons, size_t max) {
    fake_t *f = opaque;
    size_t n = (size_t)atomic_load(&f->not_ready);
    atomic_fetch_add(&f->calls, 1);
    for (size_t i = 0; i < n && i < max; i++)
        reasons[i] = fake_reasons[i];
    return n;
}

static char *fake_debug(void *opaque) {
    fake_t *f = opaque;
    atomic_fetch_add(&f->calls, 1);
    if (atomic_load(&f->debug_null))
        return NULL;
    return dd_xstrdup("{\"workers\":[{\"id\":0,\"state\":\"idle\"}]}");
}

static int setup(void **state) {
    fixture_t *fx = calloc(1, sizeof(*fx));
    dd_http_conf_t conf = {0};
    dd_http_sources_t src = {fake_health, fake_ready, fake_debug, NULL};
    char errstr[256];

    assert_non_null(fx);
    atomic_store(&fx->fake.healthy, 1);
    src.opaque = &fx->fake;
    conf.addr = "127.0.0.1";
    conf.port = 0;
    conf.per_ip = PER_IP_LIMIT;
    conf.timeout_s = IDLE_TIMEOUT_S;
    conf.memory_limit = 16 * 1024;
    dd_metrics_reset();
    fx->h = dd_http_new(&conf, &src, errstr, sizeof(errstr));
    if (fx->h == NULL)
        fail_msg("dd_http_new: %s", errstr);
    fx->port = dd_http_port(fx->h);
    assert_true(fx->port > 0 && fx->port < 65536);
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    fixture_t *fx = *state;
    dd_http_destroy(fx->h);
    free(fx);
    return 0;
}

/*----- A tiny HTTP client -----*/

static int connect_to(int port) {
    struct sockaddr_in sin;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    return fd;
}

/* Send all of buf; returns 0, or -1 when the peer closed (EPIPE, RST). */
static int send_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read until EOF (the server closes: requests say Connection: close) or
 * the deadline; returns the byte count, or -1 on a reset. */
static ssize_t read_all(int fd, char *buf, size_t size, int64_t deadline) {
    size_t len = 0;

    for (;;) {
        struct pollfd pfd = {fd, POLLIN, 0};
        int64_t left = deadline - dd_now_ms();
        ssize_t n;

        assert_true(left > 0);
        if (poll(&pfd, 1, (int)left) <= 0)
            continue;
        n = recv(fd, buf + len, size - 1 - len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return len > 0 ? (ssize_t)len : -1;
        if (n == 0)
            break;
        len += (size_t)n;
        assert_true(len < size - 1);
    }
    buf[len] = '\0';
    return (ssize_t)len;
}

typedef struct resp {
    int status;
    char raw[256 * 1024];
    const char *body;
} resp_t;

/* One request; the response is parsed into r (status 0: no response). */
static void request_raw(int port, const char *req, resp_t *r) {
    int fd = connect_to(port);
    ssize_t n;

    memset(r, 0, sizeof(*r));
    r->body = "";
    if (send_all(fd, req, strlen(req)) != 0) {
        close(fd);
        return;
    }
    n = read_all(fd, r->raw, sizeof(r->raw), dd_now_ms() + patience_ms());
    close(fd);
    if (n <= 0)
        return;
    if (sscanf(r->raw, "HTTP/1.%*d %d", &r->status) != 1)
        r->status = 0;
    r->body = strstr(r->raw, "\r\n\r\n");
    r->body = r->body ? r->body + 4 : "";
}

static void request(int port, const char *method, const char *path, resp_t *r) {
    char req[512];
    snprintf(req, sizeof(req),
             "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
             method, path);
    request_raw(port, req, r);
}

/* The value of a response header (case-sensitive name), or NULL. */
static const char *header(const resp_t *r, const char *name, char *out,
                          size_t size) {
    char key[128];
    const char *p;

    snprintf(key, sizeof(key), "\r\n%s: ", name);
    p = strstr(r->raw, key);
    if (p == NULL || p > r->body)
        return NULL;
    p += strlen(key);
    snprintf(out, size, "%.*s", (int)strcspn(p, "\r\n"), p);
    return out;
}

/*----- Endpoints -----*/

static void test_http_metrics_renders_prometheus_text(void **state) {
    fixture_t *fx = *state;
    resp_t *r = malloc(sizeof(*r));
    char ct[128];

    assert_non_null(r);
    dd_metrics_add(DD_C_REQ_ASSIGNED, 5);
    request(fx->port, "GET", "/metrics", r);
    assert_int_equal(r->status, 200);
    assert_string_equal(header(r, "Content-Type", ct, sizeof(ct)),
                        "text/plain; version=0.0.4; charset=utf-8");
    assert_non_null(strstr(r->body, "# TYPE dispatchd_requests_total counter\n"
                                    "dispatchd_requests_total{outcome="
                                    "\"assigned\"} 5\n"));
    assert_non_null(strstr(r->body, "dispatchd_build_info{version=\""));
    /* Ready (no reasons) at scrape time: the gauge says so. */
    assert_non_null(strstr(r->body, "\ndispatchd_ready 1\n"));
    atomic_store(&fx->fake.not_ready, 1);
    request(fx->port, "GET", "/metrics", r);
    assert_non_null(strstr(r->body, "\ndispatchd_ready 0\n"));
    free(r);
}

static void test_http_healthz_ok_then_503_with_reason(void **state) {
    fixture_t *fx = *state;
    resp_t *r = malloc(sizeof(*r));

    assert_non_null(r);
    request(fx->port, "GET", "/healthz", r);
    assert_int_equal(r->status, 200);
    assert_string_equal(r->body, "ok\n");
    atomic_store(&fx->fake.healthy, 0);
    request(fx->port, "GET", "/healthz", r);
    assert_int_equal(r->status, 503);
    assert_string_equal(
        r->body, "unhealthy: worker 3 has been in state redis for 61000 ms\n");
    free(r);
}

static void test_http_readyz_json_reasons(void **state) {
    fixture_t *fx = *state;
    resp_t *r = malloc(sizeof(*r));
    json_error_t jerr;
    json_t *root, *reasons;
    char ct[128];

    assert_non_null(r);
    request(fx->port, "GET", "/readyz", r);
    assert_int_equal(r->status, 200);
    assert_string_equal(r->body, "{\"ready\":true,\"reasons\":[]}");
    assert_string_equal(header(r, "Content-Type", ct, sizeof(ct)),
                        "application/json");

    atomic_store(&fx->fake.not_ready, 2);
    request(fx->port, "GET", "/readyz", r);
    assert_int_equal(r->status, 503);
    root = json_loads(r->body, 0, &jerr);
    assert_non_null(root);
    assert_true(json_is_false(json_object_get(root, "ready")));
    reasons = json_object_get(root, "reasons");
    assert_int_equal(json_array_size(reasons), 2);
    assert_string_equal(json_string_value(json_array_get(reasons, 0)),
                        fake_reasons[0]);
    assert_string_equal(json_string_value(json_array_get(reasons, 1)),
                        fake_reasons[1]); /* quotes escaped, parsed back */
    json_decref(root);
    free(r);
}

static void test_http_debug_workers_json_or_500(void **state) {
    fixture_t *fx = *state;
    resp_t *r = malloc(sizeof(*r));
    json_error_t jerr;
    json_t *root;

    assert_non_null(r);
    request(fx->port, "GET", "/debug/workers", r);
    assert_int_equal(r->status, 200);
    root = json_loads(r->body, 0, &jerr);
    assert_non_null(root);
    assert_int_equal(json_array_size(json_object_get(root, "workers")), 1);
    json_decref(root);
    atomic_store(&fx->fake.debug_null, 1);
    request(fx->port, "GET", "/debug/workers", r);
    assert_int_equal(r->status, 500);
    free(r);
}

static void test_http_unknown_path_is_404(void **state) {
    fixture_t *fx = *state;
    resp_t *r = malloc(sizeof(*r));
    const char *paths[] = {"/",
                           "/metrics/",
                           "/debug",
                           "/debug/workers/x",
                           "/healthz?x=1/../readyz",
                           "/%00"};

    assert_non_null(r);
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        request(fx->port, "GET", paths[i], r);
        if (strchr(paths[i], '?') != NULL) {
            /* The query string is not part of the path: /healthz. */
            assert_int_equal(r->status, 200);
            continue;
        }
        assert_int_equal(r->status, 404);
        assert_string_equal(r->body, "not found\n");
    }
    free(r);
}

static void test_http_other_methods_are_405_with_allow(void **state) {
    fixture_t *fx = *state;
    resp_t *r = malloc(sizeof(*r));
    const char *methods[] = {"POST", "PUT", "DELETE", "OPTIONS", "PATCH"};
    char allow[64];

    assert_non_null(r);
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        request(fx->port, methods[i], "/metrics", r);
        assert_int_equal(r->status, 405);
        assert_string_equal(header(r, "Allow", allow, sizeof(allow)),
                            "GET, HEAD");
    }
    /* A body is never read: still 405, and the server carries on. */
    request_raw(fx->port,
                "POST /readyz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                "Connection: close\r\n\r\nhello",
                r);
    assert_int_equal(r->status, 405);
    request(fx->port, "GET", "/healthz", r);
    assert_int_equal(r->status, 200);
    free(r);
}

static void test_http_head_has_headers_without_body(void **state) {
    fixture_t *fx = *state;
    resp_t *r = malloc(sizeof(*r));
    char len[32];

    assert_non_null(r);
    request(fx->port, "HEAD", "/metrics", r);
    assert_int_equal(r->status, 200);
    assert_non_null(header(r, "Content-Length", len, sizeof(len)));
    assert_true(atoi(len) > 1000);
    assert_string_equal(r->body, "");
    free(r);
}

/* dd-http exists while the server runs. */
static void test_http_thread_is_named_dd_http(void **state) {
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int found = 0;

    (void)state;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        char path[300], name[32] = "";
        FILE *fp;
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
        fp = fopen(path, "r");
        if (fp == NULL)
            continue;
        if (fgets(name, sizeof(name), fp) != NULL &&
            strcmp(name, "dd-http\n") == 0)
            found = 1;
        fclose(fp);
    }
    closedir(d);
    assert_true(found);
}

/*----- Bounds -----*/

/* 1 when the server closed fd (EOF or reset), 0 when it is still open. */
static int peer_closed(int fd, int wait_ms) {
    struct pollfd pfd = {fd, POLLIN, 0};
    char c;
    ssize_t n;

    if (poll(&pfd, 1, wait_ms) <= 0)
        return 0;
    n = recv(fd, &c, 1, MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

static void test_http_slowloris_does_not_block_others(void **state) {
    fixture_t *fx = *state;
    resp_t *r = malloc(sizeof(*r));
    int slow = connect_to(fx->port);
    int64_t t0, deadline;

    assert_non_null(r);
    /* An unfinished request line and header, then silence. */
    assert_int_equal(send_all(slow, "GET /metrics HTTP/1.1\r\nHost: 1", 31), 0);
    t0 = dd_now_ms();
    request(fx->port, "GET", "/healthz", r);
    assert_int_equal(r->status, 200);
    /* The normal request was answered while the slow one is still open. */
    assert_false(peer_closed(slow, 0));
    assert_true(dd_now_ms() - t0 < IDLE_TIMEOUT_S * 1000);
    /* The idle timeout then closes it. */
    deadline = dd_now_ms() + IDLE_TIMEOUT_S * 1000 + patience_ms();
    while (!peer_closed(slow, 100))
        assert_true(dd_now_ms() < deadline);
    close(slow);
    free(r);
}

static void test_http_oversized_header_is_rejected(void **state) {
    fixture_t *fx = *state;
    resp_t *r = malloc(sizeof(*r));
    resp_t *big = malloc(sizeof(*big));
    size_t pad = 100 * 1024;
    char *req = malloc(pad + 256);
    int n;

    assert_non_null(r);
    assert_non_null(big);
    assert_non_null(req);
    n = snprintf(req, 256, "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: ");
    memset(req + n, 'a', pad);
    strcpy(req + n + pad, "\r\nConnection: close\r\n\r\n");
    request_raw(fx->port, req, big);
    /* 431 when the response got through before the reset; never a 200. */
    assert_true(big->status == 0 || big->status == 431 || big->status == 414 ||
                big->status == 413);
    request(fx->port, "GET", "/readyz", r);
    assert_int_equal(r->status, 200);
    free(req);
    free(big);
    free(r);
}

static void test_http_per_ip_limit_bounds_connections(void **state) {
    fixture_t *fx = *state;
    resp_t *r = malloc(sizeof(*r));
    int fds[PER_IP_LIMIT], extra;
    int64_t deadline;

    assert_non_null(r);
    for (int i = 0; i < PER_IP_LIMIT; i++) {
        fds[i] = connect_to(fx->port);
        assert_int_equal(send_all(fds[i], "GET /", 5), 0);
    }
    /* One more from the same address is closed at once, unanswered. */
    extra = connect_to(fx->port);
    (void)send_all(extra,
                   "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close"
                   "\r\n\r\n",
                   52);
    /* EOF or reset with no byte of a response. */
    assert_true(read_all(extra, r->raw, sizeof(r->raw),
                         dd_now_ms() + patience_ms()) <= 0);
    close(extra);
    /* The held connections are still open; freeing them restores service. */
    for (int i = 0; i < PER_IP_LIMIT; i++) {
        assert_false(peer_closed(fds[i], 0));
        close(fds[i]);
    }
    deadline = dd_now_ms() + patience_ms();
    for (;;) {
        request(fx->port, "GET", "/healthz", r);
        if (r->status == 200)
            break;
        assert_true(dd_now_ms() < deadline);
    }
    free(r);
}

/*----- Lifecycle -----*/

static void test_http_new_rejects_bad_address_and_busy_port(void **state) {
    fixture_t *fx = *state;
    dd_http_sources_t src = {NULL, NULL, NULL, NULL};
    dd_http_conf_t conf = {0};
    char errstr[256] = "";
    resp_t *r = malloc(sizeof(*r));
    dd_http_t *h;

    assert_non_null(r);
    conf.addr = "localhost"; /* not numeric */
    conf.port = 0;
    assert_null(dd_http_new(&conf, &src, errstr, sizeof(errstr)));
    assert_non_null(strstr(errstr, "bad listen address"));
    conf.addr = "127.0.0.1";
    conf.port = fx->port; /* taken by the fixture's server */
    assert_null(dd_http_new(&conf, &src, errstr, sizeof(errstr)));
    assert_non_null(strstr(errstr, "cannot listen on 127.0.0.1:"));
    /* IPv6 loopback with NULL sources: always healthy and ready. */
    conf.addr = "::1";
    conf.port = 0;
    h = dd_http_new(&conf, &src, errstr, sizeof(errstr));
    if (h == NULL) {
        free(r);
        skip(); /* no IPv6 in this sandbox */
    }
    {
        struct sockaddr_in6 sin6;
        int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const char *req = "GET /readyz HTTP/1.1\r\nHost: x\r\n"
                          "Connection: close\r\n\r\n";
        memset(&sin6, 0, sizeof(sin6));
        sin6.sin6_family = AF_INET6;
        sin6.sin6_port = htons((uint16_t)dd_http_port(h));
        sin6.sin6_addr = in6addr_loopback;
        assert_int_equal(connect(fd, (struct sockaddr *)&sin6, sizeof(sin6)),
                         0);
        assert_int_equal(send_all(fd, req, strlen(req)), 0);
        assert_true(read_all(fd, r->raw, sizeof(r->raw),
                             dd_now_ms() + patience_ms()) > 0);
        close(fd);
        assert_non_null(strstr(r->raw, "HTTP/1.1 200"));
        assert_non_null(strstr(r->raw, "{\"ready\":true,\"reasons\":[]}"));
    }
    dd_http_destroy(h);
    dd_http_destroy(NULL);
    free(r);
}

/* The admin source: 202 for its one action, 404 for any other path. */
static unsigned fake_admin(void *opaque, const char *path, char *body,
                           size_t body_size) {
    fake_t *f = opaque;
    atomic_fetch_add(&f->calls, 1);
    if (strcmp(path, "/admin/act") != 0) {
        snprintf(body, body_size, "not found\n");
        return 404;
    }
    snprintf(body, body_size, "done\n");
    return 202;
}

static void test_http_admin_is_post_only(void **state) {
    fixture_t *fx = *state;
    fake_t fake;
    dd_http_sources_t src = {NULL, NULL, NULL, &fake, fake_admin};
    dd_http_conf_t conf = {0};
    char errstr[256] = "", allow[64];
    resp_t *r = malloc(sizeof(*r));
    dd_http_t *h;
    int port;

    assert_non_null(r);
    memset(&fake, 0, sizeof(fake));
    conf.addr = "127.0.0.1";
    h = dd_http_new(&conf, &src, errstr, sizeof(errstr));
    assert_non_null(h);
    port = dd_http_port(h);
    request(port, "POST", "/admin/act", r);
    assert_int_equal(r->status, 202);
    assert_string_equal(r->body, "done\n");
    request(port, "POST", "/admin/other", r);
    assert_int_equal(r->status, 404);
    request(port, "GET", "/admin/act", r);
    assert_int_equal(r->status, 405);
    assert_string_equal(header(r, "Allow", allow, sizeof(allow)), "POST");
    assert_int_equal(atomic_load(&fake.calls), 2);
    /* POST elsewhere is still 405 with GET, HEAD. */
    request(port, "POST", "/metrics", r);
    assert_int_equal(r->status, 405);
    dd_http_destroy(h);
    /* Without an admin source, /admin/... is an unknown path. */
    request(fx->port, "POST", "/admin/act", r);
    assert_int_equal(r->status, 405);
    request(fx->port, "GET", "/admin/act", r);
    assert_int_equal(r->status, 404);
    free(r);
}

static void test_http_destroy_with_open_connection_is_prompt(void **state) {
    fixture_t *fx = *state;
    int fd = connect_to(fx->port);
    int64_t t0;

    assert_int_equal(send_all(fd, "GET /metr", 9), 0);
    t0 = dd_now_ms();
    dd_http_destroy(fx->h);
    fx->h = NULL;
    /* The eventfd wakes dd-http: no wait for the poll bound or timeout. */
    assert_true(dd_now_ms() - t0 < 900);
    assert_true(peer_closed(fd, (int)patience_ms()));
    close(fd);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_http_metrics_renders_prometheus_text, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_http_healthz_ok_then_503_with_reason, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_readyz_json_reasons, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_http_debug_workers_json_or_500,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_unknown_path_is_404, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_http_other_methods_are_405_with_allow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_head_has_headers_without_body,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_thread_is_named_dd_http,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_http_slowloris_does_not_block_others, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_oversized_header_is_rejected,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_http_per_ip_limit_bounds_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_http_new_rejects_bad_address_and_busy_port, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_http_destroy_with_open_connection_is_prompt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_admin_is_post_only, setup,
                                        teardown),
    };

    /* A reset peer must not kill the test with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    dd_log_init(DD_LOG_WARN, DD_LOG_FORMAT_JSON);
    return cmocka_run_group_tests_name("http", tests, NULL, NULL);
}
