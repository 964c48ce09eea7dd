/* SPDX-License-Identifier: MIT */
/* The access log: one JSON object per line per request. Each worker formats into its own
 * buffer and writes it out in one write(2) when it fills or on a short timer, so logging
 * costs a syscall per many requests. All workers share one O_APPEND file descriptor whose
 * number never changes: reopening (SIGUSR1, logrotate) dup2()s a new file onto it. */
#ifndef MERIDIAN_ACCESS_LOG_H
#define MERIDIAN_ACCESS_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACCESS_LOG_BUF_SIZE 16384
#define ACCESS_LOG_FLUSH_MS 100

struct access_log_buf {
    size_t len;
    char data[ACCESS_LOG_BUF_SIZE];
};

struct access_log_entry {
    const char *client_ip;
    const char *request;   /* "METHOD TARGET" */
    const char *protocol;  /* "HTTP/1.1", "HTTP/2" */
    const char *tls;       /* "TLSv1.3", or NULL on a plain connection */
    int status;
    uint64_t bytes;        /* response body bytes sent */
    uint64_t duration_us;
    const char *region;    /* NULL if none was chosen */
    const char *country;   /* the client's ISO code, NULL if unknown */
    bool failover;         /* served by another region than the client's nearest */
    const char *backend;   /* NULL if none was reached */
    int64_t upstream_us;   /* time to the response head, -1 if none */
    const char *request_id;
};

/* Open (or reopen onto the same descriptor) the log at `path` ("-" = stdout). Main
 * thread only. Returns 0 or -1 with errno. */
int access_log_open(const char *path);
/* Stop logging to a file (the descriptor is kept while workers may still write). */
void access_log_close(void);

/* Append one line to `lb`. Returns true if the buffer should be flushed now. */
bool access_log_append(struct access_log_buf *lb, const struct access_log_entry *e);

/* Write the buffer out. */
void access_log_flush(struct access_log_buf *lb);

#endif
