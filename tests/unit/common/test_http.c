/* test_http.c - the strict HTTP/1.1 head parser and the chunked decoder, request smuggling
 * shapes first: the node and the balancer both stand on this parser. */
#include "common/http.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct mcpgw_http_head h;
static const char *why;

static int req(const char *s)
{
    why = NULL;
    return mcpgw_http_parse_head(s, strlen(s), 0, &h, &why);
}

static int resp(const char *s)
{
    why = NULL;
    return mcpgw_http_parse_head(s, strlen(s), 1, &h, &why);
}

/* ---- valid requests ---- */

START_TEST(test_http_parses_a_post_with_content_length)
{
    ck_assert_int_eq(req("POST /mcp?x=1 HTTP/1.1\r\nHost: a:1\r\nContent-Length: 12\r\n"
                         "Mcp-Session-Id:   n1.abc  \r\n\r\n"),
                     MCPGW_HTTP_OK);
    ck_assert_int_eq(h.method, MCPGW_HTTP_POST);
    ck_assert_uint_eq(h.target_len, 8);
    ck_assert(memcmp(h.target, "/mcp?x=1", 8) == 0);
    ck_assert_int_eq(h.content_length, 12);
    ck_assert_int_eq(h.keep_alive, 1);
    ck_assert_int_eq(h.chunked, 0);
    ck_assert_int_eq(h.minor_version, 1);
    {
        const struct mcpgw_http_header *sid = mcpgw_http_find(&h, "mcp-session-id");
        ck_assert_ptr_nonnull(sid);
        ck_assert_uint_eq(sid->value_len, 6); /* whitespace trimmed */
        ck_assert(memcmp(sid->value, "n1.abc", 6) == 0);
    }
}
END_TEST

START_TEST(test_http_parses_chunked_and_connection_semantics)
{
    ck_assert_int_eq(req("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n"
                         "Connection: close\r\n\r\n"),
                     MCPGW_HTTP_OK);
    ck_assert_int_eq(h.chunked, 1);
    ck_assert_int_eq(h.content_length, -1);
    ck_assert_int_eq(h.keep_alive, 0);
    ck_assert_int_eq(req("GET / HTTP/1.0\r\nHost: a\r\n\r\n"), MCPGW_HTTP_OK);
    ck_assert_int_eq(h.keep_alive, 0);
    ck_assert_int_eq(req("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), MCPGW_HTTP_OK);
    ck_assert_int_eq(h.keep_alive, 1);
    ck_assert_int_eq(req("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n"
                         "Upgrade: websocket\r\n\r\n"),
                     MCPGW_HTTP_OK);
    ck_assert_int_eq(h.upgrade, 1);
    ck_assert_int_eq(req("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n"),
                     MCPGW_HTTP_OK);
    ck_assert_int_eq(h.upgrade, 0); /* Upgrade without Connection: upgrade is not one */
}
END_TEST

START_TEST(test_http_finds_the_end_of_a_head_only_at_crlfcrlf)
{
    const char *a = "GET / HTTP/1.1\r\nHost: a\r\n\r\nbody";
    ck_assert_uint_eq(mcpgw_http_head_end(a, strlen(a)), strlen(a) - 4);
    ck_assert_uint_eq(mcpgw_http_head_end("GET / HTTP/1.1\n\n", 16), 0);
    ck_assert_uint_eq(mcpgw_http_head_end("GET / HTTP/1.1\r\nHost: a\r\n\r", 27), 0);
    ck_assert_uint_eq(mcpgw_http_head_end("", 0), 0);
}
END_TEST

START_TEST(test_http_parses_a_response_status_line)
{
    ck_assert_int_eq(resp("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"), MCPGW_HTTP_OK);
    ck_assert_int_eq(h.status, 404);
    ck_assert_int_eq(h.content_length, 0);
    ck_assert_int_eq(resp("HTTP/1.1 204\r\n\r\n"), MCPGW_HTTP_OK);
    ck_assert_int_eq(h.status, 204);
    ck_assert_int_eq(resp("HTTP/1.0 200 OK\r\n\r\n"), MCPGW_HTTP_OK);
    ck_assert_int_eq(h.keep_alive, 0);
    ck_assert_int_eq(resp("HTTP/1.1 2000 OK\r\n\r\n"), MCPGW_HTTP_BAD);
    ck_assert_int_eq(resp("HTTP/1.1 099 X\r\n\r\n"), MCPGW_HTTP_BAD);
    ck_assert_int_eq(resp("HTTP/2 200 OK\r\n\r\n"), MCPGW_HTTP_BAD_VERSION);
}
END_TEST

/* ---- request smuggling shapes: all MCPGW_HTTP_BAD (400, connection closed) ---- */

START_TEST(test_http_rejects_content_length_with_transfer_encoding)
{
    ck_assert_int_eq(
        req("POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
        MCPGW_HTTP_BAD);
    ck_assert_int_eq(
        req("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"),
        MCPGW_HTTP_BAD);
    ck_assert_ptr_nonnull(why);
}
END_TEST

START_TEST(test_http_rejects_duplicate_and_invalid_content_length)
{
    ck_assert_int_eq(req("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"),
                     MCPGW_HTTP_BAD);
    ck_assert_int_eq(req("POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 6\r\n\r\n"),
                     MCPGW_HTTP_BAD);
    ck_assert_int_eq(req("POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n"), MCPGW_HTTP_BAD);
    ck_assert_int_eq(req("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), MCPGW_HTTP_BAD);
    ck_assert_int_eq(req("POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n"), MCPGW_HTTP_BAD);
    ck_assert_int_eq(req("POST / HTTP/1.1\r\nContent-Length: 0x5\r\n\r\n"), MCPGW_HTTP_BAD);
    ck_assert_int_eq(req("POST / HTTP/1.1\r\nContent-Length: 5 5\r\n\r\n"), MCPGW_HTTP_BAD);
    ck_assert_int_eq(req("POST / HTTP/1.1\r\nContent-Length: \r\n\r\n"), MCPGW_HTTP_BAD);
    ck_assert_int_eq(req("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n"),
                     MCPGW_HTTP_BAD);
}
END_TEST

START_TEST(test_http_rejects_duplicate_transfer_encoding_and_te_in_http10)
{
    ck_assert_int_eq(req("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n"),
                     MCPGW_HTTP_BAD);
    ck_assert_int_eq(req("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), MCPGW_HTTP_BAD);
}
END_TEST

START_TEST(test_http_answers_unknown_transfer_codings_as_unsupported)
{
    ck_assert_int_eq(req("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
                     MCPGW_HTTP_UNSUPPORTED);
    ck_assert_int_eq(req("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n"),
                     MCPGW_HTTP_UNSUPPORTED);
    ck_assert_int_eq(req("POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n"),
                     MCPGW_HTTP_UNSUPPORTED);
}
END_TEST

START_TEST(test_http_rejects_obsolete_line_folding)
{
    ck_assert_int_eq(req("GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n"), MCPGW_HTTP_BAD);
    ck_assert_int_eq(req("GET / HTTP/1.1\r\nX-A: a\r\n\tb\r\n\r\n"), MCPGW_HTTP_BAD);
    ck_assert_int_eq(req("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), MCPGW_HTTP_BAD);
}
END_TEST

START_TEST(test_http_rejects_cr_lf_and_nul_inside_header_lines)
{
    static const char bare_cr[] = "GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n";
    static const char bare_lf[] = "GET / HTTP/1.1\r\nX-A: a\nb\r\n\r\n";
    static const char nul[] = "GET / HTTP/1.1\r\nX-A: a\0b\r\n\r\n";
    static const char ctl[] = "GET / HTTP/1.1\r\nX-A: a\x01z\r\n\r\n";
    static const char lf_line[] = "GET / HTTP/1.1\nHost: a\r\n\r\n";
    ck_assert_int_eq(mcpgw_http_parse_head(bare_cr, sizeof(bare_cr) - 1, 0, &h, NULL),
                     MCPGW_HTTP_BAD);
    ck_assert_int_eq(mcpgw_http_parse_head(bare_lf, sizeof(bare_lf) - 1, 0, &h, NULL),
                     MCPGW_HTTP_BAD);
    ck_assert_int_eq(mcpgw_http_parse_head(nul, sizeof(nul) - 1, 0, &h, NULL), MCPGW_HTTP_BAD);
    ck_assert_int_eq(mcpgw_http_parse_head(ctl, sizeof(ctl) - 1, 0, &h, NULL), MCPGW_HTTP_BAD);
    ck_assert_int_eq(mcpgw_http_parse_head(lf_line, sizeof(lf_line) - 1, 0, &h, NULL),
                     MCPGW_HTTP_BAD);
}
END_TEST

START_TEST(test_http_rejects_malformed_header_names)
{
    ck_assert_int_eq(req("POST / HTTP/1.1\r\nContent-Length : 5\r\n\r\n"), MCPGW_HTTP_BAD);
    ck_assert_int_eq(req("POST / HTTP/1.1\r\n: 5\r\n\r\n"), MCPGW_HTTP_BAD);
    ck_assert_int_eq(req("POST / HTTP/1.1\r\nNoColon\r\n\r\n"), MCPGW_HTTP_BAD);
    ck_assert_int_eq(req("POST / HTTP/1.1\r\nX(A): 5\r\n\r\n"), MCPGW_HTTP_BAD);
}
END_TEST

START_TEST(test_http_rejects_malformed_request_lines)
{
    ck_assert_int_eq(req("GET  / HTTP/1.1\r\n\r\n"), MCPGW_HTTP_BAD);
    ck_assert_int_eq(req("GET /\r\n\r\n"), MCPGW_HTTP_BAD);
    ck_assert_int_eq(req(" GET / HTTP/1.1\r\n\r\n"), MCPGW_HTTP_BAD);
    ck_assert_int_eq(req("G(T / HTTP/1.1\r\n\r\n"), MCPGW_HTTP_BAD);
    ck_assert_int_eq(req("GET /a\x7f HTTP/1.1\r\n\r\n"), MCPGW_HTTP_BAD);
    ck_assert_int_eq(req("GET / HTTP/2.0\r\n\r\n"), MCPGW_HTTP_BAD_VERSION);
    ck_assert_int_eq(req("GET / HTTP/1.2\r\n\r\n"), MCPGW_HTTP_BAD_VERSION);
    ck_assert_int_eq(req("GET / HTTP/1.1\r\n"), MCPGW_HTTP_INCOMPLETE);
}
END_TEST

START_TEST(test_http_answers_too_many_header_fields)
{
    char buf[4096];
    size_t o = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\n");
    for (int i = 0; i <= MCPGW_HTTP_MAX_HEADERS; i++)
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "X-%d: v\r\n", i);
    snprintf(buf + o, sizeof(buf) - o, "\r\n");
    ck_assert_int_eq(req(buf), MCPGW_HTTP_TOO_MANY);
}
END_TEST

/* ---- chunked bodies ---- */

static char decoded[256];
static size_t ndecoded;

static void collect(void *arg, const char *data, size_t len)
{
    memcpy(decoded + ndecoded, data, len);
    ndecoded += len;
}

/* Feed s in pieces of `step` bytes; return total consumed or -1. */
static ssize_t feed(const char *s, size_t step, struct mcpgw_chunked *d)
{
    size_t len = strlen(s), off = 0;
    memset(d, 0, sizeof(*d));
    ndecoded = 0;
    while (off < len && !d->done) {
        size_t n = len - off < step ? len - off : step;
        ssize_t k = mcpgw_chunked_feed(d, s + off, n, collect, NULL);
        if (k < 0)
            return -1;
        off += (size_t)k;
        if ((size_t)k < n)
            break;
    }
    return (ssize_t)off;
}

START_TEST(test_http_chunked_decodes_in_any_split)
{
    static const char body[] = "5\r\nhello\r\n7;ext=1\r\n, world\r\nA \r\n0123456789\r\n0\r\n"
                               "X-Trailer: t\r\n\r\nNEXT";
    struct mcpgw_chunked d;
    for (size_t step = 1; step <= sizeof(body); step++) {
        ssize_t used = feed(body, step, &d);
        ck_assert_int_eq(used, (ssize_t)sizeof(body) - 1 - 4); /* stops before NEXT */
        ck_assert_int_eq(d.done, 1);
        ck_assert_uint_eq(ndecoded, 22);
        ck_assert(memcmp(decoded, "hello, world0123456789", 22) == 0);
    }
}
END_TEST

START_TEST(test_http_chunked_rejects_invalid_sizes)
{
    struct mcpgw_chunked d;
    ck_assert_int_eq(feed("zz\r\nhello\r\n0\r\n\r\n", 64, &d), -1);
    ck_assert_int_eq(feed("-5\r\nhello\r\n0\r\n\r\n", 64, &d), -1);
    ck_assert_int_eq(feed("0x5\r\nhello\r\n0\r\n\r\n", 64, &d), -1);
    ck_assert_int_eq(feed("\r\nhello\r\n0\r\n\r\n", 64, &d), -1);
    ck_assert_int_eq(feed(" 5\r\nhello\r\n0\r\n\r\n", 64, &d), -1);
    ck_assert_int_eq(feed("fffffffffffffffff\r\n", 64, &d), -1); /* over 64 bits */
    ck_assert_int_eq(feed("00000000000000005\r\n", 64, &d), -1); /* over 16 digits */
}
END_TEST

START_TEST(test_http_chunked_rejects_junk_after_the_size)
{
    struct mcpgw_chunked d;
    /* "5 6" must not be read as size 5 with an extension "6" (parsers disagree on it). */
    ck_assert_int_eq(feed("5 6\r\nhello\r\n0\r\n\r\n", 64, &d), -1);
    ck_assert_int_eq(feed("5\t\tx\r\nhello\r\n0\r\n\r\n", 64, &d), -1);
    ck_assert_int_gt(feed("5 ;a=b\r\nhello\r\n0\r\n\r\n", 64, &d), 0);
    ck_assert_int_gt(feed("5  \r\nhello\r\n0\r\n\r\n", 64, &d), 0);
}
END_TEST

START_TEST(test_http_chunked_rejects_bare_lf_and_controls)
{
    struct mcpgw_chunked d;
    ck_assert_int_eq(feed("5\nhello\r\n0\r\n\r\n", 64, &d), -1);
    ck_assert_int_eq(feed("5\r\nhello\n0\r\n\r\n", 64, &d), -1);
    ck_assert_int_eq(feed("5\r\nhelloXX0\r\n\r\n", 64, &d), -1);
    ck_assert_int_eq(feed("5;a\x01\r\nhello\r\n0\r\n\r\n", 64, &d), -1);
    ck_assert_int_eq(feed("0\r\nX-T: a\x01\r\n\r\n", 64, &d), -1);
    ck_assert_int_eq(feed("0\r\nX-T: a\nb\r\n\r\n", 64, &d), -1);
    ck_assert_int_eq(feed("0\r\n\n", 64, &d), -1);
}
END_TEST

START_TEST(test_http_chunked_rejects_oversized_lines)
{
    struct mcpgw_chunked d;
    char *s = malloc(10000);
    strcpy(s, "5;");
    memset(s + 2, 'a', 5000);
    strcpy(s + 5002, "\r\nhello\r\n0\r\n\r\n");
    ck_assert_int_eq(feed(s, 64, &d), -1);
    free(s);
}
END_TEST

START_TEST(test_http_hop_by_hop_names)
{
    ck_assert(mcpgw_http_is_hop_by_hop("Connection", 10));
    ck_assert(mcpgw_http_is_hop_by_hop("keep-alive", 10));
    ck_assert(mcpgw_http_is_hop_by_hop("TE", 2));
    ck_assert(mcpgw_http_is_hop_by_hop("Transfer-Encoding", 17));
    ck_assert(mcpgw_http_is_hop_by_hop("Upgrade", 7));
    ck_assert(!mcpgw_http_is_hop_by_hop("Host", 4));
    ck_assert(!mcpgw_http_is_hop_by_hop("Mcp-Session-Id", 14));
    ck_assert(
        mcpgw_http_list_has("text/event-stream;q=0.9, application/json", 41, "application/json"));
    ck_assert(!mcpgw_http_list_has("keep-alivex", 11, "keep-alive"));
}
END_TEST

static Suite *http_suite(void)
{
    Suite *s = suite_create("http");
    TCase *tc = tcase_create("valid");
    tcase_add_test(tc, test_http_parses_a_post_with_content_length);
    tcase_add_test(tc, test_http_parses_chunked_and_connection_semantics);
    tcase_add_test(tc, test_http_finds_the_end_of_a_head_only_at_crlfcrlf);
    tcase_add_test(tc, test_http_parses_a_response_status_line);
    tcase_add_test(tc, test_http_hop_by_hop_names);
    suite_add_tcase(s, tc);
    tc = tcase_create("smuggling");
    tcase_add_test(tc, test_http_rejects_content_length_with_transfer_encoding);
    tcase_add_test(tc, test_http_rejects_duplicate_and_invalid_content_length);
    tcase_add_test(tc, test_http_rejects_duplicate_transfer_encoding_and_te_in_http10);
    tcase_add_test(tc, test_http_answers_unknown_transfer_codings_as_unsupported);
    tcase_add_test(tc, test_http_rejects_obsolete_line_folding);
    tcase_add_test(tc, test_http_rejects_cr_lf_and_nul_inside_header_lines);
    tcase_add_test(tc, test_http_rejects_malformed_header_names);
    tcase_add_test(tc, test_http_rejects_malformed_request_lines);
    tcase_add_test(tc, test_http_answers_too_many_header_fields);
    suite_add_tcase(s, tc);
    tc = tcase_create("chunked");
    tcase_add_test(tc, test_http_chunked_decodes_in_any_split);
    tcase_add_test(tc, test_http_chunked_rejects_invalid_sizes);
    tcase_add_test(tc, test_http_chunked_rejects_junk_after_the_size);
    tcase_add_test(tc, test_http_chunked_rejects_bare_lf_and_controls);
    tcase_add_test(tc, test_http_chunked_rejects_oversized_lines);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(http_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
