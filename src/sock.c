/* SPDX-License-Identifier: MIT */
/* Socket helpers. Nothing here knows about HTTP or events. */
#include "sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define LISTEN_BACKLOG 4096 /* the kernel caps it at net.core.somaxconn */

int
sock_listen(const struct cfg_addr *addr, bool reuseport, char *err, size_t errlen)
{
    int one = 1;
    int fd = socket(addr->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)) {
        snprintf(err, errlen, "setsockopt: %s", strerror(errno));
        goto fail_close;
    }
    if (addr->sa.ss_family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) {
        snprintf(err, errlen, "setsockopt(IPV6_V6ONLY): %s", strerror(errno));
        goto fail_close;
    }
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)&addr->sa, addr->salen) < 0) {
        snprintf(err, errlen, "bind %s: %s", addr->text, strerror(errno));
        goto fail_close;
    }
    if (listen(fd, LISTEN_BACKLOG) < 0) {
        snprintf(err, errlen, "listen %s: %s", addr->text, strerror(errno));
        goto fail_close;
    }
    return fd;

fail_close:
    close(fd);
    return -1;
}

int
sock_connect(const struct cfg_addr *addr)
{
    int one = 1;
    int fd = socket(addr->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (const struct sockaddr *)&addr->sa, addr->salen) < 0 &&
        errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int
sock_connect_result(int fd)
{
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        return errno;
    return soerr;
}

/* IPv4 dotted quad without printf: this runs for every request (X-Forwarded-For). */
static size_t
ipv4_text(const unsigned char *a, char *buf, size_t size)
{
    if (size < 16)
        return 0;
    char *p = buf;
    for (int i = 0; i < 4; i++) {
        unsigned v = a[i];
        if (v >= 100)
            *p++ = (char)('0' + v / 100);
        if (v >= 10)
            *p++ = (char)('0' + v / 10 % 10);
        *p++ = (char)('0' + v % 10);
        *p++ = i < 3 ? '.' : '\0';
    }
    return (size_t)(p - buf) - 1;
}

size_t
sock_ip_text(const struct sockaddr *sa, char *buf, size_t size)
{
    if (sa->sa_family == AF_INET) {
        size_t n = ipv4_text((const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr,
                             buf, size);
        if (n)
            return n;
    }
    const void *src;
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        /* An IPv4 client on a dual-stack socket is shown as plain IPv4. */
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
            size_t n = ipv4_text(&s6->sin6_addr.s6_addr[12], buf, size);
            if (!n)
                goto unknown;
            return n;
        }
        src = &s6->sin6_addr;
    } else if (sa->sa_family == AF_INET) {
        src = &((const struct sockaddr_in *)sa)->sin_addr;
    } else {
        goto unknown;
    }
    if (!inet_ntop(sa->sa_family, src, buf, (socklen_t)size))
        goto unknown;
    return strlen(buf);

unknown:
    snprintf(buf, size, "unknown");
    return strlen(buf);
}
