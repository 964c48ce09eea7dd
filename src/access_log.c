/* SPDX-License-Identifier: MIT */
/* Access log formatting and output. */
#include "access_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

static atomic_int log_fd = -1;
static char log_path[4096];

int
access_log_open(const char *path)
{
    int cur = atomic_load(&log_fd);
    int fd;
    if (strcmp(path, "-") == 0) {
        fd = dup(STDOUT_FILENO);
    } else {
        /* Opened before root is given up, in a directory its user may write: a symlink
         * planted there must not make root append to another file (nginx's
         * CVE-2016-1247). The log itself may not be a symlink. */
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    }
    if (fd < 0)
        return -1;
    snprintf(log_path, sizeof(log_path), "%s", path);
    if (cur < 0) {
        atomic_store(&log_fd, fd);
        return 0;
    }
    /* Workers keep writing to `cur`; dup2 swaps the file under it atomically. */
    if (dup2(fd, cur) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    close(fd);
    return 0;
}

void
access_log_close(void)
{
    /* The descriptor stays valid (workers may hold lines for it); lines are dropped by
     * the workers once their config says the log is off. */
    log_path[0] = '\0';
}

/* Append s as a JSON string body, escaping what JSON requires. */
static size_t
json_escape(char *dst, size_t room, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (n + 8 >= room)
            break;
        if (c == '"' || c == '\\') {
            dst[n++] = '\\';
            dst[n++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            dst[n++] = '\\';
            dst[n++] = 'u';
            dst[n++] = '0';
            dst[n++] = '0';
            dst[n++] = hex[c >> 4];
            dst[n++] = hex[c & 0xf];
        } else {
            dst[n++] = (char)c;
        }
    }
    return n;
}

struct line {
    char *p;
    char *end;
};

static void
line_put(struct line *l, const char *s, size_t n)
{
    if ((size_t)(l->end - l->p) < n)
        n = (size_t)(l->end - l->p);
    memcpy(l->p, s, n);
    l->p += n;
}

#define LINE_LIT(l, lit) line_put((l), (lit), sizeof(lit) - 1)

static void
line_str(struct line *l, const char *key, const char *val)
{
    line_put(l, key, strlen(key));
    if (!val) {
        LINE_LIT(l, "null,");
        return;
    }
    LINE_LIT(l, "\"");
    l->p += json_escape(l->p, (size_t)(l->end - l->p), val);
    LINE_LIT(l, "\",");
}

static void
line_fmt(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
line_fmt(struct line *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(l->p, (size_t)(l->end - l->p), fmt, ap);
    va_end(ap);
    if (n > 0)
        l->p += (size_t)n < (size_t)(l->end - l->p) ? (size_t)n : (size_t)(l->end - l->p) - 1;
}

bool
access_log_append(struct access_log_buf *lb, const struct access_log_entry *e)
{
    char buf[8192];
    /* Room kept back so the closing of the object always fits. */
    struct line l = {buf, buf + sizeof(buf) - 8};
    char ts[32];
    clock_format_iso8601_ms(ts, sizeof(ts));

    /* The request: "METHOD TARGET". */
    const char *req = e->request ? e->request : "";
    const char *sp = strchr(req, ' ');
    char method[32];
    size_t mlen = sp ? (size_t)(sp - req) : strlen(req);
    if (mlen >= sizeof(method))
        mlen = sizeof(method) - 1;
    memcpy(method, req, mlen);
    method[mlen] = '\0';

    line_str(&l, "{\"time\":", ts);
    line_str(&l, "\"client_ip\":", e->client_ip);
    line_str(&l, "\"method\":", method);
    line_str(&l, "\"path\":", sp ? sp + 1 : "");
    line_str(&l, "\"protocol\":", e->protocol);
    line_str(&l, "\"tls\":", e->tls);
    line_fmt(&l, "\"status\":%d,\"bytes\":%llu,\"duration_ms\":%.3f,", e->status,
             (unsigned long long)e->bytes, (double)e->duration_us / 1000.0);
    line_str(&l, "\"region\":", e->region);
    line_str(&l, "\"country\":", e->country);
    if (e->failover)
        LINE_LIT(&l, "\"failover\":true,");
    else
        LINE_LIT(&l, "\"failover\":false,");
    line_str(&l, "\"backend\":", e->backend);
    if (e->upstream_us >= 0)
        line_fmt(&l, "\"upstream_ms\":%.3f,", (double)e->upstream_us / 1000.0);
    else
        LINE_LIT(&l, "\"upstream_ms\":null,");
    line_str(&l, "\"request_id\":", e->request_id);
    l.p--; /* the last comma */
    l.end += 8;
    LINE_LIT(&l, "}\n");
    size_t n = (size_t)(l.p - buf);

    if (lb->len + n > sizeof(lb->data))
        access_log_flush(lb);
    memcpy(lb->data + lb->len, buf, n);
    lb->len += n;
    return lb->len > sizeof(lb->data) * 3 / 4;
}

void
access_log_flush(struct access_log_buf *lb)
{
    int fd = atomic_load_explicit(&log_fd, memory_order_relaxed);
    size_t off = 0;
    while (fd >= 0 && off < lb->len) {
        ssize_t w = write(fd, lb->data + off, lb->len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            log_warn("access log write failed: %s", strerror(errno));
            break;
        }
        off += (size_t)w;
    }
    lb->len = 0;
}
