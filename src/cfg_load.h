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

/* Load and validate `path`. Returns a generation with refs = 1, or NULL with `*errors`
 * set to a malloc'd text of one or more "file:line: message\n" lines (the caller frees
 * it). On success *errors is NULL. */
struct cfg *cfg_load_file(const char *path, char **errors);

/* The same for YAML text already in memory; `name` stands in for the file name in
 * messages. Used by the unit tests and the fuzzer. */
struct cfg *cfg_load_text(const char *name, const char *text, size_t len, char **errors);

#endif
