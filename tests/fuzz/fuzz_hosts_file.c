/* SPDX-License-Identifier: MIT */
/* libFuzzer driver for hosts_file. The whole input, in a heap copy of exactly its size, is
 * parsed as a hosts file; then the first words of the input are looked up, as written, in
 * upper case and with a dot added. Invariants: the table holds no more pairs than the input
 * has words, the skipped lines are no more than the lines; a lookup gives AF_INET or AF_INET6
 * addresses with port 0, each once, the same whatever the case or a trailing dot, and exactly
 * what a naive line-by-line reading of the text (written here, slow and obvious) finds for
 * that name, in the same order. */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "hosts_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_LOOKUPS 16 /* words of the input looked up */
#define MAX_OUT 64     /* addresses compared per lookup */

static bool
blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static char
lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Whether the word w[0, wlen) of the text names `key` (already without its trailing dot). */
static bool
word_is(const char *w, size_t wlen, const char *key, size_t klen)
{
    if (wlen > 0 && w[wlen - 1] == '.')
        wlen--;
    if (wlen == 0 || wlen != klen || wlen > HOSTS_FILE_NAME_MAX || memchr(w, '\0', wlen))
        return false;
    for (size_t i = 0; i < wlen; i++)
        if (lower(w[i]) != lower(key[i]))
            return false;
    return true;
}

/* The naive reading: every line, every word, in order. Returns how many distinct addresses
 * the name has and stores the first `max`. */
static size_t
naive_lookup(const char *text, size_t len, const char *name, struct sockaddr_storage *out,
             size_t max)
{
    size_t klen = strlen(name), n = 0, pos = 0;
    if (klen > 0 && name[klen - 1] == '.')
        klen--;
    if (klen == 0 || klen > HOSTS_FILE_NAME_MAX)
        return 0;
    while (pos < len) {
        size_t eol = pos;
        while (eol < len && text[eol] != '\n')
            eol++;
        size_t stop = pos;
        while (stop < eol && text[stop] != '#')
            stop++;
        size_t i = pos;
        while (i < stop && blank(text[i]))
            i++;
        size_t a = i;
        while (i < stop && !blank(text[i]))
            i++;
        char buf[INET6_ADDRSTRLEN];
        unsigned char addr[16];
        int family = 0;
        if (i > a && i - a < sizeof(buf) && !memchr(text + a, '\0', i - a) &&
            !memchr(text + a, '%', i - a)) {
            memcpy(buf, text + a, i - a);
            buf[i - a] = '\0';
            family = strchr(buf, ':') ? AF_INET6 : AF_INET;
            if (inet_pton(family, buf, addr) != 1)
                family = 0;
        }
        while (family != 0 && i < stop) {
            while (i < stop && blank(text[i]))
                i++;
            size_t w = i;
            while (i < stop && !blank(text[i]))
                i++;
            if (i == w || !word_is(text + w, i - w, name, klen))
                continue;
            struct sockaddr_storage ss;
            memset(&ss, 0, sizeof(ss));
            if (family == AF_INET) {
                ((struct sockaddr_in *)&ss)->sin_family = AF_INET;
                memcpy(&((struct sockaddr_in *)&ss)->sin_addr, addr, 4);
            } else {
                ((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
                memcpy(&((struct sockaddr_in6 *)&ss)->sin6_addr, addr, 16);
            }
            bool dup = false;
            for (size_t k = 0; k < n && k < max; k++)
                dup = dup || memcmp(&out[k], &ss, sizeof(ss)) == 0;
            /* Past `max` duplicates are not seen: callers keep the counts small. */
            if (dup)
                continue;
            if (n < max)
                out[n] = ss;
            n++;
        }
        pos = eol + 1;
    }
    return n;
}

static void
check_lookup(const struct hosts_file *hf, const char *text, size_t len, const char *name)
{
    static struct sockaddr_storage got[MAX_OUT], again[MAX_OUT], naive[MAX_OUT + 1];
    char variant[HOSTS_FILE_NAME_MAX + 3];
    size_t nlen = strlen(name);

    size_t n = hosts_file_lookup(hf, name, got, MAX_OUT);
    size_t shown = n < MAX_OUT ? n : MAX_OUT;
    for (size_t i = 0; i < shown; i++) {
        const struct sockaddr_storage *ss = &got[i];
        CHECK(ss->ss_family == AF_INET || ss->ss_family == AF_INET6);
        if (ss->ss_family == AF_INET)
            CHECK(((const struct sockaddr_in *)ss)->sin_port == 0);
        else
            CHECK(((const struct sockaddr_in6 *)ss)->sin6_port == 0);
        for (size_t k = 0; k < i; k++)
            CHECK(memcmp(&got[k], ss, sizeof(*ss)) != 0);
    }
    /* Counting alone gives the same number. */
    CHECK(hosts_file_lookup(hf, name, NULL, 0) == n);

    /* The second opinion, when it can see every address. */
    size_t nn = naive_lookup(text, len, name, naive, MAX_OUT + 1);
    if (nn <= MAX_OUT) {
        CHECK(nn == n);
        CHECK(n == 0 || memcmp(got, naive, n * sizeof(got[0])) == 0);
    }

    /* Case does not matter; a dot added to a name without one does not either. */
    if (nlen <= HOSTS_FILE_NAME_MAX + 1) {
        for (size_t i = 0; i <= nlen; i++)
            variant[i] = name[i] >= 'a' && name[i] <= 'z' ? (char)(name[i] - 'a' + 'A') : name[i];
        CHECK(hosts_file_lookup(hf, variant, again, MAX_OUT) == n);
        CHECK(shown == 0 || memcmp(got, again, shown * sizeof(got[0])) == 0);
        if (nlen > 0 && name[nlen - 1] != '.') {
            variant[nlen] = '.';
            variant[nlen + 1] = '\0';
            CHECK(hosts_file_lookup(hf, variant, again, MAX_OUT) == n);
            CHECK(shown == 0 || memcmp(got, again, shown * sizeof(got[0])) == 0);
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1);
    size_t invalid = 0, lines = 1, words = 0;
    CHECK(text != NULL);
    if (size)
        memcpy(text, data, size);

    struct hosts_file *hf = hosts_file_parse(text, size, &invalid);
    CHECK(hf != NULL);
    for (size_t i = 0; i < size; i++) {
        lines += text[i] == '\n';
        words += !blank(text[i]) && text[i] != '\n' &&
                 (i == 0 || blank(text[i - 1]) || text[i - 1] == '\n');
    }
    CHECK(invalid <= lines);
    CHECK(hosts_file_count(hf) <= words);

    /* The first words of the input (and the empty name) as names to look up. */
    check_lookup(hf, text, size, "");
    size_t pos = 0, done = 0;
    while (pos < size && done < MAX_LOOKUPS) {
        while (pos < size && (blank(text[pos]) || text[pos] == '\n' || text[pos] == '#'))
            pos++;
        size_t w = pos;
        while (pos < size && !blank(text[pos]) && text[pos] != '\n' && text[pos] != '#')
            pos++;
        if (pos == w || pos - w > HOSTS_FILE_NAME_MAX + 1 || memchr(text + w, '\0', pos - w))
            continue;
        char name[HOSTS_FILE_NAME_MAX + 2];
        memcpy(name, text + w, pos - w);
        name[pos - w] = '\0';
        check_lookup(hf, text, size, name);
        done++;
    }

    hosts_file_free(hf);
    free(text);
    return 0;
}
