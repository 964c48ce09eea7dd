/* SPDX-License-Identifier: MIT */
/* What every libFuzzer driver here shares. CHECK stops at a broken invariant with a trap,
 * which libFuzzer reports as a crash with the input that caused it (abort() would do too;
 * a trap also stops in a debugger at the check). */
#ifndef MERIDIAN_FUZZ_CHECK_H
#define MERIDIAN_FUZZ_CHECK_H

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

#endif
