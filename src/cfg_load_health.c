/* SPDX-License-Identifier: MIT */
/* placeholder: being written */
#include "cfg_loader.h"
