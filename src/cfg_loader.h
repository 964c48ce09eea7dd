/* SPDX-License-Identifier: MIT */
#ifndef MERIDIAN_CFG_LOADER_H
#define MERIDIAN_CFG_LOADER_H
#endif
