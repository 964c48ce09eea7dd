/* SPDX-License-Identifier: MIT */
/* Version reporting: the versions we run with, read from the libraries at run time. */
#include "version.h"

#include "config.h"

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <maxminddb.h>
#include <nghttp2/nghttp2.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <yaml.h>

const char *
version_string(void)
{
    return PACKAGE_VERSION;
}

size_t
version_libraries(char *buf, size_t size)
{
    nghttp2_info *h2 = nghttp2_version(0);
    int n = snprintf(buf, size,
                     "libevent %s\nOpenSSL %s\nnghttp2 %s\nhiredis %d.%d.%d\n"
                     "libmaxminddb %s\nlibyaml %s\n",
                     event_get_version(), OpenSSL_version(OPENSSL_VERSION_STRING),
                     h2->version_str, HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH,
                     MMDB_lib_version(), yaml_get_version_string());
    return n < 0 ? 0 : (size_t)n;
}
