/* SPDX-License-Identifier: MIT */
/* The hosts file parser and its table (see hosts_file.h). The table keeps one lower-cased
 * copy of the text and one small entry per (name, address) pair that points into it: no
 * allocation per name, two sorts when it is built, a binary search per lookup. */
#define _POSIX_C_SOURCE 200809L

#include "hosts_file.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One (name, address) pair of the file. */
struct hf_entry {
    const char *name; /* borrows: into the table's text; not NUL-terminated */
    uint32_t order;   /* the pair's rank in the file: lookups answer in this order */
    uint8_t len;      /* of name: 1..HOSTS_FILE_NAME_MAX */
    uint8_t family;   /* AF_INET or AF_INET6 */
    uint8_t addr[16]; /* 4 bytes used for AF_INET */
};

_Static_assert(HOSTS_FILE_NAME_MAX <= UINT8_MAX, "hf_entry.len holds a name's length");
_Static_assert(AF_INET6 <= UINT8_MAX && AF_INET <= UINT8_MAX, "hf_entry.family");

struct hosts_file {
    char *text;               /* owns: the parsed text, lower-cased */
    struct hf_entry *entries; /* owns: sorted by name, then by order */
    size_t n, cap;
};

enum line_kind {
    LINE_BLANK = 0,   /* nothing but blanks and a comment */
    LINE_OK = 1,      /* gave at least one pair */
    LINE_INVALID = 2, /* skipped */
    LINE_NOMEM = 3,
};

/* Separators within a line. '\r' among them makes CRLF files read as LF ones. */
static bool
is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* ASCII only: names are DNS names, and the locale must not change what matches. */
static char
lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static int
name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen;
}

static size_t
addr_len(uint8_t family)
{
    return family == AF_INET ? 4 : 16;
}

/* By name, then address (family first), then order: duplicates become neighbours with the
 * earliest one first. */
static int
cmp_name_addr(const void *pa, const void *pb)
{
    const struct hf_entry *a = pa, *b = pb;
    int c = name_cmp(a->name, a->len, b->name, b->len);
    if (c != 0)
        return c;
    if (a->family != b->family)
        return a->family < b->family ? -1 : 1;
    c = memcmp(a->addr, b->addr, addr_len(a->family));
    if (c != 0)
        return c;
    return a->order < b->order ? -1 : a->order > b->order;
}

/* By name, then file order: what a lookup walks. */
static int
cmp_name_order(const void *pa, const void *pb)
{
    const struct hf_entry *a = pa, *b = pb;
    int c = name_cmp(a->name, a->len, b->name, b->len);
    if (c != 0)
        return c;
    return a->order < b->order ? -1 : a->order > b->order;
}

static int
add_entry(struct hosts_file *hf, const struct hf_entry *e)
{
    if (hf->n == hf->cap) {
        size_t cap = hf->cap ? hf->cap * 2 : 64;
        struct hf_entry *grown;
        if (cap > SIZE_MAX / sizeof(*grown))
            return -1;
        grown = realloc(hf->entries, cap * sizeof(*grown));
        if (grown == NULL)
            return -1;
        hf->entries = grown;
        hf->cap = cap;
    }
    hf->entries[hf->n++] = *e;
    return 0;
}

/* The line text[from, to) (its comment already cut off). `order` counts the pairs. */
static enum line_kind
parse_line(struct hosts_file *hf, const char *text, size_t from, size_t to, uint32_t *order)
{
    char buf[INET6_ADDRSTRLEN];
    struct hf_entry e;
    size_t i = from, names = 0;

    while (i < to && is_blank(text[i]))
        i++;
    if (i == to)
        return LINE_BLANK;

    /* The address. A NUL inside it would make inet_pton read a shorter one. */
    size_t a = i;
    while (i < to && !is_blank(text[i]))
        i++;
    size_t alen = i - a;
    if (alen >= sizeof(buf) || memchr(text + a, '\0', alen) != NULL ||
        memchr(text + a, '%', alen) != NULL)
        return LINE_INVALID;
    memcpy(buf, text + a, alen);
    buf[alen] = '\0';
    memset(&e, 0, sizeof(e));
    e.family = memchr(buf, ':', alen) != NULL ? AF_INET6 : AF_INET;
    if (inet_pton(e.family, buf, e.addr) != 1)
        return LINE_INVALID;

    /* The names. */
    for (;;) {
        while (i < to && is_blank(text[i]))
            i++;
        if (i == to)
            break;
        size_t b = i;
        while (i < to && !is_blank(text[i]))
            i++;
        size_t nlen = i - b;
        if (text[i - 1] == '.')
            nlen--;
        if (nlen == 0 || nlen > HOSTS_FILE_NAME_MAX || memchr(text + b, '\0', nlen) != NULL)
            continue;
        e.name = hf->text + b;
        e.len = (uint8_t)nlen;
        e.order = (*order)++;
        if (add_entry(hf, &e) != 0)
            return LINE_NOMEM;
        names++;
    }
    return names > 0 ? LINE_OK : LINE_INVALID;
}

struct hosts_file *
hosts_file_parse(const char *text, size_t len, size_t *invalid)
{
    struct hosts_file *hf;
    size_t bad = 0, pos = 0;
    uint32_t order = 0;

    if (invalid != NULL)
        *invalid = 0;
    /* Every pair takes at least two bytes of text, so `order` cannot wrap below 4 GiB. */
    if ((uint64_t)len > UINT32_MAX)
        return NULL;
    hf = calloc(1, sizeof(*hf));
    if (hf == NULL)
        return NULL;
    hf->text = malloc(len > 0 ? len : 1);
    if (hf->text == NULL)
        goto fail;
    for (size_t i = 0; i < len; i++)
        hf->text[i] = lower(text[i]);

    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t eol = nl != NULL ? (size_t)(nl - text) : len;
        const char *hash = memchr(text + pos, '#', eol - pos);
        size_t stop = hash != NULL ? (size_t)(hash - text) : eol;
        switch (parse_line(hf, text, pos, stop, &order)) {
        case LINE_NOMEM:
            goto fail;
        case LINE_INVALID:
            bad++;
            break;
        default:
            break;
        }
        pos = eol + 1;
    }

    /* Each pair once (the first in file order), then grouped by name in file order. */
    if (hf->n > 1) {
        qsort(hf->entries, hf->n, sizeof(*hf->entries), cmp_name_addr);
        size_t kept = 1;
        for (size_t i = 1; i < hf->n; i++) {
            const struct hf_entry *prev = &hf->entries[kept - 1], *cur = &hf->entries[i];
            if (name_cmp(prev->name, prev->len, cur->name, cur->len) == 0 &&
                prev->family == cur->family &&
                memcmp(prev->addr, cur->addr, addr_len(cur->family)) == 0)
                continue;
            hf->entries[kept++] = *cur;
        }
        hf->n = kept;
        qsort(hf->entries, hf->n, sizeof(*hf->entries), cmp_name_order);
    }
    if (invalid != NULL)
        *invalid = bad;
    return hf;

fail:
    hosts_file_free(hf);
    return NULL;
}

void
hosts_file_free(struct hosts_file *hf)
{
    if (hf == NULL)
        return;
    free(hf->entries);
    free(hf->text);
    free(hf);
}

size_t
hosts_file_count(const struct hosts_file *hf)
{
    return hf != NULL ? hf->n : 0;
}

size_t
hosts_file_lookup(const struct hosts_file *hf, const char *name, struct sockaddr_storage *out,
                  size_t max)
{
    char key[HOSTS_FILE_NAME_MAX];
    size_t klen = strlen(name), lo = 0, hi, count = 0;

    if (hf == NULL)
        return 0;
    if (klen > 0 && name[klen - 1] == '.')
        klen--;
    if (klen == 0 || klen > HOSTS_FILE_NAME_MAX)
        return 0;
    for (size_t i = 0; i < klen; i++)
        key[i] = lower(name[i]);

    /* The first entry not below the key. */
    hi = hf->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct hf_entry *e = &hf->entries[mid];
        if (name_cmp(e->name, e->len, key, klen) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < hf->n; i++) {
        const struct hf_entry *e = &hf->entries[i];
        if (name_cmp(e->name, e->len, key, klen) != 0)
            break;
        if (count < max) {
            struct sockaddr_storage *ss = &out[count];
            memset(ss, 0, sizeof(*ss));
            if (e->family == AF_INET) {
                struct sockaddr_in *sin = (struct sockaddr_in *)ss;
                sin->sin_family = AF_INET;
                memcpy(&sin->sin_addr, e->addr, 4);
            } else {
                struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
                sin6->sin6_family = AF_INET6;
                memcpy(&sin6->sin6_addr, e->addr, 16);
            }
        }
        count++;
    }
    return count;
}

int
hosts_file_read(const char *path, char **text, size_t *len, struct stat *st, char *err,
                size_t errlen)
{
    char *buf = NULL;
    size_t cap, got = 0;
    int fd;

    *text = NULL;
    *len = 0;
    /* O_NONBLOCK: a FIFO put in its place must not hang the main thread in open(). */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto fail_fd;
    }
    if (!S_ISREG(st->st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        goto fail_fd;
    }
    if (st->st_size > (off_t)HOSTS_FILE_SIZE_MAX)
        goto too_large;

    /* The size may change while we read: read to the end, but never past the cap. */
    cap = (size_t)st->st_size + 1;
    if (cap < 4096)
        cap = 4096;
    buf = malloc(cap);
    if (buf == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto fail_fd;
    }
    for (;;) {
        if (got == cap - 1) {
            /* Room for one byte past the cap tells a file that grew too large. */
            size_t most = (size_t)HOSTS_FILE_SIZE_MAX + 2;
            if (cap >= most)
                goto too_large;
            size_t ncap = cap * 2 < most ? cap * 2 : most;
            char *grown = realloc(buf, ncap);
            if (grown == NULL) {
                snprintf(err, errlen, "%s: out of memory", path);
                goto fail_fd;
            }
            buf = grown;
            cap = ncap;
        }
        ssize_t n = read(fd, buf + got, cap - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            goto fail_fd;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    if (got > HOSTS_FILE_SIZE_MAX)
        goto too_large;
    close(fd);
    buf[got] = '\0';
    *text = buf;
    *len = got;
    return 0;

too_large:
    snprintf(err, errlen, "%s: larger than %u MiB", path, HOSTS_FILE_SIZE_MAX >> 20);
fail_fd:
    free(buf);
    close(fd);
    return -1;
}
