/* SPDX-License-Identifier: MIT */
/* placeholder: being written */
#include "health.h"
void
health_target_unref(struct health_target *t)
{
    (void)t;
}
