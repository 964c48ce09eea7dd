/* SPDX-License-Identifier: MIT */
/* placeholder: being written */
#include "proxy_proto.h"
