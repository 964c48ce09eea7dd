/* SPDX-License-Identifier: MIT */
/* Basic TCP socket stuff made a bit less boring: non-blocking listening and connecting
 * sockets with the options a proxy wants, and addresses as text. */
#ifndef MERIDIAN_SOCK_H
#define MERIDIAN_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "cfg.h"

#define SOCK_ADDR_TEXT_MAX 48 /* an IPv6 literal and NUL */

/* A non-blocking listening socket with SO_REUSEADDR, TCP_NODELAY (inherited by accepted
 * sockets) and, with `reuseport`, SO_REUSEPORT so that each worker can own one for the
 * same address. Returns the fd, or -1 with `err` filled. */
int sock_listen(const struct cfg_addr *addr, bool reuseport, char *err, size_t errlen);

/* Start a non-blocking connect with TCP_NODELAY. Returns the fd (connected or in
 * progress), or -errno if the socket could not even be created or refused at once. */
int sock_connect(const struct cfg_addr *addr);

/* After a connect in progress became writable: 0 if it succeeded, else the errno. */
int sock_connect_result(int fd);

/* The IP of a peer as text (no port), e.g. for X-Forwarded-For. Returns its length. */
size_t sock_ip_text(const struct sockaddr *sa, char *buf, size_t size);

#endif
