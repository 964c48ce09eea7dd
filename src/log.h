/* SPDX-License-Identifier: MIT */
/* The error log: leveled lines on stderr, where journald or Docker pick them up. One
 * write(2) per line so lines from several threads never interleave. Not for the access
 * log (access_log.c), which is a different stream with a different audience. */
#ifndef MERIDIAN_LOG_H
#define MERIDIAN_LOG_H

#include <stdarg.h>
#include <stdbool.h>

#include "cfg.h"

/* Set the threshold; lines above it are dropped cheaply. Thread-safe. */
void log_set_level(enum cfg_log_level level);
bool log_enabled(enum cfg_log_level level);

/* Name this thread in every line it writes ("main", "w0", ...). */
void log_set_thread_name(const char *name);

void log_msg(enum cfg_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(CFG_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(CFG_LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(CFG_LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                     \
    do {                                                                                   \
        if (log_enabled(CFG_LOG_DEBUG))                                                    \
            log_msg(CFG_LOG_DEBUG, __VA_ARGS__);                                           \
    } while (0)

#endif
