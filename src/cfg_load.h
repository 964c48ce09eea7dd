/* SPDX-License-Identifier: MIT */
/* Reads a YAML file (libyaml's document API) into a new cfg generation. Every problem in
 * the file is collected before giving up, each as "file:line: what was expected". */
#ifndef MERIDIAN_CFG_LOAD_H
#define MERIDIAN_CFG_LOAD_H

#include <stddef.h>

#include "cfg.h"

/* Relative certificate, key and ticket key file paths are taken from the directory of
 * the config file (cfg_load_text leaves them as written). Both functions also build the
 * TLS contexts (tls_prepare), so certificates are read and checked here: what `meridian
 * -t` accepts will start. */

/* What a load may take from outside the file. Every field is optional. */
struct cfg_load_opts {
    /* The generation running now: its GeoIP database is shared when the file names the
     * same one and it has not changed (geo_same_file), rather than opened and walked again. */
    const struct cfg *prev;
    /* The addresses a backend name resolves to now (resolver_addrs' contract: up to `max`,
     * sorted, port 0; returns how many). NULL, or 0 for a name: it stands for no backend
     * in this generation, which is how `meridian -t` and the first load at start see
     * every name. */
    size_t (*resolve)(const void *ctx, const char *host, struct sockaddr_storage *out, size_t max);
    const void *resolve_ctx;
    /* The load only follows DNS: what `prev` read from files (certificates, CAs, the GeoIP
     * database) is shared rather than read again, so that only a reload (SIGHUP) picks up
     * files changed on disk. */
    bool reuse_files;
};

/* cfg_load_file and cfg_load_text with options (NULL: none). */
struct cfg *cfg_load_text_opts(const char *name, const char *text, size_t len,
                               const struct cfg_load_opts *opts, char **errors);
struct cfg *cfg_load_file_opts(const char *path, const struct cfg_load_opts *opts, char **errors);

/* A new generation from the text `prev` was loaded from (prev->source), whatever the file
 * holds now, with the names resolved as `opts` says: how a DNS change is applied. Relative
 * paths are taken from prev->path's directory as before. The same contract otherwise. */
struct cfg *cfg_load_again(const struct cfg *prev, const struct cfg_load_opts *opts, char **errors);

/* Load and validate `path`. Returns a generation with refs = 1, or NULL with `*errors`
 * set to a malloc'd text of one or more "file:line: message\n" lines (the caller frees
 * it). On success *errors is NULL. */
struct cfg *cfg_load_file(const char *path, char **errors);

/* The same for YAML text already in memory; `name` stands in for the file name in
 * messages. Used by the unit tests and the fuzzer. */
struct cfg *cfg_load_text(const char *name, const char *text, size_t len, char **errors);

#endif
