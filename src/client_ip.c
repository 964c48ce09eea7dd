/* SPDX-License-Identifier: MIT */
/* placeholder: being written */
#include "client_ip.h"
#include <netinet/in.h>
#include <string.h>
int
client_ip_parse_net(const char *text, struct client_ip_net *out)
{
    (void)text; (void)out;
    return -1;
}
bool
client_ip_is_trusted(const struct client_ip_net *nets, size_t n, const struct sockaddr *sa)
{
    (void)nets; (void)n; (void)sa;
    return false;
}
int
client_ip_parse_addr(const char *p, size_t len, struct sockaddr_storage *out)
{
    (void)p; (void)len; (void)out;
    return -1;
}
int
client_ip_resolve(const struct client_ip_cfg *cfg, const struct sockaddr *peer,
                  const struct h1_header *headers, size_t n, struct sockaddr_storage *out)
{
    (void)cfg; (void)headers; (void)n;
    memset(out, 0, sizeof(*out));
    memcpy(out, peer, peer->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
    return -1;
}
bool
client_ip_cdn_location(const struct h1_header *headers, size_t n, struct geo_info *out)
{
    (void)headers; (void)n; (void)out;
    return false;
}
