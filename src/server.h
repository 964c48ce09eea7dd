/* SPDX-License-Identifier: MIT */
/* The process: loads the config, opens the listening sockets, runs the workers, and on
 * the main thread handles signals (SIGHUP reload, SIGTERM/SIGINT graceful stop, SIGUSR1
 * log reopen) and the admin endpoint. It owns the published config generation. */
#ifndef MERIDIAN_SERVER_H
#define MERIDIAN_SERVER_H

#include <stdbool.h>
#include <stdint.h>

struct cfg;
struct resolver;
struct server;

/* Run until stopped. Returns the process exit code. */
int server_run(const char *cfg_path);

/* The published generation, with a reference for the caller (any thread). */
struct cfg *server_current_cfg(struct server *srv);
void server_release_cfg(struct cfg *cfg);
bool server_is_stopping(struct server *srv);
/* A second stop signal came: requests in flight are not waited for any longer. */
bool server_is_hurrying(struct server *srv);
/* limits.max_connections for the whole process (see worker_conn_admit). */
struct worker;
bool server_conn_has_room(struct server *srv);
void server_conn_added(struct server *srv);
/* Wakes the other workers waiting for a slot when the process was full. */
void server_conn_release(struct server *srv, struct worker *self);
unsigned server_conn_count(struct server *srv, unsigned *max);
/* The number of workers, fixed at start. */
unsigned server_worker_count(const struct server *srv);

/* For the admin endpoint: a JSON status document, malloc'd. */
char *server_status_json(struct server *srv);

/* What /metrics (metrics.c) reads of the process besides the published generation. */
struct server_view {
    const struct worker *workers; /* borrows: the array lives as long as the process */
    unsigned nworkers;
    unsigned conns, max_conns; /* client connections now, limits.max_connections */
    uint64_t reloads_ok, reloads_failed;
    bool last_reload_failed;
    double rl_admitted_per_s, rl_rejected_per_s; /* rate_limit, over the last 10 s */
    const struct resolver *resolver;             /* borrows: backend names (main thread only) */
    uint64_t dns_rebuilds, dns_rebuilds_failed;  /* generations made for DNS changes */
};

/* Fills *out. Main thread (the admin endpoint's), where reloads happen. */
void server_view(struct server *srv, struct server_view *out);

#endif
