/* SPDX-License-Identifier: MIT */
/* hosts_file: the parser against a table of small files (comments, aliases, case, IPv6 and
 * scoped addresses, invalid lines, duplicates, a name on several lines, trailing dots, CRLF,
 * NUL bytes), a 100k-line file and very long lines, and hosts_file_read's limits. Every text
 * is parsed from a heap copy of exactly its length, so that ASan sees any read past it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hosts_file.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_ADDRS 8

/* A name and the addresses it must have, in file order (NULL-terminated; none: unlisted). */
struct lookup {
    const char *name;
    const char *addrs[MAX_ADDRS];
};

struct parse_case {
    const char *what;
    const char *text;
    size_t len; /* 0: strlen(text) */
    size_t invalid;
    size_t pairs; /* hosts_file_count() */
    struct lookup lookups[6];
};

static const struct parse_case parse_cases[] = {
    {"comments",
     "# the whole line\n"
     "127.0.0.1 localhost # after the names\n"
     "   # indented\n"
     "10.0.0.1 cut#here after.comment\n"
     "#10.0.0.2 commented.out\n",
     0,
     0,
     2,
     {{"localhost", {"127.0.0.1"}},
      {"cut", {"10.0.0.1"}},
      {"after.comment", {NULL}},
      {"commented.out", {NULL}},
      {"#", {NULL}}}},
    {"aliases",
     "10.0.0.1 api api.test api-alias.test\n",
     0,
     0,
     3,
     {{"api", {"10.0.0.1"}}, {"api.test", {"10.0.0.1"}}, {"api-alias.test", {"10.0.0.1"}}}},
    {"case",
     "10.0.0.2 API.Example.TEST\n10.0.0.3 lower.test\n",
     0,
     0,
     2,
     {{"api.example.test", {"10.0.0.2"}},
      {"API.EXAMPLE.test", {"10.0.0.2"}},
      {"LOWER.TEST", {"10.0.0.3"}}}},
    {"IPv6, scoped and mapped",
     "::1 localhost6\n"
     "2001:db8::1 v6.test\n"
     "fe80::1%eth0 scoped.test\n"
     "2001:DB8::2 v6.test\n"
     "::ffff:10.1.2.3 mapped.test\n",
     0,
     1,
     4,
     {{"localhost6", {"::1"}},
      {"v6.test", {"2001:db8::1", "2001:db8::2"}},
      {"scoped.test", {NULL}},
      {"mapped.test", {"::ffff:10.1.2.3"}}}},
    {"invalid lines",
     "999.1.1.1 bad1\n"
     "10.0.0 bad2\n"
     "not-an-address bad3\n"
     "10.0.0.1\n"
     "1.2.3.4.5 bad4\n"
     "10.0.0.3 good.test\n"
     ":: \n"
     "0x7f.0.0.1 bad5\n"
     "127.1 bad6\n"
     "2001:db8::1::2 bad7\n"
     "10.0.0.4 . .\n",
     0,
     10,
     1,
     {{"good.test", {"10.0.0.3"}},
      {"bad1", {NULL}},
      {"bad5", {NULL}},
      {"bad6", {NULL}},
      {"bad7", {NULL}},
      {".", {NULL}}}},
    {"duplicate addresses",
     "10.0.0.1 dup.test\n"
     "10.0.0.1 dup.test dup.test\n"
     "10.0.0.2 dup.test\n"
     "10.0.0.1 DUP.test.\n"
     "2001:db8:0:0::1 dup.test\n"
     "2001:db8::1 dup.test\n",
     0,
     0,
     3,
     {{"dup.test", {"10.0.0.1", "10.0.0.2", "2001:db8::1"}}}},
    {"a name on several lines keeps file order",
     "10.0.0.9 multi.test\n"
     "::2 multi.test other.test\n"
     "10.0.0.1 multi.test\n"
     "10.0.0.5 other.test\n",
     0,
     0,
     5,
     {{"multi.test", {"10.0.0.9", "::2", "10.0.0.1"}}, {"other.test", {"::2", "10.0.0.5"}}}},
    {"missing names",
     "10.0.0.1 present.test\n",
     0,
     0,
     1,
     {{"absent.test", {NULL}},
      {"", {NULL}},
      {".", {NULL}},
      {"present", {NULL}},
      {"present.test.x", {NULL}},
      {"resent.test", {NULL}}}},
    {"trailing dots",
     "10.0.0.4 dotted.test.\n10.0.0.5 twodots.test..\n10.0.0.6 plain.test\n",
     0,
     0,
     3,
     {{"dotted.test", {"10.0.0.4"}},
      {"dotted.test.", {"10.0.0.4"}},
      {"twodots.test", {NULL}},
      {"twodots.test.", {NULL}},
      {"twodots.test..", {"10.0.0.5"}},
      {"plain.test.", {"10.0.0.6"}}}},
    {"CRLF line ends",
     "127.0.0.1 crlf.test\r\n10.0.0.6 crlf2.test alias.test\r\n# comment\r\n\r\n\r\n",
     0,
     0,
     3,
     {{"crlf.test", {"127.0.0.1"}}, {"alias.test", {"10.0.0.6"}}, {"crlf.test\r", {NULL}}}},
    {"blanks and no final newline",
     "\t10.0.0.8\tt1\t\tt2 \v t3\f\n\n   \n10.0.0.9 last.test",
     0,
     0,
     4,
     {{"t1", {"10.0.0.8"}},
      {"t2", {"10.0.0.8"}},
      {"t3", {"10.0.0.8"}},
      {"last.test", {"10.0.0.9"}}}},
    {"NUL bytes",
     "10.0.0.7 nul\0name ok.test\n10.0.0.8\0 x.test\n\0\n",
     sizeof("10.0.0.7 nul\0name ok.test\n10.0.0.8\0 x.test\n\0\n") - 1,
     2,
     1,
     {{"ok.test", {"10.0.0.7"}}, {"nul", {NULL}}, {"x.test", {NULL}}}},
    {"empty text", "", 0, 0, 0, {{"localhost", {NULL}}}},
};

/* An address as hosts_file_lookup must give it: port 0, every other byte zero. */
static void
make_addr(const char *text, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (strchr(text, ':') != NULL) {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
        s->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, text, &s->sin6_addr), 1);
    } else {
        struct sockaddr_in *s = (struct sockaddr_in *)ss;
        s->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, text, &s->sin_addr), 1);
    }
}

static void
addr_text(const struct sockaddr_storage *ss, char *buf, size_t len)
{
    const void *a = ss->ss_family == AF_INET
                        ? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
                        : (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
    if (inet_ntop(ss->ss_family, a, buf, (socklen_t)len) == NULL)
        snprintf(buf, len, "family %d", ss->ss_family);
}

static struct hosts_file *
parse_copy(const char *text, size_t len, size_t *invalid)
{
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, text, len);
    struct hosts_file *hf = hosts_file_parse(copy, len, invalid);
    free(copy); /* the table keeps nothing of the caller's text */
    assert_non_null(hf);
    return hf;
}

static void
check_lookup(const char *what, const struct hosts_file *hf, const struct lookup *l)
{
    struct sockaddr_storage got[MAX_ADDRS], want;
    size_t nwant = 0;
    char text[INET6_ADDRSTRLEN];

    while (nwant < MAX_ADDRS && l->addrs[nwant] != NULL)
        nwant++;
    size_t n = hosts_file_lookup(hf, l->name, got, MAX_ADDRS);
    if (n != nwant)
        fail_msg("%s: \"%s\" has %zu addresses, want %zu", what, l->name, n, nwant);
    for (size_t i = 0; i < n; i++) {
        make_addr(l->addrs[i], &want);
        if (memcmp(&got[i], &want, sizeof(want)) != 0) {
            addr_text(&got[i], text, sizeof(text));
            fail_msg("%s: \"%s\" address %zu is %s, want %s", what, l->name, i, text, l->addrs[i]);
        }
    }
}

static void
test_parse_table(void **state)
{
    (void)state;
    for (size_t c = 0; c < N_ELEMS(parse_cases); c++) {
        const struct parse_case *tc = &parse_cases[c];
        size_t len = tc->len ? tc->len : strlen(tc->text), invalid = 99;
        struct hosts_file *hf = parse_copy(tc->text, len, &invalid);
        if (invalid != tc->invalid)
            fail_msg("%s: %zu invalid lines, want %zu", tc->what, invalid, tc->invalid);
        if (hosts_file_count(hf) != tc->pairs)
            fail_msg("%s: %zu pairs, want %zu", tc->what, hosts_file_count(hf), tc->pairs);
        for (size_t i = 0; i < N_ELEMS(tc->lookups) && tc->lookups[i].name != NULL; i++)
            check_lookup(tc->what, hf, &tc->lookups[i]);
        hosts_file_free(hf);
    }
}

/* The count is the name's, whatever `max` lets through; NULL and 0 only count. */
static void
test_lookup_max(void **state)
{
    static const char text[] = "10.0.0.1 m.test\n10.0.0.2 m.test\n10.0.0.3 m.test\n";
    struct sockaddr_storage out[2], want;
    (void)state;

    struct hosts_file *hf = parse_copy(text, sizeof(text) - 1, NULL);
    assert_int_equal(hosts_file_lookup(hf, "m.test", NULL, 0), 3);
    memset(out, 0xa5, sizeof(out));
    assert_int_equal(hosts_file_lookup(hf, "m.test", out, 1), 3);
    make_addr("10.0.0.1", &want);
    assert_memory_equal(&out[0], &want, sizeof(want));
    /* The slot past `max` is untouched. */
    for (size_t i = 0; i < sizeof(out[1]); i++)
        assert_int_equal(((const unsigned char *)&out[1])[i], 0xa5);
    hosts_file_free(hf);
    assert_int_equal(hosts_file_lookup(NULL, "m.test", out, 2), 0);
    hosts_file_free(NULL);
}

/* A name just within the limit, one just past it, and a name too long for the lookup. */
static void
test_long_names(void **state)
{
    char name[HOSTS_FILE_NAME_MAX + 3], line[3 * HOSTS_FILE_NAME_MAX + 64];
    (void)state;

    memset(name, 'a', HOSTS_FILE_NAME_MAX);
    name[HOSTS_FILE_NAME_MAX] = '\0';
    /* 253 bytes, then 254 bytes (skipped: the line has no other name), then 253 + a dot. */
    snprintf(line, sizeof(line), "10.0.0.1 %s\n10.0.0.2 %sb\n10.0.0.3 %s.\n", name, name, name);
    size_t invalid;
    struct hosts_file *hf = parse_copy(line, strlen(line), &invalid);
    assert_int_equal(invalid, 1);
    assert_int_equal(hosts_file_count(hf), 2);
    assert_int_equal(hosts_file_lookup(hf, name, NULL, 0), 2);
    name[HOSTS_FILE_NAME_MAX] = '.';
    name[HOSTS_FILE_NAME_MAX + 1] = '\0';
    assert_int_equal(hosts_file_lookup(hf, name, NULL, 0), 2);
    name[HOSTS_FILE_NAME_MAX] = 'b';
    assert_int_equal(hosts_file_lookup(hf, name, NULL, 0), 0);
    hosts_file_free(hf);
}

/* Very long lines: 20000 aliases on one line, a megabyte of blanks before a name, and a
 * megabyte-long comment. */
static void
test_long_lines(void **state)
{
    size_t cap = 4u << 20, len = 0;
    char *text = malloc(cap), name[32];
    (void)state;
    assert_non_null(text);

    len += (size_t)snprintf(text + len, cap - len, "10.1.0.1");
    for (int i = 0; i < 20000; i++)
        len += (size_t)snprintf(text + len, cap - len, " alias%d.test", i);
    text[len++] = '\n';
    len += (size_t)snprintf(text + len, cap - len, "10.1.0.2");
    memset(text + len, ' ', 1u << 20);
    len += 1u << 20;
    len += (size_t)snprintf(text + len, cap - len, "far.test\n# ");
    memset(text + len, 'x', 1u << 20);
    len += 1u << 20;
    len += (size_t)snprintf(text + len, cap - len, "\n10.1.0.3 after.test");

    size_t invalid;
    struct hosts_file *hf = parse_copy(text, len, &invalid);
    assert_int_equal(invalid, 0);
    assert_int_equal(hosts_file_count(hf), 20002);
    for (int i = 0; i < 20000; i += 997) {
        snprintf(name, sizeof(name), "ALIAS%d.test", i);
        assert_int_equal(hosts_file_lookup(hf, name, NULL, 0), 1);
    }
    assert_int_equal(hosts_file_lookup(hf, "far.test", NULL, 0), 1);
    assert_int_equal(hosts_file_lookup(hf, "after.test", NULL, 0), 1);
    assert_int_equal(hosts_file_lookup(hf, "alias20000.test", NULL, 0), 0);
    hosts_file_free(hf);
    free(text);
}

/* 100k lines, a few names on several of them: every name answers, in file order. */
static void
test_large_file(void **state)
{
    const int lines = 100000;
    size_t cap = (size_t)lines * 48, len = 0;
    char *text = malloc(cap), name[32];
    struct sockaddr_storage out[4], want;
    (void)state;
    assert_non_null(text);

    for (int i = 0; i < lines; i++)
        len += (size_t)snprintf(text + len, cap - len, "10.%d.%d.%d host%d.test h%d\n",
                                (i >> 16) & 255, (i >> 8) & 255, i & 255, i, i % 1000);
    size_t invalid;
    struct hosts_file *hf = parse_copy(text, len, &invalid);
    assert_int_equal(invalid, 0);
    assert_int_equal(hosts_file_count(hf), 2 * (size_t)lines);
    for (int i = 0; i < lines; i += 7919) {
        snprintf(name, sizeof(name), "host%d.test", i);
        assert_int_equal(hosts_file_lookup(hf, name, out, 1), 1);
        snprintf(name, sizeof(name), "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        make_addr(name, &want);
        assert_memory_equal(&out[0], &want, sizeof(want));
    }
    /* "h7" is on lines 7, 1007, 2007, ...: 100 of them, the first ones first. */
    assert_int_equal(hosts_file_lookup(hf, "h7", out, 4), 100);
    make_addr("10.0.0.7", &want);
    assert_memory_equal(&out[0], &want, sizeof(want));
    make_addr("10.0.3.239", &want); /* line 1007 */
    assert_memory_equal(&out[1], &want, sizeof(want));
    hosts_file_free(hf);
    free(text);
}

static char *
write_temp(const char *content, size_t len)
{
    char *path = strdup("/tmp/test_hosts_file.XXXXXX");
    assert_non_null(path);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, content + done, len - done);
        assert_true(n > 0);
        done += (size_t)n;
    }
    close(fd);
    return path;
}

static void
test_read(void **state)
{
    char err[256], *text;
    size_t len;
    struct stat st;
    (void)state;

    static const char content[] = "10.0.0.1 read.test\n";
    char *path = write_temp(content, sizeof(content) - 1);
    assert_int_equal(hosts_file_read(path, &text, &len, &st, err, sizeof(err)), 0);
    assert_int_equal(len, sizeof(content) - 1);
    assert_string_equal(text, content);
    assert_int_equal(st.st_size, (off_t)len);
    free(text);
    unlink(path);

    /* Gone. */
    assert_int_equal(hosts_file_read(path, &text, &len, &st, err, sizeof(err)), -1);
    assert_null(text);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "No such file"));
    free(path);

    /* Not a file. */
    assert_int_equal(hosts_file_read("/tmp", &text, &len, &st, err, sizeof(err)), -1);
    assert_string_equal(err, "/tmp: not a regular file");

    /* Exactly the cap is read; a byte more is refused. */
    char *big = malloc(HOSTS_FILE_SIZE_MAX + 1);
    assert_non_null(big);
    memset(big, '#', HOSTS_FILE_SIZE_MAX + 1);
    path = write_temp(big, HOSTS_FILE_SIZE_MAX);
    assert_int_equal(hosts_file_read(path, &text, &len, &st, err, sizeof(err)), 0);
    assert_int_equal(len, HOSTS_FILE_SIZE_MAX);
    free(text);
    unlink(path);
    free(path);
    path = write_temp(big, HOSTS_FILE_SIZE_MAX + 1);
    assert_int_equal(hosts_file_read(path, &text, &len, &st, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "larger than 4 MiB"));
    unlink(path);
    free(path);
    free(big);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table), cmocka_unit_test(test_lookup_max),
        cmocka_unit_test(test_long_names),  cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_large_file),  cmocka_unit_test(test_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
