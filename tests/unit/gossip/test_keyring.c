/* test_keyring.c - Check suite for gossip/keyring.c: the key ring file and the version-2
 * envelope (AES-256-GCM) sealed and opened with it. */
#include "gossip/keyring.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../check-run.h"

/* Three keys: 64 hex digits, and base64 of other bytes. */
#define HEX_A "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define HEX_B "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
#define B64_C "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVpbXF1eX2A=" /* "ABCD...`" (32 bytes) */

static struct mcpgw_gossip_keyring *ring_of(const char *text)
{
    char err[256] = "";
    struct mcpgw_gossip_keyring *r =
        mcpgw_gossip_keyring_parse(text, strlen(text), "t", err, sizeof(err));
    ck_assert_msg(r != NULL, "%s", err);
    return r;
}

static const uint8_t payload[] = "\x01\x06 any version-1 datagram, opaque to the envelope";

static int seal(struct mcpgw_gossip_keyring *r, uint64_t counter, uint8_t *out)
{
    struct mcpgw_gossip_envelope env = {
        .salt = 0x01020304, .counter = counter, .sent_ms = 1700000000000ULL};
    int n = mcpgw_gossip_keyring_seal(r, &env, payload, sizeof(payload), out, 1400);
    ck_assert_int_eq(n, (int)sizeof(payload) + MCPGW_GOSSIP_ENVELOPE_OVERHEAD);
    return n;
}

START_TEST(test_keyring_reads_hex_and_base64_keys_and_skips_comments)
{
    struct mcpgw_gossip_keyring *r =
        ring_of("# rotated 2026-12-05\n\n  " HEX_A "  \n" B64_C "\n\t\n" HEX_B "\r\n");
    struct mcpgw_gossip_keyring *a = ring_of(HEX_A "\n"), *c = ring_of(B64_C);
    struct mcpgw_gossip_keyring *c_unpadded =
        ring_of("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVpbXF1eX2A");

    ck_assert_int_eq(mcpgw_gossip_keyring_count(r), 3);
    ck_assert_uint_eq(mcpgw_gossip_keyring_key_id(r, 0), mcpgw_gossip_keyring_key_id(a, 0));
    ck_assert_uint_eq(mcpgw_gossip_keyring_key_id(r, 1), mcpgw_gossip_keyring_key_id(c, 0));
    ck_assert_uint_eq(mcpgw_gossip_keyring_key_id(c_unpadded, 0),
                      mcpgw_gossip_keyring_key_id(c, 0));
    ck_assert_uint_ne(mcpgw_gossip_keyring_key_id(r, 0), mcpgw_gossip_keyring_key_id(r, 2));
    mcpgw_gossip_keyring_free(r);
    mcpgw_gossip_keyring_free(a);
    mcpgw_gossip_keyring_free(c);
    mcpgw_gossip_keyring_free(c_unpadded);
}
END_TEST

START_TEST(test_keyring_refuses_a_bad_line_and_names_it)
{
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"# ok\n" HEX_A "\nnot-a-key\n", "line 3: not a 32-byte key"},
        {HEX_A "0\n", "line 1: not a 32-byte key"}, /* 65 digits */
        {"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1g", "line 1"}, /* g */
        {"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVpbXF1eX2B=", "line 1: not a"}, /* stray bits */
        {HEX_A "\n\n" HEX_A "\n", "line 3: the same key as line 1"},
    };
    char err[256];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        ck_assert_ptr_null(
            mcpgw_gossip_keyring_parse(bad[i].text, strlen(bad[i].text), "ring", err, sizeof(err)));
        ck_assert_msg(strstr(err, bad[i].want) != NULL, "case %zu: '%s'", i, err);
    }
}
END_TEST

START_TEST(test_keyring_refuses_more_keys_than_it_holds)
{
    char text[20 * 70] = "", err[256];
    for (int i = 0; i <= MCPGW_GOSSIP_MAX_KEYS; i++)
        snprintf(text + strlen(text), sizeof(text) - strlen(text),
                 "%02x0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n", i);
    ck_assert_ptr_null(mcpgw_gossip_keyring_parse(text, strlen(text), "ring", err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "more than 16 keys"));
}
END_TEST

START_TEST(test_keyring_load_reads_a_file_and_says_why_it_cannot)
{
    char path[] = "/tmp/mcpgw-keyring-XXXXXX", err[256];
    int fd = mkstemp(path);
    struct mcpgw_gossip_keyring *r;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, HEX_A "\n", 65), 65);
    close(fd);
    r = mcpgw_gossip_keyring_load(path, err, sizeof(err));
    ck_assert_msg(r != NULL, "%s", err);
    ck_assert_int_eq(mcpgw_gossip_keyring_count(r), 1);
    mcpgw_gossip_keyring_free(r);
    unlink(path);
    ck_assert_ptr_null(mcpgw_gossip_keyring_load(path, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "cannot open the gossip key ring"));
    ck_assert_ptr_nonnull(strstr(err, path));
}
END_TEST

START_TEST(test_sealed_datagram_opens_to_the_same_bytes_and_header)
{
    struct mcpgw_gossip_keyring *r = ring_of(HEX_A);
    struct mcpgw_gossip_envelope env;
    uint8_t sealed[1400], plain[1400];
    int n = seal(r, 77, sealed);

    /* encrypted: the payload's text does not appear in the datagram */
    ck_assert_ptr_null(memmem(sealed, (size_t)n, "version-1", 9));
    ck_assert_int_eq(sealed[0], MCPGW_GOSSIP_ENVELOPE_VERSION);
    ck_assert_int_eq(mcpgw_gossip_keyring_open(r, sealed, (size_t)n, plain, sizeof(plain), &env),
                     (int)sizeof(payload));
    ck_assert_mem_eq(plain, payload, sizeof(payload));
    ck_assert_uint_eq(env.counter, 77);
    ck_assert_uint_eq(env.salt, 0x01020304);
    ck_assert_uint_eq(env.sent_ms, 1700000000000ULL);
    ck_assert_uint_eq(env.key_id, mcpgw_gossip_keyring_key_id(r, 0));
    mcpgw_gossip_keyring_free(r);
}
END_TEST

START_TEST(test_every_altered_bit_is_refused)
{
    struct mcpgw_gossip_keyring *r = ring_of(HEX_A);
    struct mcpgw_gossip_envelope env;
    uint8_t sealed[1400], plain[1400];
    int n = seal(r, 1, sealed);

    for (int i = 0; i < n; i++)
        for (int bit = 0; bit < 8; bit++) {
            int rc;
            sealed[i] ^= (uint8_t)(1 << bit);
            rc = mcpgw_gossip_keyring_open(r, sealed, (size_t)n, plain, sizeof(plain), &env);
            sealed[i] ^= (uint8_t)(1 << bit);
            /* version and suite bytes: VERSION; key id: NO_KEY; anything else: FORGED */
            ck_assert_int_eq(rc, i < 2   ? MCPGW_GOSSIP_KEYRING_VERSION
                                 : i < 6 ? MCPGW_GOSSIP_KEYRING_NO_KEY
                                         : MCPGW_GOSSIP_KEYRING_FORGED);
        }
    mcpgw_gossip_keyring_free(r);
}
END_TEST

START_TEST(test_truncated_or_extended_envelopes_are_refused)
{
    struct mcpgw_gossip_keyring *r = ring_of(HEX_A);
    struct mcpgw_gossip_envelope env;
    uint8_t sealed[1400], plain[1400];
    int n = seal(r, 1, sealed);

    for (int len = 0; len < n; len++) {
        int rc = mcpgw_gossip_keyring_open(r, sealed, (size_t)len, plain, sizeof(plain), &env);
        ck_assert_msg(rc == MCPGW_GOSSIP_KEYRING_TRUNCATED || rc == MCPGW_GOSSIP_KEYRING_FORGED,
                      "length %d: %d", len, rc);
    }
    sealed[n] = 0;
    ck_assert_int_eq(
        mcpgw_gossip_keyring_open(r, sealed, (size_t)n + 1, plain, sizeof(plain), &env),
        MCPGW_GOSSIP_KEYRING_FORGED);
    mcpgw_gossip_keyring_free(r);
}
END_TEST

START_TEST(test_a_key_we_do_not_hold_is_no_key_and_an_empty_ring_seals_nothing)
{
    struct mcpgw_gossip_keyring *a = ring_of(HEX_A), *b = ring_of(HEX_B),
                                *none = ring_of("# none\n");
    struct mcpgw_gossip_envelope env = {0};
    uint8_t sealed[1400], plain[1400];
    int n = seal(a, 1, sealed);

    ck_assert_int_eq(mcpgw_gossip_keyring_open(b, sealed, (size_t)n, plain, sizeof(plain), &env),
                     MCPGW_GOSSIP_KEYRING_NO_KEY);
    ck_assert_int_eq(mcpgw_gossip_keyring_open(NULL, sealed, (size_t)n, plain, sizeof(plain), &env),
                     MCPGW_GOSSIP_KEYRING_NO_KEY);
    ck_assert_int_eq(mcpgw_gossip_keyring_count(none), 0);
    ck_assert_int_eq(mcpgw_gossip_keyring_seal(none, &env, payload, sizeof(payload), sealed, 1400),
                     MCPGW_GOSSIP_KEYRING_NO_KEY);
    ck_assert_int_eq(
        mcpgw_gossip_keyring_seal(a, &env, payload, sizeof(payload), sealed,
                                  sizeof(payload) + MCPGW_GOSSIP_ENVELOPE_OVERHEAD - 1),
        MCPGW_GOSSIP_KEYRING_NOSPACE);
    mcpgw_gossip_keyring_free(a);
    mcpgw_gossip_keyring_free(b);
    mcpgw_gossip_keyring_free(none);
}
END_TEST

/* The three steps of a rotation, at the envelope: every pair of rings that meet during a
 * correct rotation can open each other's datagrams. */
START_TEST(test_rings_of_each_rotation_step_open_each_others_datagrams)
{
    struct mcpgw_gossip_keyring *rings[4] = {
        ring_of(HEX_A),            /* before: [old] */
        ring_of(HEX_A "\n" HEX_B), /* step 1, new installed: [old, new] */
        ring_of(HEX_B "\n" HEX_A), /* step 2, new primary: [new, old] */
        ring_of(HEX_B),            /* step 3, old removed: [new] */
    };
    struct mcpgw_gossip_envelope env;
    uint8_t sealed[1400], plain[1400];

    /* members are at most one step apart */
    for (int i = 0; i < 4; i++)
        for (int j = i - 1; j <= i + 1; j++) {
            int n;
            if (j < 0 || j > 3)
                continue;
            n = seal(rings[i], 1, sealed);
            ck_assert_msg(mcpgw_gossip_keyring_open(rings[j], sealed, (size_t)n, plain,
                                                    sizeof(plain), &env) > 0,
                          "step %d -> step %d", i, j);
        }
    /* skipping step 1 breaks it: [new, old] seals with new, which [old] does not hold */
    ck_assert_int_eq(mcpgw_gossip_keyring_open(rings[0], sealed, (size_t)seal(rings[2], 1, sealed),
                                               plain, sizeof(plain), &env),
                     MCPGW_GOSSIP_KEYRING_NO_KEY);
    for (int i = 0; i < 4; i++)
        mcpgw_gossip_keyring_free(rings[i]);
}
END_TEST

int main(void)
{
    const TTest *tests[] = {
        test_keyring_reads_hex_and_base64_keys_and_skips_comments,
        test_keyring_refuses_a_bad_line_and_names_it,
        test_keyring_refuses_more_keys_than_it_holds,
        test_keyring_load_reads_a_file_and_says_why_it_cannot,
        test_sealed_datagram_opens_to_the_same_bytes_and_header,
        test_every_altered_bit_is_refused,
        test_truncated_or_extended_envelopes_are_refused,
        test_a_key_we_do_not_hold_is_no_key_and_an_empty_ring_seals_nothing,
        test_rings_of_each_rotation_step_open_each_others_datagrams,
    };
    return mcpgw_check_run("keyring", "envelope", tests, sizeof(tests) / sizeof(tests[0]));
}
