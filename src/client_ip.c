/* SPDX-License-Identifier: MIT */
/* placeholder: being written */
#include "client_ip.h"
