/* SPDX-License-Identifier: MIT */
/*
 * http: the operator endpoint, served with libmicrohttpd from one thread of
 * our own (dd-http):
 *
 *   GET /metrics        Prometheus text format (dd_metrics_render())
 *   GET /healthz        200 "ok", or 503 with the reason (sources.health)
 *   GET /readyz         200 {"ready":true,"reasons":[]}, or 503
 *                       {"ready":false,"reasons":[...]} (sources.ready)
 *   GET /debug/workers  JSON from sources.debug
 *   POST /admin/...     the status and text of sources.admin
 *
 * HEAD works wherever GET does; POST only under /admin/ (and GET, HEAD
 * nowhere there); any other method gets 405 with an Allow header, any other
 * path 404. The module knows nothing of the pipeline: its
 * owner hands it a dd_http_sources_t of callbacks (STYLE.md section 1, a
 * lower module calling upward through callbacks its owner registered).
 *
 * Bounded: a connection limit, a per-IP limit, an idle timeout and a
 * per-connection memory limit (an oversized request line or header gets
 * 431/414 and is closed), so a slow or hostile client costs one connection
 * slot, never the thread: sockets are non-blocking and the callbacks only
 * read atomics or take short leaf locks.
 */
#ifndef DD_HTTP_H
#define DD_HTTP_H

#include <stddef.h>

#define DD_HTTP_CONN_LIMIT_DEFAULT   64 /* concurrent connections */
#define DD_HTTP_PER_IP_LIMIT_DEFAULT 16 /* connections per client IP */
#define DD_HTTP_TIMEOUT_S_DEFAULT    5  /* idle connection timeout, s */
#define DD_HTTP_MEMORY_DEFAULT       (32 * 1024) /* per connection, bytes */
#define DD_HTTP_READY_REASONS_MAX    8           /* reasons /readyz reports */

/** The HTTP server and its dd-http thread. */
typedef struct dd_http dd_http_t;

/**
 * @brief Liveness: 1 when the process makes progress; else 0 with a
 *        one-line reason in reason (NUL-terminated, truncated to
 *        reason_size). @locality dd-http; must not block
 */
typedef int(dd_http_health_cb)(void *opaque, char *reason, size_t reason_size);

/**
 * @brief Readiness: store up to max reasons for not being ready into
 *        reasons and return how many; 0 means ready.
 * @param reasons borrowed array; the strings stored must be static (they
 *        are read after the call returns)
 * @locality dd-http; must not block
 */
typedef size_t(dd_http_ready_cb)(void *opaque, const char **reasons,
                                 size_t max);

/**
 * @brief The /debug/workers document.
 * @returns owned NUL-terminated JSON text (freed with dd_free()), or NULL
 *          (the endpoint then answers 500)
 * @locality dd-http; must not block
 */
typedef char *(dd_http_debug_cb)(void *opaque);

/**
 * @brief An operator action: POST to a path under /admin/ (request body
 *        ignored).
 * @param path borrowed, the whole path ("/admin/...")
 * @param body borrowed buffer for the one-line text answer
 * @returns the HTTP status (e.g. 202 done, 404 unknown action, 409 nothing
 *          to do)
 * @locality dd-http; must not block
 */
typedef unsigned(dd_http_admin_cb)(void *opaque, const char *path, char *body,
                                   size_t body_size);

/** What the endpoints report; every callback gets opaque. */
typedef struct dd_http_sources {
    dd_http_health_cb *health; /* (optional) NULL: always healthy */
    dd_http_ready_cb *ready;   /* (optional) NULL: always ready */
    dd_http_debug_cb *debug;   /* (optional) NULL: /debug/workers is 404 */
    void *opaque;              /* borrowed; must outlive the server */
    dd_http_admin_cb *admin;   /* (optional) NULL: /admin/... is 404 */
} dd_http_sources_t;

/** Where to listen and the bounds; zero fields take the defaults. */
typedef struct dd_http_conf {
    const char *addr;    /* numeric IPv4 or IPv6 address (no brackets) */
    int port;            /* 0..65535; 0 = any free port (see dd_http_port) */
    unsigned conn_limit; /* 0 = DD_HTTP_CONN_LIMIT_DEFAULT */
    unsigned per_ip;     /* 0 = DD_HTTP_PER_IP_LIMIT_DEFAULT */
    unsigned timeout_s;  /* 0 = DD_HTTP_TIMEOUT_S_DEFAULT */
    size_t memory_limit; /* 0 = DD_HTTP_MEMORY_DEFAULT */
} dd_http_conf_t;

/*----- Lifecycle -----*/

/**
 * @brief Listen on conf->addr:conf->port and start dd-http. Logs the event
 *        http_listening with the bound port ("... (port N)").
 * @param conf borrowed; copied
 * @param src borrowed; copied (src->opaque must outlive the server)
 * @returns owned server, or NULL with errstr (bad address, port in use, no
 *          thread)
 * @locality main thread
 */
dd_http_t *dd_http_new(const dd_http_conf_t *conf, const dd_http_sources_t *src,
                       char *errstr, size_t errstr_size);

/**
 * @brief Stop serving (open connections are closed), join dd-http and free.
 *        NULL is allowed.
 * @locality main thread
 */
void dd_http_destroy(dd_http_t *h);

/*----- State -----*/

/** @brief The bound TCP port (the chosen one when conf->port was 0).
 *  @locality any thread */
int dd_http_port(const dd_http_t *h);

#endif /* DD_HTTP_H */
