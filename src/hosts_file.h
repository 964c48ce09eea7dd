/* SPDX-License-Identifier: MIT */
/* The hosts file (/etc/hosts format) as a table that answers "which addresses does this
 * name have", for resolver.c, which consults it before DNS as the C library's
 * "hosts: files dns" does. The parser is pure (no I/O, no libevent, no locale): it takes
 * the text and gives a table sorted by name once, so that a lookup in a 100k-line file is a
 * binary search. hosts_file_read() is the one function here that touches the file system.
 *
 * The format, as we read it:
 *   - a line ends at '\n'; '\r' and the other blanks are separators, so CRLF files work;
 *   - '#' starts a comment, wherever it stands (as glibc cuts the line there);
 *   - the first field is an IPv4 literal (dotted quad) or an IPv6 literal; a line whose
 *     IPv6 literal carries a %scope is skipped (a link-local address is no backend);
 *   - then one or more names, separated by spaces or tabs; one trailing dot is stripped
 *     ("api.test." is "api.test"); names match without regard to ASCII case;
 *   - a line with a bad address or without any usable name is skipped and counted;
 *   - a name longer than HOSTS_FILE_NAME_MAX or holding a NUL byte is skipped.
 * A name listed on several lines has the addresses of all of them, in file order, each
 * once. */
#ifndef MERIDIAN_HOSTS_FILE_H
#define MERIDIAN_HOSTS_FILE_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define HOSTS_FILE_NAME_MAX 253        /* a DNS name's longest text form, without the dot */
#define HOSTS_FILE_SIZE_MAX (4u << 20) /* hosts_file_read() refuses a larger file */

struct hosts_file;

/* Parses `len` bytes of `text` (need not be NUL-terminated; NUL bytes are ordinary bytes
 * that make a name unusable). Stores in `*invalid` (when not NULL) how many non-blank lines
 * were skipped. Returns the table, which the caller owns (hosts_file_free), or NULL when
 * memory runs out or `len` is 4 GiB or more. */
struct hosts_file *hosts_file_parse(const char *text, size_t len, size_t *invalid);

void hosts_file_free(struct hosts_file *hf);

/* The addresses of `name` (a NUL-terminated string, any case, one trailing dot allowed):
 * returns how many it has, 0 when it is not listed, and stores the first `max` of them in
 * file order into `out`, as AF_INET or AF_INET6 with port 0 and every other byte zero (so
 * that they compare with memcmp). Both families: the caller filters. */
size_t hosts_file_lookup(const struct hosts_file *hf, const char *name,
                         struct sockaddr_storage *out, size_t max);

/* How many (name, address) pairs the table holds, duplicates removed. */
size_t hosts_file_count(const struct hosts_file *hf);

/* Reads the file at `path` whole: a regular file of at most HOSTS_FILE_SIZE_MAX bytes.
 * Returns 0 with `*text` (malloc'd, NUL-terminated, the caller frees it), `*len` and `*st`
 * (fstat of what was read, to tell a later change), or -1 with a one-line reason in `err`
 * ("/etc/hosts: No such file or directory"). Blocking I/O: a local file, read rarely. */
int hosts_file_read(const char *path, char **text, size_t *len, struct stat *st, char *err,
                    size_t errlen);

#endif
