/* SPDX-License-Identifier: MIT */
/* What this build is and which library versions it runs with (meridian -V, /status). */
#ifndef MERIDIAN_VERSION_H
#define MERIDIAN_VERSION_H

#include <stddef.h>

const char *version_string(void);

/* One line per library: "libevent 2.1.12-stable", ... written into buf. */
size_t version_libraries(char *buf, size_t size);

#endif
