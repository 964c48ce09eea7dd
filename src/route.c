/* SPDX-License-Identifier: MIT */
/* placeholder: being written */
#include "route.h"
