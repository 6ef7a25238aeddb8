/* SPDX-License-Identifier: MIT */
/*
 * redis_url: parse and print the Redis server address given as a URL
 * (--redis, the seed tool's --redis). Two forms:
 *
 *   redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]     TCP; IPv6 as [::1]
 *   unix:///PATH[?db=N][&password=P][&user=U]      unix socket
 *
 * and the seed list of a Redis Cluster (--redis-cluster), without database:
 *
 *   redis://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]
 *
 * USER, PASSWORD and P/U are percent-decoded; the scheme is case-blind.
 * Error messages never echo the URL or any part of the credentials, and the
 * printed form redacts the password. Leaf module: no hiredis header.
 */
#ifndef DD_REDIS_URL_H
#define DD_REDIS_URL_H

#include <stddef.h>
#include <stdio.h>

/** Default TCP port of redis:// URLs without one. */
#define DD_REDIS_URL_DEFAULT_PORT 6379

/** The most seeds a Redis Cluster URL may list. */
#define DD_REDIS_URL_MAX_SEEDS 64

/** One seed of a Redis Cluster URL. */
typedef struct dd_redis_seed {
    char *host; /* owned; IPv6 without [] */
    int port;   /* 1..65535 */
} dd_redis_seed_t;

/** A parsed Redis URL. Either unix_path or host/port is set (neither for
 *  an empty Redis Cluster URL: not set). */
typedef struct dd_redis_url {
    char *host;      /* owned; NULL for a unix socket; IPv6 without [] */
    int port;        /* TCP port, 1..65535; 0 for a unix socket */
    char *unix_path; /* owned; NULL for TCP */
    int db;          /* database index (SELECT), 0..INT_MAX */
    char *user;      /* owned, optional (ACL user; NULL = none) */
    char *password;  /* owned, optional (NULL = no AUTH); never printed */
    dd_redis_seed_t *seeds; /* owned; Redis Cluster URLs only, else NULL */
    size_t nseeds;          /* entries of seeds; host/port is the first */
} dd_redis_url_t;

/**
 * @brief Parse a Redis URL (see the file comment).
 * @param url borrowed
 * @param u caller storage, fully overwritten; release with
 *        dd_redis_url_close() after DD_OK. On DD_ERR it holds nothing.
 * @param errstr optional: on DD_ERR one line without the URL (it may hold a
 *        password) and without an option name (the caller adds its own).
 * @returns DD_OK or DD_ERR.
 * @locality any thread
 * @locks_required none
 */
int dd_redis_url_parse(const char *url, dd_redis_url_t *u, char *errstr,
                       size_t errstr_size);

/**
 * @brief Parse a Redis Cluster URL: redis://[[USER]:PASSWORD@]HOST[:PORT]
 *        [,HOST[:PORT]...], seeds only (1..DD_REDIS_URL_MAX_SEEDS), no
 *        database. "" parses to a zeroed u (no cluster).
 * @param url borrowed
 * @param u caller storage, fully overwritten; seeds and nseeds set, host
 *        and port copy the first seed; release with dd_redis_url_close()
 * @param errstr optional: as for dd_redis_url_parse(), a bad seed named by
 *        its number
 * @returns DD_OK or DD_ERR.
 * @locality any thread
 * @locks_required none
 */
int dd_redis_url_parse_cluster(const char *url, dd_redis_url_t *u, char *errstr,
                               size_t errstr_size);

/**
 * @brief Free what u owns and zero it. Safe on a zeroed struct and twice.
 * @locality owner thread
 */
void dd_redis_url_close(dd_redis_url_t *u);

/**
 * @brief Print u in its canonical form, the password as "***":
 *        redis://[USER:***@]HOST:PORT/DB (IPv6 host in brackets) or
 *        unix:///PATH?db=N[&user=U][&password=***], or for a Redis
 *        Cluster URL redis://[USER:***@]HOST:PORT[,HOST:PORT...] (nothing
 *        for an unset one). USER is percent-encoded.
 *        Parsing the output (with the real password) gives u back.
 * @param u borrowed, from a successful dd_redis_url_parse()
 * @param fp borrowed
 * @locality any thread
 */
void dd_redis_url_print(const dd_redis_url_t *u, FILE *fp);

#endif /* DD_REDIS_URL_H */
