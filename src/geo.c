/* SPDX-License-Identifier: MIT */
/* placeholder: being written */
#include "geo.h"
void
geo_close(struct geo_db *db)
{
    (void)db;
}
