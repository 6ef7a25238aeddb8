/* SPDX-License-Identifier: MIT */
/*
 * store_reply: where the store's Redis replies live. hiredis parses the
 * replies (its reader, unchanged); this module only gives the reader the
 * reply-object functions of its public redisReplyObjectFunctions seam, so
 * that each redisReply, its string and its element array are carved from
 * one arena per connection instead of a calloc() and a malloc() each, and
 * are given back all at once when the store begins its next call.
 *
 * Why hand-written: a worker reads about ten replies per request, and the
 * default objects' allocation and freeReplyObject() were the largest part
 * of the worker's own instructions that was not Redis I/O (callgrind,
 * tests/bench/callgrind-dispatch over a real Redis: calloc, malloc, free and
 * freeReplyObject together about a sixth of dd_dispatch_batch()). hiredis
 * 0.14 offers no allocator of its own; the seam it offers is this one.
 *
 * The objects are ordinary redisReply structs (type, integer, len, str,
 * elements, element), linked into their parent array exactly as hiredis's
 * default functions link them, so every reader of a reply is unchanged.
 * What changes is the lifetime: a reply stays valid until the next
 * dd_store_replies_reset() of its connection, which the store calls at the
 * start of each of its calls (store.c: dd_store_begin(), dd_store_ping());
 * dd_store_reply_done() marks where a reader is finished with one and frees
 * nothing. A reply must therefore never be kept past its store call, which
 * the store's readers already respected: they copy what they keep.
 *
 * DESIGN: one arena per dd_store_conn_t, used by the thread that owns the
 * store (as its contexts are); no locks. Chunks of CHUNK_SIZE bytes (a
 * larger object gets a chunk of its own); a reset keeps the first chunk
 * (an ordinary one: the first object ever is a reply struct) and frees the
 * others, so a rare large batch does not pin its memory.
 */
#include "store_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define CHUNK_SIZE ((size_t)32768) /* bytes, header included */
#define ALIGN      ((size_t)16)

struct dd_store_chunk {
    struct dd_store_chunk *next;
    size_t size; /* usable bytes in data[] */
    size_t used;
    _Alignas(16) unsigned char data[];
};

static dd_store_chunk_t *chunk_new(size_t at_least) {
    size_t size = CHUNK_SIZE - sizeof(dd_store_chunk_t);
    dd_store_chunk_t *ch;

    if (at_least > size)
        size = at_least;
    ch = dd_xmalloc(sizeof(*ch) + size);
    ch->next = NULL;
    ch->size = size;
    ch->used = 0;
    return ch;
}

/* n bytes, 16-aligned, valid until the next reset. Aborts on out of memory
 * (dd_xmalloc), as the rest of the process does. */
static void *arena_alloc(dd_store_replies_t *a, size_t n) {
    dd_store_chunk_t *ch = a->cur;
    void *p;

    n = (n + ALIGN - 1) & ~(ALIGN - 1);
    if (ch == NULL || ch->size - ch->used < n) {
        dd_store_chunk_t *fresh = chunk_new(n);
        if (ch == NULL) {
            a->first = fresh;
        } else {
            fresh->next = ch->next;
            ch->next = fresh;
        }
        a->cur = ch = fresh;
    }
    p = ch->data + ch->used;
    ch->used += n;
    return p;
}

/* A new reply of the task's type, linked into its parent array as hiredis's
 * own createReplyObject() callers do (read.h: task->idx is the slot). */
static redisReply *reply_new(const redisReadTask *task, int type) {
    dd_store_replies_t *a = task->privdata;
    redisReply *r = arena_alloc(a, sizeof(*r));

    memset(r, 0, sizeof(*r));
    r->type = type;
    if (task->parent != NULL) {
        redisReply *parent = task->parent->obj;
        parent->element[task->idx] = r;
    }
    return r;
}

static void *create_string(const redisReadTask *task, char *str, size_t len) {
    redisReply *r = reply_new(task, task->type);
    char *s = arena_alloc(task->privdata, len + 1);

    memcpy(s, str, len);
    s[len] = '\0';
    r->str = s;
    r->len = len;
    return r;
}

static void *create_array(const redisReadTask *task, int elements) {
    redisReply *r = reply_new(task, REDIS_REPLY_ARRAY);

    if (elements > 0) {
        size_t bytes = (size_t)elements * sizeof(redisReply *);
        r->element = arena_alloc(task->privdata, bytes);
        memset(r->element, 0, bytes);
    }
    r->elements = elements > 0 ? (size_t)elements : 0;
    return r;
}

static void *create_integer(const redisReadTask *task, long long value) {
    redisReply *r = reply_new(task, REDIS_REPLY_INTEGER);
    r->integer = value;
    return r;
}

static void *create_nil(const redisReadTask *task) {
    return reply_new(task, REDIS_REPLY_NIL);
}

/* hiredis frees a half-built reply this way on a protocol error, and a
 * pending one when the reader goes: the arena keeps it until its reset. */
static void free_object(void *reply) {
    (void)reply;
}

static redisReplyObjectFunctions arena_functions = {
    create_string, create_array, create_integer, create_nil, free_object,
};

void dd_store_replies_init(dd_store_replies_t *a) {
    a->first = a->cur = NULL;
}

void dd_store_replies_attach(dd_store_replies_t *a, redisReader *reader) {
    reader->fn = &arena_functions;
    reader->privdata = a;
}

void dd_store_replies_reset(dd_store_replies_t *a) {
    dd_store_chunk_t *ch;

    if (a->first == NULL)
        return;
    ch = a->first->next;
    while (ch != NULL) {
        dd_store_chunk_t *next = ch->next;
        dd_free(ch);
        ch = next;
    }
    a->first->next = NULL;
    a->first->used = 0;
    a->cur = a->first; /* ordinary: made for a reply struct */
}

size_t dd_store_replies_chunks(const dd_store_replies_t *a) {
    size_t n = 0;

    for (const dd_store_chunk_t *ch = a->first; ch != NULL; ch = ch->next)
        n++;
    return n;
}

void dd_store_replies_free(dd_store_replies_t *a) {
    dd_store_replies_reset(a);
    dd_free(a->first);
    a->first = a->cur = NULL;
}

void dd_store_reply_done(redisReply *r) {
    (void)r;
}
