/* SPDX-License-Identifier: MIT */
/* The session-ticket key ring: tickets issued under a key still decrypt after one and two
 * rotations (and ask for a fresh ticket), not after three; key files are validated. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "clock.h"
#include "tls_ticket.h"

#define ROTATE_MS 60000

/* What OpenSSL does with our callback when it issues (enc=1) or opens (enc=0) a ticket. */
static int
call_cb(unsigned char name[16], int enc)
{
    unsigned char iv[EVP_MAX_IV_LENGTH] = {0};
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *h = EVP_MAC_CTX_new(mac);
    int r = tls_ticket_cb(NULL, name, iv, c, h, enc);
    EVP_MAC_CTX_free(h);
    EVP_MAC_free(mac);
    EVP_CIPHER_CTX_free(c);
    return r;
}

static void
test_rotation_keeps_two_previous_keys(void **state)
{
    (void)state;
    assert_int_equal(tls_ticket_install(NULL, 0, ROTATE_MS), 0);
    unsigned char issued[16];
    assert_int_equal(call_cb(issued, 1), 1);
    assert_int_equal(call_cb(issued, 0), 1); /* current key: fine as it is */

    uint64_t now = clock_mono_ms();
    tls_ticket_tick(now + 1000); /* not due yet */
    assert_int_equal(call_cb(issued, 0), 1);

    tls_ticket_tick(now + ROTATE_MS + 10);
    unsigned char issued2[16];
    assert_int_equal(call_cb(issued2, 1), 1);
    assert_memory_not_equal(issued, issued2, 16); /* new tickets use the new key */
    assert_int_equal(call_cb(issued, 0), 2);      /* old one opens, and asks for renewal */

    tls_ticket_tick(clock_mono_ms() + ROTATE_MS + 10);
    assert_int_equal(call_cb(issued, 0), 2);      /* two rotations: still */
    tls_ticket_tick(clock_mono_ms() + ROTATE_MS + 10);
    assert_int_equal(call_cb(issued, 0), 0);      /* three: full handshake */
    assert_int_equal(call_cb(issued2, 0), 2);
    tls_ticket_shutdown();
}

static void
test_key_file(void **state)
{
    (void)state;
    char path[] = "/tmp/test_tls_ticket_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unsigned char rec[2 * TLS_TICKET_KEY_FILE_RECORD];
    for (size_t i = 0; i < sizeof(rec); i++)
        rec[i] = (unsigned char)i;
    assert_int_equal(write(fd, rec, sizeof(rec)), (ssize_t)sizeof(rec));
    close(fd);

    struct tls_ticket_key keys[TLS_TICKET_KEYS];
    char err[256];
    assert_int_equal(tls_ticket_read_file(path, keys, err, sizeof(err)), 2);
    assert_memory_equal(keys[1].name, rec + 80, 16);
    assert_int_equal(tls_ticket_install(keys, 2, 0), 0);
    unsigned char name[16];
    assert_int_equal(call_cb(name, 1), 1);
    assert_memory_equal(name, rec, 16); /* the first record encrypts */
    memcpy(name, rec + 80, 16);
    assert_int_equal(call_cb(name, 0), 2); /* the second only decrypts */
    tls_ticket_tick(clock_mono_ms() + 10 * ROTATE_MS); /* file keys do not rotate */
    assert_int_equal(call_cb(name, 0), 2);
    tls_ticket_shutdown();

    /* 81 bytes: not whole records. */
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, rec, 81), 81);
    close(fd);
    assert_int_equal(tls_ticket_read_file(path, keys, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "records of 80"));
    unlink(path);
    assert_int_equal(tls_ticket_read_file(path, keys, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cannot open"));
    assert_int_equal(tls_ticket_read_file("/dev/null", keys, err, sizeof(err)), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rotation_keeps_two_previous_keys),
        cmocka_unit_test(test_key_file),
    };
    return cmocka_run_group_tests_name("tls_ticket", tests, NULL, NULL);
}
