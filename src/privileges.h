/* SPDX-License-Identifier: MIT */
/* Who the process runs as. Started as root (to bind ports below 1024 outside systemd),
 * Meridian becomes the configuration's `user` and `group` once its listeners are bound
 * and its files are open, before any worker thread exists, and it refuses to stay root
 * unless `run_as_root: true` says so. Started as anyone else (systemd's User=, with
 * CAP_NET_BIND_SERVICE) it stays who it is. This file decides and switches; it opens
 * nothing itself. The switch is for the life of the process: a reload reads its files
 * and binds its new ports as the user it switched to. */
#ifndef MERIDIAN_PRIVILEGES_H
#define MERIDIAN_PRIVILEGES_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct cfg;

enum privileges_action {
    PRIVILEGES_STAY = 0, /* not root: nothing to do (already the configured user, if any) */
    PRIVILEGES_DROP = 1, /* root: become uid/gid */
    PRIVILEGES_ROOT = 2, /* root, and run_as_root: true */
};

struct privileges_plan {
    enum privileges_action action;
    uid_t uid;     /* PRIVILEGES_DROP: the user's */
    gid_t gid;     /* PRIVILEGES_DROP: group's, or the user's login group */
    char user[64]; /* their names, for messages */
    char group[64];
};

/* Looks cfg's user and group up in the user and group databases (NSS), as `meridian -t`
 * checks them. Fills plan->uid, gid and the names (action untouched). Returns 0, or -1
 * with "file:line: what is wrong" in `err`: no such user or group, or a user that is
 * root itself. Returns 0 at once when the configuration names no user. */
int privileges_resolve(const struct cfg *cfg, struct privileges_plan *plan, char *err,
                       size_t errlen);

/* Decides what start-up does from who the process is now and what cfg says: root needs
 * `user` (then DROP) or `run_as_root: true` (then ROOT); anyone else with `user` must be
 * that user (and group) already (STAY). Returns 0, or -1 with why the process refuses to
 * run in `err` ("file:line: ..." or "file: ..."). Main thread, at start. */
int privileges_plan(const struct cfg *cfg, struct privileges_plan *plan, char *err, size_t errlen);

/* Carries out a DROP plan: the user's supplementary groups (initgroups), setgid, setuid,
 * then checks that root cannot be had back. Nothing for STAY and ROOT. Must run on the
 * main thread before any other thread exists, so that every thread has the same ids (glibc
 * would broadcast them to threads anyway). Returns 0, or -1 with the reason in `err`; the
 * process must not serve then. */
int privileges_apply(const struct privileges_plan *plan, char *err, size_t errlen);

/* Who this process is, for messages about a file it cannot read or a port it cannot bind:
 * "user nobody (uid 65534), group nogroup (gid 65534), having given up root at start".
 * Names are those seen at start (no user-database lookup after it), looked up on the spot
 * before privileges_plan ran (meridian -t, the unit tests). */
void privileges_describe_self(char *buf, size_t len);

/* What to add to a message about a file operation that failed with `err` (an errno):
 * "" unless it is EACCES, then "; meridian runs as <privileges_describe_self>". Returns
 * `buf` (or a static ""). */
const char *privileges_note(int err, char *buf, size_t len);

/* The same for a bind() that failed with `err`: for EACCES, that ports below 1024 take
 * root or CAP_NET_BIND_SERVICE, who the process is, and that a restart binds it. */
const char *privileges_bind_note(int err, char *buf, size_t len);

/* Whether this process gave up root at start (privileges_apply of a DROP plan). */
bool privileges_dropped(void);

#endif
