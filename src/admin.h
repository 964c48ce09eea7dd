/* SPDX-License-Identifier: MIT */
/* The admin endpoint on the main thread: GET /healthz (200 while serving, 503 while
 * stopping), GET /status (JSON), GET /route?ip=ADDR (JSON) and GET /metrics (Prometheus
 * text, metrics.h). Tiny, one request per connection, never on a worker's loop, so it
 * answers even when the workers are saturated. */
#ifndef MERIDIAN_ADMIN_H
#define MERIDIAN_ADMIN_H

struct admin;
struct cfg;
struct event_base;
struct server;

/* Make *admin match next's admin address (prev may be NULL at start): keep it when the
 * address is unchanged, open the new one before closing the old, close it if gone.
 * Returns 0, or -1 (logged) with *admin unchanged. */
int admin_reconfigure(struct admin **admin, struct event_base *base, struct server *srv,
                      const struct cfg *prev, const struct cfg *next);
void admin_free(struct admin *admin);

#endif
