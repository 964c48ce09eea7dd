/* SPDX-License-Identifier: MIT */
/* placeholder: being written */
#include "proxy_proto.h"
int
proxy_proto_parse(const char *p, size_t len, struct proxy_proto_result *out)
{
    (void)p; (void)len; (void)out;
    return PROXY_PROTO_INVALID;
}
