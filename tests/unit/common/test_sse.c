/* test_sse.c - SSE event framing (exact bytes) and the incremental parser. */
#include "common/sse.h"

#include <check.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Format one event and return its bytes (malloc'd, NUL-terminated). */
static char *format(const char *id, const char *event, long retry_ms, const char *data, size_t len)
{
    struct evbuffer *out = evbuffer_new();
    size_t n;
    char *s;
    mcpgw_sse_format(out, id, event, retry_ms, data, len);
    n = evbuffer_get_length(out);
    s = malloc(n + 1);
    evbuffer_remove(out, s, n);
    s[n] = '\0';
    evbuffer_free(out);
    return s;
}

static void expect_format(const char *id, const char *event, long retry_ms, const char *data,
                          size_t len, const char *want)
{
    char *got = format(id, event, retry_ms, data, len);
    ck_assert_str_eq(got, want);
    free(got);
}

START_TEST(test_sse_format_writes_id_event_and_retry_lines)
{
    expect_format("0.5", "message", 3000, "{}", 2,
                  "id: 0.5\nevent: message\nretry: 3000\ndata: {}\n\n");
}
END_TEST

START_TEST(test_sse_format_omits_absent_fields)
{
    expect_format(NULL, NULL, 0, "x", 1, "data: x\n\n");
    expect_format("1.1", NULL, -5, "x", 1, "id: 1.1\ndata: x\n\n");
    expect_format(NULL, "ping", 0, "x", 1, "event: ping\ndata: x\n\n");
}
END_TEST

START_TEST(test_sse_format_splits_data_on_lf)
{
    expect_format(NULL, NULL, 0, "a\nbb\nc", 6, "data: a\ndata: bb\ndata: c\n\n");
}
END_TEST

START_TEST(test_sse_format_splits_data_on_crlf)
{
    expect_format(NULL, NULL, 0, "a\r\nbb\r\nc", 8, "data: a\ndata: bb\ndata: c\n\n");
}
END_TEST

START_TEST(test_sse_format_splits_data_on_cr)
{
    expect_format(NULL, NULL, 0, "a\rbb\rc", 6, "data: a\ndata: bb\ndata: c\n\n");
}
END_TEST

START_TEST(test_sse_format_keeps_empty_lines_between_and_after_newlines)
{
    /* CR LF is one newline, LF CR is two, a final newline leaves an empty last line */
    expect_format(NULL, NULL, 0, "a\r\n\r\nb", 6, "data: a\ndata: \ndata: b\n\n");
    expect_format(NULL, NULL, 0, "a\n\rb", 4, "data: a\ndata: \ndata: b\n\n");
    expect_format(NULL, NULL, 0, "a\n", 2, "data: a\ndata: \n\n");
}
END_TEST

START_TEST(test_sse_format_writes_priming_event_for_empty_data)
{
    expect_format("0.1", NULL, 0, "", 0, "id: 0.1\ndata: \n\n");
    expect_format(NULL, NULL, 0, "", 0, "data: \n\n");
}
END_TEST

START_TEST(test_sse_format_writes_no_data_line_for_null_data)
{
    expect_format("2.9", NULL, 0, NULL, 0, "id: 2.9\n\n");
    expect_format(NULL, NULL, 0, NULL, 0, "\n");
}
END_TEST

START_TEST(test_sse_format_uses_only_len_bytes_of_data)
{
    expect_format(NULL, NULL, 0, "abcdef", 3, "data: abc\n\n");
}
END_TEST

/* ---- parser ---- */

#define MAX_EVENTS 16

struct rec {
    int n;
    char *id[MAX_EVENTS], *event[MAX_EVENTS], *data[MAX_EVENTS];
    size_t len[MAX_EVENTS];
};

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void on_event(void *arg, const char *id, const char *event, const char *data, size_t len)
{
    struct rec *r = arg;
    ck_assert_int_lt(r->n, MAX_EVENTS);
    ck_assert_uint_eq(strlen(data), len);
    r->id[r->n] = dup_or_null(id);
    r->event[r->n] = dup_or_null(event);
    r->data[r->n] = malloc(len + 1);
    memcpy(r->data[r->n], data, len + 1);
    r->len[r->n] = len;
    r->n++;
}

static void rec_clear(struct rec *r)
{
    for (int i = 0; i < r->n; i++) {
        free(r->id[i]);
        free(r->event[i]);
        free(r->data[i]);
    }
    memset(r, 0, sizeof(*r));
}

/* Feed s in one call to a new parser; returns the feed result. */
static int parse_all(const char *s, size_t max_line, struct rec *r)
{
    struct mcpgw_sse_parser *p = mcpgw_sse_parser_new(max_line, on_event, r);
    int rc = mcpgw_sse_parser_feed(p, s, strlen(s));
    mcpgw_sse_parser_free(p);
    return rc;
}

static void expect_event(const struct rec *r, int i, const char *id, const char *event,
                         const char *data)
{
    ck_assert_int_lt(i, r->n);
    if (id)
        ck_assert_str_eq(r->id[i], id);
    else
        ck_assert_ptr_null(r->id[i]);
    if (event)
        ck_assert_str_eq(r->event[i], event);
    else
        ck_assert_ptr_null(r->event[i]);
    ck_assert_str_eq(r->data[i], data);
}

START_TEST(test_sse_parser_delivers_event_with_id_and_name)
{
    struct rec r = {0};
    ck_assert_int_eq(parse_all("id: 1.4\nevent: message\ndata: hello\n\n", 1024, &r), 0);
    ck_assert_int_eq(r.n, 1);
    expect_event(&r, 0, "1.4", "message", "hello");
    rec_clear(&r);
}
END_TEST

START_TEST(test_sse_parser_reports_absent_id_and_name_as_null)
{
    struct rec r = {0};
    ck_assert_int_eq(parse_all("data: x\n\n", 1024, &r), 0);
    ck_assert_int_eq(r.n, 1);
    expect_event(&r, 0, NULL, NULL, "x");
    rec_clear(&r);
}
END_TEST

START_TEST(test_sse_parser_joins_data_lines_with_lf)
{
    struct rec r = {0};
    ck_assert_int_eq(parse_all("data: a\ndata: bb\ndata:\ndata:c\n\n", 1024, &r), 0);
    ck_assert_int_eq(r.n, 1);
    expect_event(&r, 0, NULL, NULL, "a\nbb\n\nc");
    ck_assert_uint_eq(r.len[0], 7);
    rec_clear(&r);
}
END_TEST

START_TEST(test_sse_parser_strips_only_one_space_after_colon)
{
    struct rec r = {0};
    ck_assert_int_eq(parse_all("data:  two\n\n", 1024, &r), 0);
    ck_assert_int_eq(r.n, 1);
    expect_event(&r, 0, NULL, NULL, " two");
    rec_clear(&r);
}
END_TEST

START_TEST(test_sse_parser_ignores_comments)
{
    struct rec r = {0};
    ck_assert_int_eq(parse_all(": keep-alive\n\n: c\ndata: x\n: data: y\n\n", 1024, &r), 0);
    ck_assert_int_eq(r.n, 1);
    expect_event(&r, 0, NULL, NULL, "x");
    rec_clear(&r);
}
END_TEST

START_TEST(test_sse_parser_dispatches_nothing_without_data_lines)
{
    struct rec r = {0};
    ck_assert_int_eq(parse_all("id: 3\n\nevent: e\n\n\n\n", 1024, &r), 0);
    ck_assert_int_eq(r.n, 0);
    rec_clear(&r);
}
END_TEST

START_TEST(test_sse_parser_holds_an_event_until_the_blank_line)
{
    struct rec r = {0};
    ck_assert_int_eq(parse_all("data: x\n", 1024, &r), 0);
    ck_assert_int_eq(r.n, 0);
    rec_clear(&r);
}
END_TEST

START_TEST(test_sse_parser_accepts_crlf_and_cr_line_endings)
{
    struct rec r = {0};
    ck_assert_int_eq(parse_all("id: 7\r\ndata: a\r\ndata: b\r\n\r\ndata: c\rdata: d\r\r", 1024, &r),
                     0);
    ck_assert_int_eq(r.n, 2);
    expect_event(&r, 0, "7", NULL, "a\nb");
    expect_event(&r, 1, "7", NULL, "c\nd");
    rec_clear(&r);
}
END_TEST

START_TEST(test_sse_parser_keeps_id_across_events_but_not_event_name)
{
    struct rec r = {0};
    ck_assert_int_eq(
        parse_all("id: 5\nevent: e\ndata: a\n\ndata: b\n\nid: 6\ndata: c\n\n", 1024, &r), 0);
    ck_assert_int_eq(r.n, 3);
    expect_event(&r, 0, "5", "e", "a");
    expect_event(&r, 1, "5", NULL, "b");
    expect_event(&r, 2, "6", NULL, "c");
    rec_clear(&r);
}
END_TEST

static const char split_stream[] =
    "retry: 100\r\nid: 1.1\r\nevent: message\r\ndata: {\"a\":1}\r\n\r\n"
    ": comment\ndata: l1\ndata: l2\n\n"
    "id: 1.2\rdata: z\r\r";

static void expect_split_stream_events(const struct rec *r)
{
    ck_assert_int_eq(r->n, 3);
    expect_event(r, 0, "1.1", "message", "{\"a\":1}");
    expect_event(r, 1, "1.1", NULL, "l1\nl2");
    expect_event(r, 2, "1.2", NULL, "z");
}

START_TEST(test_sse_parser_handles_a_split_at_every_byte_boundary)
{
    size_t n = strlen(split_stream);
    for (size_t cut = 0; cut <= n; cut++) {
        struct rec r = {0};
        struct mcpgw_sse_parser *p = mcpgw_sse_parser_new(1024, on_event, &r);
        ck_assert_int_eq(mcpgw_sse_parser_feed(p, split_stream, cut), 0);
        ck_assert_int_eq(mcpgw_sse_parser_feed(p, split_stream + cut, n - cut), 0);
        expect_split_stream_events(&r);
        mcpgw_sse_parser_free(p);
        rec_clear(&r);
    }
}
END_TEST

START_TEST(test_sse_parser_handles_one_byte_per_feed)
{
    size_t n = strlen(split_stream);
    struct rec r = {0};
    struct mcpgw_sse_parser *p = mcpgw_sse_parser_new(1024, on_event, &r);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(mcpgw_sse_parser_feed(p, split_stream + i, 1), 0);
    expect_split_stream_events(&r);
    mcpgw_sse_parser_free(p);
    rec_clear(&r);
}
END_TEST

START_TEST(test_sse_parser_rejects_line_over_max_line)
{
    struct rec r = {0};
    /* "data: " + 10 bytes = 16 bytes: fits a 16-byte limit, 17 does not */
    ck_assert_int_eq(parse_all("data: 0123456789\n\n", 16, &r), 0);
    ck_assert_int_eq(r.n, 1);
    rec_clear(&r);
    ck_assert_int_eq(parse_all("data: 0123456789A\n\n", 16, &r), -1);
    ck_assert_int_eq(r.n, 0);
    rec_clear(&r);
}
END_TEST

START_TEST(test_sse_parser_limits_each_line_not_the_event)
{
    struct rec r = {0};
    ck_assert_int_eq(parse_all("data: 0123456789\ndata: 0123456789\ndata: 0123456789\n\n", 16, &r),
                     0);
    ck_assert_int_eq(r.n, 1);
    ck_assert_uint_eq(r.len[0], 32);
    rec_clear(&r);
}
END_TEST

START_TEST(test_sse_formatted_event_parses_back)
{
    static const char data[] = "line one\r\nline two\rline three\n";
    struct rec r = {0};
    char *s = format("3.14", "message", 0, data, strlen(data));
    ck_assert_int_eq(parse_all(s, 1024, &r), 0);
    ck_assert_int_eq(r.n, 1);
    expect_event(&r, 0, "3.14", "message", "line one\nline two\nline three\n");
    rec_clear(&r);
    free(s);
}
END_TEST

static char comments[128];

static void on_comment(void *arg, const char *text, size_t len)
{
    (void)arg;
    strncat(comments, text, len);
    strcat(comments, "|");
}

START_TEST(test_sse_parser_hands_comments_to_their_callback_only)
{
    struct rec r = {0};
    struct mcpgw_sse_parser *p = mcpgw_sse_parser_new(1024, on_event, &r);
    const char *s = ": resumed\n\n:x\r\n:\nid: 1\ndata: a\n\n";
    comments[0] = '\0';
    mcpgw_sse_parser_on_comment(p, on_comment);
    for (size_t i = 0; s[i]; i++) /* byte by byte: a comment cut anywhere is still whole */
        ck_assert_int_eq(mcpgw_sse_parser_feed(p, s + i, 1), 0);
    mcpgw_sse_parser_free(p);
    ck_assert_str_eq(comments, "resumed|x||");
    ck_assert_int_eq(r.n, 1);
    expect_event(&r, 0, "1", NULL, "a");
    rec_clear(&r);
}
END_TEST

static Suite *sse_suite(void)
{
    Suite *s = suite_create("sse");
    TCase *fmt = tcase_create("format"), *par = tcase_create("parser");

    tcase_add_test(fmt, test_sse_format_writes_id_event_and_retry_lines);
    tcase_add_test(par, test_sse_parser_hands_comments_to_their_callback_only);
    tcase_add_test(fmt, test_sse_format_omits_absent_fields);
    tcase_add_test(fmt, test_sse_format_splits_data_on_lf);
    tcase_add_test(fmt, test_sse_format_splits_data_on_crlf);
    tcase_add_test(fmt, test_sse_format_splits_data_on_cr);
    tcase_add_test(fmt, test_sse_format_keeps_empty_lines_between_and_after_newlines);
    tcase_add_test(fmt, test_sse_format_writes_priming_event_for_empty_data);
    tcase_add_test(fmt, test_sse_format_writes_no_data_line_for_null_data);
    tcase_add_test(fmt, test_sse_format_uses_only_len_bytes_of_data);
    suite_add_tcase(s, fmt);

    tcase_add_test(par, test_sse_parser_delivers_event_with_id_and_name);
    tcase_add_test(par, test_sse_parser_reports_absent_id_and_name_as_null);
    tcase_add_test(par, test_sse_parser_joins_data_lines_with_lf);
    tcase_add_test(par, test_sse_parser_strips_only_one_space_after_colon);
    tcase_add_test(par, test_sse_parser_ignores_comments);
    tcase_add_test(par, test_sse_parser_dispatches_nothing_without_data_lines);
    tcase_add_test(par, test_sse_parser_holds_an_event_until_the_blank_line);
    tcase_add_test(par, test_sse_parser_accepts_crlf_and_cr_line_endings);
    tcase_add_test(par, test_sse_parser_keeps_id_across_events_but_not_event_name);
    tcase_add_test(par, test_sse_parser_handles_a_split_at_every_byte_boundary);
    tcase_add_test(par, test_sse_parser_handles_one_byte_per_feed);
    tcase_add_test(par, test_sse_parser_rejects_line_over_max_line);
    tcase_add_test(par, test_sse_parser_limits_each_line_not_the_event);
    tcase_add_test(par, test_sse_formatted_event_parses_back);
    suite_add_tcase(s, par);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(sse_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
