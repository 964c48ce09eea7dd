/* SPDX-License-Identifier: MIT */
/* placeholder: being written */
#include "geo.h"
#include <stdio.h>
#include <string.h>
void
geo_close(struct geo_db *db)
{
    (void)db;
}
struct geo_db *
geo_open(const char *path, char *err, size_t errlen)
{
    (void)path;
    snprintf(err, errlen, "GeoIP support is being written");
    return NULL;
}
const char *
geo_describe(const struct geo_db *db)
{
    (void)db;
    return "";
}
int
geo_lookup(const struct geo_db *db, const struct sockaddr *sa, struct geo_info *out)
{
    (void)db;
    (void)sa;
    memset(out, 0, sizeof(*out));
    return 1;
}
