/* SPDX-License-Identifier: MIT */
/*
 * http: libmicrohttpd in "external polling" mode, driven by our own thread.
 *
 * DESIGN: MHD runs without an internal thread (no
 * MHD_USE_INTERNAL_POLLING_THREAD): dd-http, a thread of ours named like
 * every other, waits in poll(2) on MHD's epoll descriptor and on an eventfd,
 * then calls MHD_run(). So every MHD call but start (before dd-http exists)
 * and stop (after it was joined) happens on dd-http, the request handler and
 * the source callbacks included, and dd_http_destroy() wakes the thread at
 * once through the eventfd. MHD's sockets are non-blocking: a client that
 * sends slowly (slowloris) or too much only holds its connection slot,
 * until the idle timeout or the memory limit closes it. No lock is held
 * here; the callbacks read atomics or take the owner's short leaf locks.
 *
 * Memory: response bodies are dd_xmalloc'd and handed to MHD with dd_free
 * as their free callback.
 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "log.h"
#include "metrics.h"
#include "util.h"

#define LOOP_MAX_WAIT_MS 1000 /* poll() bound when MHD has no timeout */
#define LISTEN_BACKLOG   64

#define CT_TEXT    "text/plain; charset=utf-8"
#define CT_JSON    "application/json"
#define CT_METRICS "text/plain; version=0.0.4; charset=utf-8"

struct dd_http {
    struct MHD_Daemon *d;
    dd_http_sources_t src; /* read-only after dd_http_new() */
    int port;              /* bound port, read-only after dd_http_new() */
    int epoll_fd;          /* MHD's, borrowed */
    int wake_fd;           /* eventfd: dd_http_destroy() wakes dd-http */
    pthread_t thread;
    int thread_started;
    atomic_int stop;
    atomic_int running;  /* 1 once dd-http may call the logger */
    char start_err[256]; /* last MHD message before dd-http started */
};

/* MHD's error log: at startup it explains a failed bind; afterwards its
 * messages (a client over a limit, a bad request) go to the debug log, so a
 * hostile client cannot flood the log. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    dd_http_t *h = cls;
    char msg[256];
    size_t n;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    if (!atomic_load(&h->running))
        dd_strlcpy(h->start_err, msg, sizeof(h->start_err));
    DD_LOG(DD_LOG_DEBUG, "http", "mhd", "%s", msg);
}

/* Queue a response whose body (owned, from dd_xmalloc) MHD frees with
 * dd_free once sent. HEAD requests get the headers only (MHD drops the
 * body). */
static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status,
                             const char *ctype, char *body, size_t len,
                             const char *allow) {
    struct MHD_Response *resp;
    enum MHD_Result ret;

    resp =
        MHD_create_response_from_buffer_with_free_callback(len, body, dd_free);
    if (resp == NULL) {
        dd_free(body);
        return MHD_NO;
    }
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype) !=
            MHD_YES ||
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
                                "no-store") != MHD_YES ||
        (allow != NULL && MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
                                                  allow) != MHD_YES)) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned status,
                                  const char *text, const char *allow) {
    return reply(conn, status, CT_TEXT, dd_xstrdup(text), strlen(text), allow);
}

/* jansson's output is malloc'd by jansson; the body must come from dd_x*. */
static enum MHD_Result reply_json(struct MHD_Connection *conn, unsigned status,
                                  json_t *root) {
    char *s = json_dumps(root, JSON_COMPACT);
    char *body;

    json_decref(root);
    if (s == NULL)
        return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                          "cannot serialise the document\n", NULL);
    body = dd_xstrdup(s);
    free(s);
    return reply(conn, status, CT_JSON, body, strlen(body), NULL);
}

/* Readiness reasons from the owner; 0 means ready. */
static size_t readiness(const dd_http_t *h, const char **reasons, size_t max) {
    size_t n;

    if (h->src.ready == NULL)
        return 0;
    n = h->src.ready(h->src.opaque, reasons, max);
    return n < max ? n : max;
}

static enum MHD_Result serve_metrics(dd_http_t *h,
                                     struct MHD_Connection *conn) {
    const char *reasons[DD_HTTP_READY_REASONS_MAX];
    size_t len;
    char *text;

    /* dispatchd_ready mirrors /readyz at scrape time. */
    dd_metrics_gauge_set(DD_G_READY,
                         readiness(h, reasons, DD_HTTP_READY_REASONS_MAX) == 0);
    text = dd_metrics_render(&len);
    return reply(conn, MHD_HTTP_OK, CT_METRICS, text, len, NULL);
}

static enum MHD_Result serve_healthz(dd_http_t *h,
                                     struct MHD_Connection *conn) {
    char reason[256] = "";
    char body[300];

    if (h->src.health == NULL ||
        h->src.health(h->src.opaque, reason, sizeof(reason)))
        return reply_text(conn, MHD_HTTP_OK, "ok\n", NULL);
    snprintf(body, sizeof(body), "unhealthy: %s\n",
             reason[0] ? reason : "unknown");
    return reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, body, NULL);
}

static enum MHD_Result serve_readyz(dd_http_t *h, struct MHD_Connection *conn) {
    const char *reasons[DD_HTTP_READY_REASONS_MAX];
    size_t n = readiness(h, reasons, DD_HTTP_READY_REASONS_MAX);
    json_t *root = json_object();
    json_t *list = json_array();

    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, json_string(reasons[i] ? reasons[i] : ""));
    json_object_set_new(root, "ready", json_boolean(n == 0));
    json_object_set_new(root, "reasons", list);
    return reply_json(conn, n == 0 ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                      root);
}

static enum MHD_Result serve_debug(dd_http_t *h, struct MHD_Connection *conn) {
    char *doc = h->src.debug(h->src.opaque);

    if (doc == NULL)
        return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                          "debug state unavailable\n", NULL);
    return reply(conn, MHD_HTTP_OK, CT_JSON, doc, strlen(doc), NULL);
}

/* POST /admin/...: an operator action, logged at info level. */
static enum MHD_Result serve_admin(dd_http_t *h, struct MHD_Connection *conn,
                                   const char *method, const char *url) {
    char body[256] = "";
    unsigned status;

    if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
        return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                          "method not allowed\n", "POST");
    status = h->src.admin(h->src.opaque, url, body, sizeof(body));
    DD_LOG(DD_LOG_INFO, "http", "http_admin", "POST %s: %u", url, status);
    return reply_text(conn, status, body[0] ? body : "\n", NULL);
}

/* MHD's access handler, on dd-http. Every request is answered on its first
 * call: a request body, if any, is never read (MHD closes the connection
 * after the response instead). */
static enum MHD_Result handle(void *cls, struct MHD_Connection *conn,
                              const char *url, const char *method,
                              const char *version, const char *upload_data,
                              size_t *upload_data_size, void **req_cls) {
    dd_http_t *h = cls;

    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)req_cls;
    DD_LOG(DD_LOG_DEBUG, "http", "http_request", "%s %s", method, url);
    if (strncmp(url, "/admin/", 7) == 0 && h->src.admin != NULL)
        return serve_admin(h, conn, method, url);
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
        strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                          "method not allowed\n", "GET, HEAD");
    if (strcmp(url, "/metrics") == 0)
        return serve_metrics(h, conn);
    if (strcmp(url, "/healthz") == 0)
        return serve_healthz(h, conn);
    if (strcmp(url, "/readyz") == 0)
        return serve_readyz(h, conn);
    if (strcmp(url, "/debug/workers") == 0 && h->src.debug != NULL)
        return serve_debug(h, conn);
    return reply_text(conn, MHD_HTTP_NOT_FOUND, "not found\n", NULL);
}

/* dd-http: wait for socket activity, MHD's next timeout or the wake-up
 * eventfd, then let MHD do its work. */
static void *http_main(void *arg) {
    dd_http_t *h = arg;
    struct pollfd pfd[2];

    pthread_setname_np(pthread_self(), "dd-http");
    pfd[0].fd = h->epoll_fd;
    pfd[0].events = POLLIN;
    pfd[1].fd = h->wake_fd;
    pfd[1].events = POLLIN;
    while (!atomic_load(&h->stop)) {
        MHD_UNSIGNED_LONG_LONG to;
        int wait_ms = LOOP_MAX_WAIT_MS;

        if (MHD_get_timeout(h->d, &to) == MHD_YES &&
            to < (MHD_UNSIGNED_LONG_LONG)wait_ms)
            wait_ms = (int)to;
        if (poll(pfd, 2, wait_ms) < 0 && errno != EINTR) {
            DD_LOG(DD_LOG_ERROR, "http", "http_poll_failed",
                   "poll failed: %s; HTTP endpoint stopped", strerror(errno));
            break;
        }
        if (atomic_load(&h->stop))
            break;
        if (MHD_run(h->d) != MHD_YES)
            DD_LOG(DD_LOG_DEBUG, "http", "mhd_run_failed", "MHD_run failed");
    }
    return NULL;
}

/* Fill ss from a numeric address; returns 0, or -1 if it is not one. */
static int make_addr(const char *addr, int port, struct sockaddr_storage *ss,
                     int *ipv6) {
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        *ipv6 = 0;
        return 0;
    }
    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        *ipv6 = 1;
        return 0;
    }
    return -1;
}

dd_http_t *dd_http_new(const dd_http_conf_t *conf, const dd_http_sources_t *src,
                       char *errstr, size_t errstr_size) {
    dd_http_t *h = dd_xcalloc(1, sizeof(*h));
    struct sockaddr_storage ss;
    const union MHD_DaemonInfo *info;
    unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    int ipv6;

    h->src = *src;
    h->wake_fd = -1;
    if (conf->addr == NULL || conf->port < 0 || conf->port > 65535 ||
        make_addr(conf->addr, conf->port, &ss, &ipv6) != 0) {
        dd_set_error(errstr, errstr_size, "http: bad listen address %s:%d",
                     conf->addr ? conf->addr : "(null)", conf->port);
        goto err;
    }
    if (ipv6)
        flags |= MHD_USE_IPv6;
    h->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (h->wake_fd < 0) {
        dd_set_error(errstr, errstr_size, "http: eventfd: %s", strerror(errno));
        goto err;
    }
    h->d = MHD_start_daemon(
        flags, (uint16_t)conf->port, NULL, NULL, handle, h,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_CONNECTION_LIMIT,
        conf->conn_limit ? conf->conn_limit : DD_HTTP_CONN_LIMIT_DEFAULT,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        conf->per_ip ? conf->per_ip : DD_HTTP_PER_IP_LIMIT_DEFAULT,
        MHD_OPTION_CONNECTION_TIMEOUT,
        conf->timeout_s ? conf->timeout_s : DD_HTTP_TIMEOUT_S_DEFAULT,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        conf->memory_limit ? conf->memory_limit
                           : (size_t)DD_HTTP_MEMORY_DEFAULT,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)LISTEN_BACKLOG,
        /* No SO_REUSEPORT: a second instance on the same port must fail,
         * not share the port (MHD sets SO_REUSEADDR by itself). */
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h, MHD_OPTION_END);
    if (h->d == NULL) {
        dd_set_error(
            errstr, errstr_size, "http: cannot listen on %s%s%s:%d: %s",
            ipv6 ? "[" : "", conf->addr, ipv6 ? "]" : "", conf->port,
            h->start_err[0] ? h->start_err : "MHD_start_daemon failed");
        goto err;
    }
    info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : conf->port;
    info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
    if (info == NULL) {
        dd_set_error(errstr, errstr_size, "http: no epoll descriptor");
        goto err;
    }
    h->epoll_fd = info->epoll_fd;
    atomic_store(&h->running, 1);
    if (pthread_create(&h->thread, NULL, http_main, h) != 0) {
        dd_set_error(errstr, errstr_size, "http: cannot start dd-http");
        goto err;
    }
    h->thread_started = 1;
    /* Named from here too, so the name is in place when we return. */
    pthread_setname_np(h->thread, "dd-http");
    DD_LOG(DD_LOG_INFO, "http", "http_listening",
           "listening on http://%s%s%s:%d/ (port %d)", ipv6 ? "[" : "",
           conf->addr, ipv6 ? "]" : "", h->port, h->port);
    return h;
err:
    dd_http_destroy(h);
    return NULL;
}

void dd_http_destroy(dd_http_t *h) {
    uint64_t one = 1;

    if (h == NULL)
        return;
    if (h->thread_started) {
        atomic_store(&h->stop, 1);
        if (write(h->wake_fd, &one, sizeof(one)) < 0)
            DD_LOG(DD_LOG_DEBUG, "http", "http_wake_failed",
                   "eventfd write: %s", strerror(errno));
        pthread_join(h->thread, NULL);
    }
    if (h->d != NULL)
        MHD_stop_daemon(h->d);
    if (h->wake_fd >= 0)
        close(h->wake_fd);
    dd_free(h);
}

int dd_http_port(const dd_http_t *h) {
    return h->port;
}
