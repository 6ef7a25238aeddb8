/* SPDX-License-Identifier: MIT */
/* job: lifecycle of one input message in flight; see job.h. */
#include "job.h"

#include <string.h>

#include "util.h"

static char *copy_bytes(const void *p, size_t len) {
    char *c;
    if (p == NULL)
        return NULL;
    c = dd_xmalloc(len + 1);
    memcpy(c, p, len);
    c[len] = '\0'; /* convenient for logs; lengths stay authoritative */
    return c;
}

dd_job_t *dd_job_new(rd_kafka_message_t *rkm, uint32_t epoch) {
    dd_job_t *job = dd_xcalloc(1, sizeof(*job));
    rd_kafka_timestamp_type_t tstype;

    job->partition = rkm->partition;
    job->offset = rkm->offset;
    job->timestamp_ms = rd_kafka_message_timestamp(rkm, &tstype);
    job->epoch = epoch;
    job->key = copy_bytes(rkm->key, rkm->key_len);
    job->key_len = rkm->key_len;
    job->value = copy_bytes(rkm->payload, rkm->len);
    job->value_len = rkm->len;
    if (rd_kafka_message_detach_headers(rkm, &job->headers) !=
        RD_KAFKA_RESP_ERR_NO_ERROR)
        job->headers = NULL;
    job->consumed_us = dd_now_us();
    return job;
}

void dd_job_destroy(dd_job_t *job) {
    if (job == NULL)
        return;
    dd_free(job->key);
    dd_free(job->value);
    if (job->headers != NULL)
        rd_kafka_headers_destroy(job->headers);
    dd_free(job->out);
#ifdef DD_BUILD_noopt
    memset(job, 0xff, sizeof(*job));
#endif
    dd_free(job);
}
