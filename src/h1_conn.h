/* SPDX-License-Identifier: MIT */
/* HTTP/1.1 on a client connection: reads request heads with h1_parse, hands each request
 * to a stream, feeds it the body, writes the response the stream relays, and decides
 * keep-alive, pipelining, errors and closing. conn.c calls in on socket events. */
#ifndef MERIDIAN_H1_CONN_H
#define MERIDIAN_H1_CONN_H

#include "conn-t.h"

void h1_conn_start(struct conn *c);
void h1_conn_on_readable(struct conn *c);
void h1_conn_on_timeout(struct conn *c);
/* Everything written: resume what waited for room. */
void h1_conn_on_drained(struct conn *c);

#endif
