/* SPDX-License-Identifier: MIT */
/*
 * redis_url: turns a Redis URL (redis://... or unix://...) into a
 * dd_redis_url_t and prints one back with its password redacted. Nothing
 * else: the store connects with the result, config stores it for --redis,
 * the seed tool uses it for its own --redis. See include/redis_url.h for
 * the accepted forms.
 *
 * Error messages never echo the URL or the credentials (the URL may hold a
 * password); they name only the part that is wrong, such as the port or
 * the database, and carry no option name: callers prefix their own.
 */
#include "redis_url.h"

#include "util.h"

#include <ctype.h>
#include <limits.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

/* Where the first error goes. */
typedef struct url_err {
    char *buf;
    size_t size;
} url_err_t;

/* Record one line of error text; evaluates to DD_ERR. A macro rather than
 * a variadic function (clang-analyzer 14 valist.Uninitialized, see
 * config.c). */
#define URL_FAIL(e, ...)                                                       \
    (dd_set_error((e)->buf, (e)->size, __VA_ARGS__), DD_ERR)

/* Largest unix socket path, without its terminating NUL. */
#define UNIX_PATH_MAX (sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1)

static int hexval(int c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Percent-decode s[0..n) into a new string; NULL if the encoding is bad or
 * decodes to a NUL byte. */
static char *pct_decode(const char *s, size_t n) {
    char *out = dd_xmalloc(n + 1);
    size_t j = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int hi = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                dd_free(out);
                return NULL;
            }
            out[j++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[j++] = s[i];
        }
    }
    out[j] = '\0';
    return out;
}

/* Decimal digits s[0..n) (no sign, no space) as a value in min..max. */
static int parse_number(const char *s, size_t n, long min, long max, int *out) {
    long v = 0;

    if (n == 0)
        return DD_ERR;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]) || v > (max - (s[i] - '0')) / 10)
            return DD_ERR;
        v = v * 10 + (s[i] - '0');
    }
    if (v < min)
        return DD_ERR;
    *out = (int)v;
    return DD_OK;
}

/* unix:///PATH[?db=N][&password=P][&user=U]; s points at "/PATH...". */
static int parse_unix(const char *s, dd_redis_url_t *u, url_err_t *e) {
    const char *q = strchr(s, '?');
    size_t plen = q != NULL ? (size_t)(q - s) : strlen(s);

    if (s[0] != '/' || plen < 2)
        return URL_FAIL(e, "unix:// needs an absolute socket path "
                           "(unix:///path/to/redis.sock)");
    if (plen > UNIX_PATH_MAX)
        return URL_FAIL(e, "unix socket path longer than %zu", UNIX_PATH_MAX);
    u->unix_path = dd_xstrndup(s, plen);
    while (q != NULL) {
        const char *name = q + 1;
        const char *eq = strchr(name, '=');
        const char *amp = strchr(name, '&');
        const char *val, *end = amp != NULL ? amp : name + strlen(name);
        size_t nlen;
        char **dst = NULL;

        if (eq == NULL || eq > end)
            return URL_FAIL(e, "expected NAME=VALUE after '%c'", *q);
        val = eq + 1;
        nlen = (size_t)(eq - name);
        if (nlen == 2 && strncmp(name, "db", 2) == 0) {
            if (parse_number(val, (size_t)(end - val), 0, INT_MAX, &u->db) !=
                DD_OK)
                return URL_FAIL(e, "bad database '%.*s' (0..2147483647)",
                                (int)(end - val), val);
        } else if (nlen == 8 && strncmp(name, "password", 8) == 0) {
            dst = &u->password;
        } else if (nlen == 4 && strncmp(name, "user", 4) == 0) {
            dst = &u->user;
        } else {
            return URL_FAIL(e, "unknown parameter '%.*s' (db, password, user)",
                            (int)nlen, name);
        }
        if (dst != NULL) {
            dd_free(*dst);
            *dst = pct_decode(val, (size_t)(end - val));
            if (*dst == NULL)
                return URL_FAIL(e, "bad percent-encoding");
            if (**dst == '\0') {
                dd_free(*dst);
                *dst = NULL;
            }
        }
        q = amp;
    }
    return DD_OK;
}

/* [USER]:PASSWORD in s[0..n), before the '@'. */
static int parse_credentials(const char *s, size_t n, dd_redis_url_t *u,
                             url_err_t *e) {
    const char *colon = memchr(s, ':', n);
    const char *end = s + n;

    if (colon == NULL)
        return URL_FAIL(e, "credentials must be [USER]:PASSWORD@ "
                           "(percent-encode special characters)");
    if (colon > s)
        u->user = pct_decode(s, (size_t)(colon - s));
    if (end > colon + 1)
        u->password = pct_decode(colon + 1, (size_t)(end - colon - 1));
    if ((colon > s && u->user == NULL) ||
        (end > colon + 1 && u->password == NULL))
        return URL_FAIL(e, "bad percent-encoding in credentials");
    return DD_OK;
}

/* HOST[:PORT] or [IPV6][:PORT] in s[0..aend) into *host (owned) and
 * *port (default 6379). */
static int parse_host_port(const char *s, const char *aend, char **hostp,
                           int *portp, url_err_t *e) {
    const char *host, *hend, *port = NULL;

    if (*s == '[') {
        host = s + 1;
        hend = memchr(host, ']', (size_t)(aend - host));
        if (hend == NULL || hend == host ||
            memchr(host, '[', (size_t)(hend - host)) != NULL ||
            (hend + 1 < aend && hend[1] != ':'))
            return URL_FAIL(e, "bad [IPV6] host");
        if (hend + 1 < aend)
            port = hend + 2;
    } else {
        host = s;
        hend = memchr(s, ':', (size_t)(aend - s));
        if (hend != NULL) {
            port = hend + 1;
            if (memchr(port, ':', (size_t)(aend - port)) != NULL)
                return URL_FAIL(e, "IPv6 hosts need brackets: "
                                   "redis://[::1]:6379");
        } else {
            hend = aend;
        }
    }
    if (hend == host)
        return URL_FAIL(e, "missing host");
    *portp = DD_REDIS_URL_DEFAULT_PORT;
    if (port != NULL &&
        parse_number(port, (size_t)(aend - port), 1, 65535, portp) != DD_OK)
        return URL_FAIL(e, "bad port '%.*s' (1..65535)", (int)(aend - port),
                        port);
    *hostp = dd_xstrndup(host, (size_t)(hend - host));
    return DD_OK;
}

/* The '@' that ends the credentials in s[0..aend), or NULL. */
static const char *find_at(const char *s, const char *aend) {
    const char *at = NULL;

    for (const char *p = s; p < aend; p++) {
        if (*p == '@')
            at = p;
    }
    return at;
}

/* redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]; s points after "redis://". */
static int parse_tcp(const char *s, dd_redis_url_t *u, url_err_t *e) {
    size_t alen = strcspn(s, "/?#");
    const char *aend = s + alen, *at = find_at(s, aend);

    if (at != NULL) {
        if (parse_credentials(s, (size_t)(at - s), u, e) != DD_OK)
            return DD_ERR;
        s = at + 1;
    }
    if (parse_host_port(s, aend, &u->host, &u->port, e) != DD_OK)
        return DD_ERR;
    s = aend;
    if (*s == '/') {
        size_t dlen = strcspn(++s, "?#");
        if (dlen > 0 && parse_number(s, dlen, 0, INT_MAX, &u->db) != DD_OK)
            return URL_FAIL(e, "bad database '%.*s' (0..2147483647)", (int)dlen,
                            s);
        s += dlen;
    }
    if (*s != '\0')
        return URL_FAIL(e,
                        "unexpected '%c...' after the database (only "
                        "unix:// takes parameters)",
                        *s);
    return DD_OK;
}

static int parse_url(const char *url, dd_redis_url_t *u, url_err_t *e) {
    const char *sep = strstr(url, "://");

    if (strncasecmp(url, "redis://", 8) == 0)
        return parse_tcp(url + 8, u, e);
    if (strncasecmp(url, "unix://", 7) == 0)
        return parse_unix(url + 7, u, e);
    if (sep != NULL && sep - url < 16 &&
        strcspn(url, ":@/") == (size_t)(sep - url))
        return URL_FAIL(e,
                        "unsupported scheme '%.*s://' (expected redis:// or "
                        "unix://)",
                        (int)(sep - url), url);
    return URL_FAIL(e, "not a Redis URL (expected redis://HOST[:PORT][/DB] or "
                       "unix:///PATH)");
}

int dd_redis_url_parse(const char *url, dd_redis_url_t *u, char *errstr,
                       size_t errstr_size) {
    url_err_t e = {errstr, errstr_size};

    memset(u, 0, sizeof(*u));
    if (parse_url(url, u, &e) != DD_OK) {
        dd_redis_url_close(u);
        return DD_ERR;
    }
    return DD_OK;
}

/* redis://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...] */
static int parse_cluster(const char *url, dd_redis_url_t *u, url_err_t *e) {
    const char *s, *aend, *at;

    if (strncasecmp(url, "redis://", 8) != 0)
        return URL_FAIL(e, "not a Redis Cluster URL (expected "
                           "redis://HOST:PORT[,HOST:PORT...])");
    s = url + 8;
    aend = s + strcspn(s, "/?#");
    if (*aend != '\0')
        return URL_FAIL(e,
                        "unexpected '%c...' after the seeds (Redis "
                        "Cluster has no database to select)",
                        *aend);
    at = find_at(s, aend);
    if (at != NULL) {
        if (parse_credentials(s, (size_t)(at - s), u, e) != DD_OK)
            return DD_ERR;
        s = at + 1;
    }
    for (;;) {
        const char *comma = memchr(s, ',', (size_t)(aend - s));
        const char *end = comma != NULL ? comma : aend;
        dd_redis_seed_t *sd;
        char why[200];
        url_err_t se = {why, sizeof(why)};

        if (u->nseeds == DD_REDIS_URL_MAX_SEEDS)
            return URL_FAIL(e, "more than %d seeds", DD_REDIS_URL_MAX_SEEDS);
        u->seeds = dd_xrealloc(u->seeds, (u->nseeds + 1) * sizeof(*u->seeds));
        sd = &u->seeds[u->nseeds];
        sd->host = NULL;
        if (parse_host_port(s, end, &sd->host, &sd->port, &se) != DD_OK)
            return URL_FAIL(e, "seed %zu: %s", u->nseeds + 1, why);
        u->nseeds++;
        if (comma == NULL)
            break;
        s = comma + 1;
    }
    u->host = dd_xstrdup(u->seeds[0].host);
    u->port = u->seeds[0].port;
    return DD_OK;
}

int dd_redis_url_parse_cluster(const char *url, dd_redis_url_t *u, char *errstr,
                               size_t errstr_size) {
    url_err_t e = {errstr, errstr_size};

    memset(u, 0, sizeof(*u));
    if (url[0] == '\0')
        return DD_OK;
    if (parse_cluster(url, u, &e) != DD_OK) {
        dd_redis_url_close(u);
        return DD_ERR;
    }
    return DD_OK;
}

void dd_redis_url_close(dd_redis_url_t *u) {
    for (size_t i = 0; i < u->nseeds; i++)
        dd_free(u->seeds[i].host);
    dd_free(u->seeds);
    dd_free(u->host);
    dd_free(u->unix_path);
    dd_free(u->user);
    dd_free(u->password);
    memset(u, 0, sizeof(*u));
}

/* s percent-encoded: everything but the URL's unreserved characters. */
static void fputs_pct(const char *s, FILE *fp) {
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || strchr("-._~", c) != NULL)
            fputc(c, fp);
        else
            fprintf(fp, "%%%02X", c);
    }
}

void dd_redis_url_print(const dd_redis_url_t *u, FILE *fp) {
    if (u->unix_path != NULL) {
        fprintf(fp, "unix://%s?db=%d", u->unix_path, u->db);
        if (u->user != NULL) {
            fputs("&user=", fp);
            fputs_pct(u->user, fp);
        }
        if (u->password != NULL)
            fputs("&password=***", fp);
        return;
    }
    if (u->host == NULL)
        return; /* an unset cluster URL */
    fputs("redis://", fp);
    if (u->user != NULL || u->password != NULL) {
        if (u->user != NULL)
            fputs_pct(u->user, fp);
        fprintf(fp, ":%s@", u->password != NULL ? "***" : "");
    }
    for (size_t i = 0; i < u->nseeds; i++) {
        const dd_redis_seed_t *sd = &u->seeds[i];

        if (strchr(sd->host, ':') != NULL)
            fprintf(fp, "%s[%s]:%d", i > 0 ? "," : "", sd->host, sd->port);
        else
            fprintf(fp, "%s%s:%d", i > 0 ? "," : "", sd->host, sd->port);
    }
    if (u->nseeds > 0)
        return;
    if (strchr(u->host, ':') != NULL)
        fprintf(fp, "[%s]:%d/%d", u->host, u->port, u->db);
    else
        fprintf(fp, "%s:%d/%d", u->host, u->port, u->db);
}
