/* SPDX-License-Identifier: MIT */
/* Time as the proxy needs it: a monotonic clock for durations and deadlines, and wall
 * time for log stamps. */
#ifndef MERIDIAN_CLOCK_H
#define MERIDIAN_CLOCK_H

#include <stddef.h>
#include <stdint.h>

uint64_t clock_mono_us(void);
uint64_t clock_mono_ms(void);

/* "2026-11-26T19:30:01.123Z" into buf (at least 25 bytes); returns the length. */
size_t clock_format_iso8601_ms(char *buf, size_t size);

#endif
