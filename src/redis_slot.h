/* SPDX-License-Identifier: MIT */
/* The pure parts of speaking to a Redis Cluster ourselves (Debian's hiredis 0.14 has no cluster
 * support): which of the 16384 hash slots a key lives on, and what a MOVED or ASK redirection
 * says. No I/O and no allocation; the slot map, the connections and the following of
 * redirections belong to the Redis link. Cluster spec:
 * https://redis.io/docs/reference/cluster-spec/
 */
#ifndef MERIDIAN_REDIS_SLOT_H
#define MERIDIAN_REDIS_SLOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REDIS_SLOTS 16384

/* CRC16-XMODEM as the Redis Cluster spec gives it (poly 0x1021, init 0, no reflection; test
 * vector: "123456789" -> 0x31C3). */
uint16_t redis_crc16(const char *p, size_t len);

/* The slot of a key, honouring hash tags: the first '{' with a non-empty '}' after it, in which
 * case only what lies between them is hashed ("{user1000}.following" and "{user1000}.followers"
 * share a slot; "foo{}{bar}" hashes the whole key; "foo{{bar}}zap" hashes "{bar"). This is how
 * Meridian keeps every bucket's keys on one slot, and so one master. */
uint16_t redis_key_slot(const char *key, size_t len);

/* Parse a redirection error reply, as hiredis hands it over (no leading '-', no CRLF):
 *   "MOVED 3999 127.0.0.1:6381"   the slot now lives there: update the map, resend there
 *   "ASK 3999 127.0.0.1:6381"     this once, send ASKING and the command there
 * The endpoint's last colon separates the port, so IPv6 comes as Redis writes it
 * ("MOVED 3999 ::1:6381"); a bracketed "[::1]:6381" is accepted too and returned without its
 * brackets. An empty host (":6381", what Redis 7 sends with cluster-preferred-endpoint-type
 * unknown-endpoint) means the host of the node that answered, which the caller knows and this
 * does not: it is returned with *host_len 0. A "?" (Redis 7's word for an endpoint it does not
 * know) is returned as the host "?": the caller cannot connect to it and refreshes its map.
 *
 * Returns 0 and fills *ask, *slot, *host (a pointer into err, not NUL-terminated), *host_len and
 * *port; -1, touching nothing, if err is not such a reply or is malformed: another error, not
 * exactly one space between the parts, a slot that is not 0..16383 in decimal digits, a port not
 * 1..65535 in decimal digits, a host byte that is a space, a control character, not ASCII, or a
 * bracket other than a pair around the whole host, trailing junk. Reads err[0..len-1] only; err
 * needs no NUL. */
int redis_parse_redirect(const char *err, size_t len, bool *ask, uint16_t *slot, const char **host,
                         size_t *host_len, uint16_t *port);

#endif
