/* test_resume.c - the last whole event of a relayed SSE stream, and the head that resumes it. */
#include "balancer/resume.h"

#include "tests/unit/check-run.h"

#include <check.h>
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#define HEAD                                                                                       \
    "GET /mcp HTTP/1.1\r\nHost: n1\r\nMcp-Session-Id: n1.abc\r\nAccept: text/event-stream\r\n"     \
    "\r\n"

static struct mcpgw_bal_resume *fresh(void)
{
    return mcpgw_bal_resume_new(HEAD, strlen(HEAD));
}

/* Feed s one byte at a time when bytewise, else at once: the answer must not depend on how the
 * bytes were cut. */
static void feed(struct mcpgw_bal_resume *r, const char *s, int bytewise)
{
    size_t n = strlen(s);
    if (!bytewise) {
        mcpgw_bal_resume_feed(r, s, n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        mcpgw_bal_resume_feed(r, s + i, 1);
}

static char *head_of(struct mcpgw_bal_resume *r)
{
    struct evbuffer *b = evbuffer_new();
    size_t n;
    char *s;
    mcpgw_bal_resume_head(r, b);
    n = evbuffer_get_length(b);
    s = malloc(n + 1);
    evbuffer_remove(b, s, n);
    s[n] = '\0';
    evbuffer_free(b);
    return s;
}

START_TEST(test_resume_is_ready_after_a_whole_event_with_an_id)
{
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        struct mcpgw_bal_resume *r = fresh();
        ck_assert_int_eq(mcpgw_bal_resume_ready(r), 0); /* nothing to resume from yet */
        feed(r, "id: 0.17-1\ndata: {\"a\":1}\n\n", bytewise);
        ck_assert_int_eq(mcpgw_bal_resume_ready(r), 1);
        ck_assert_str_eq(mcpgw_bal_resume_last_id(r), "0.17-1");
        feed(r, "event: message\r\nid:0.17-2\r\ndata: x\r\n\r\n", bytewise);
        ck_assert_int_eq(mcpgw_bal_resume_ready(r), 1);
        ck_assert_str_eq(mcpgw_bal_resume_last_id(r), "0.17-2");
        mcpgw_bal_resume_free(r);
    }
}
END_TEST

START_TEST(test_resume_never_counts_an_event_the_client_has_only_in_part)
{
    struct mcpgw_bal_resume *r = fresh();
    feed(r, "id: 7\ndata: a\n\n", 0);
    feed(r, "id: 8\ndata: b", 0);
    ck_assert_int_eq(mcpgw_bal_resume_ready(r), 0);
    ck_assert_str_eq(mcpgw_bal_resume_last_id(r), "7");
    feed(r, "\n", 0);
    ck_assert_int_eq(mcpgw_bal_resume_ready(r), 0); /* the blank line is still to come */
    feed(r, "\n", 0);
    ck_assert_int_eq(mcpgw_bal_resume_ready(r), 1);
    ck_assert_str_eq(mcpgw_bal_resume_last_id(r), "8");
    mcpgw_bal_resume_free(r);
}
END_TEST

START_TEST(test_resume_keeps_the_id_across_events_without_one_and_comments)
{
    struct mcpgw_bal_resume *r = fresh();
    feed(r, "id: 5\ndata: a\n\n: keep-alive\n\ndata: no id\n\nidx: 9\n\n", 0);
    ck_assert_int_eq(mcpgw_bal_resume_ready(r), 1);
    ck_assert_str_eq(mcpgw_bal_resume_last_id(r), "5");
    feed(r, MCPGW_BAL_RESUME_MARK, 0);
    ck_assert_int_eq(mcpgw_bal_resume_ready(r), 1);
    ck_assert_str_eq(mcpgw_bal_resume_last_id(r), "5");
    mcpgw_bal_resume_free(r);
}
END_TEST

START_TEST(test_resume_gives_up_on_ids_it_cannot_repeat)
{
    struct mcpgw_bal_resume *r = fresh();
    char big[MCPGW_BAL_RESUME_ID_MAX + 32];
    feed(r, "id: 1\ndata: a\n\nid\ndata: b\n\n", 0); /* an empty id clears it */
    ck_assert_int_eq(mcpgw_bal_resume_ready(r), 0);
    mcpgw_bal_resume_free(r);

    r = fresh();
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    feed(r, "id: ", 0);
    feed(r, big, 0);
    feed(r, "\ndata: a\n\n", 0);
    ck_assert_int_eq(mcpgw_bal_resume_ready(r), 0);
    mcpgw_bal_resume_free(r);

    r = fresh();
    feed(r, "id: 1\rdata: a\n\n", 0); /* a lone CR */
    ck_assert_int_eq(mcpgw_bal_resume_ready(r), 0);
    mcpgw_bal_resume_free(r);
}
END_TEST

START_TEST(test_resume_seam_starts_the_new_stream_at_a_boundary)
{
    struct mcpgw_bal_resume *r = fresh();
    feed(r, "id: 3\ndata: a\n\n", 0);
    mcpgw_bal_resume_seam(r);
    feed(r, "id: 4\n", 0);
    ck_assert_int_eq(mcpgw_bal_resume_ready(r), 0);
    feed(r, "data: b\n\n", 0);
    ck_assert_str_eq(mcpgw_bal_resume_last_id(r), "4");
    mcpgw_bal_resume_free(r);
}
END_TEST

START_TEST(test_resume_head_replaces_last_event_id)
{
    const char *with = "GET /mcp HTTP/1.1\r\nHost: n1\r\nlast-event-id: 0.1-1\r\n"
                       "Mcp-Session-Id: s\r\n\r\n";
    struct mcpgw_bal_resume *r = mcpgw_bal_resume_new(with, strlen(with));
    char *h;
    feed(r, "id: 0.1-9\ndata: a\n\n", 0);
    h = head_of(r);
    ck_assert_str_eq(h, "GET /mcp HTTP/1.1\r\nHost: n1\r\nMcp-Session-Id: s\r\n"
                        "Last-Event-ID: 0.1-9\r\n\r\n");
    free(h);
    mcpgw_bal_resume_free(r);

    r = fresh();
    feed(r, "id: 2\ndata: a\n\n", 0);
    h = head_of(r);
    ck_assert_ptr_nonnull(strstr(h, "Accept: text/event-stream\r\nLast-Event-ID: 2\r\n\r\n"));
    ck_assert_ptr_nonnull(strstr(h, "GET /mcp HTTP/1.1\r\n"));
    free(h);
    mcpgw_bal_resume_free(r);
}
END_TEST

/* A listen stream is a POST: its body goes out again after the head with the new id. */
START_TEST(test_resume_head_keeps_a_listen_request_body)
{
    const char *req = "POST /mcp HTTP/1.1\r\nHost: n1\r\nMcp-Method: subscriptions/listen\r\n"
                      "Content-Length: 13\r\n\r\n{\"a\":\"\r\n\r\n\"}";
    struct mcpgw_bal_resume *r = mcpgw_bal_resume_new(req, strlen(req));
    char *h;
    ck_assert_ptr_nonnull(r);
    feed(r, "id: 7-0\ndata: ack\n\n", 0);
    h = head_of(r);
    /* the body's own blank-line bytes are not mistaken for the head's end */
    ck_assert_str_eq(h, "POST /mcp HTTP/1.1\r\nHost: n1\r\nMcp-Method: subscriptions/listen\r\n"
                        "Content-Length: 13\r\nLast-Event-ID: 7-0\r\n\r\n{\"a\":\"\r\n\r\n\"}");
    free(h);
    mcpgw_bal_resume_free(r);
}
END_TEST

START_TEST(test_resume_refuses_heads_it_should_not_keep)
{
    ck_assert_ptr_null(mcpgw_bal_resume_new("", 0));
    ck_assert_ptr_null(mcpgw_bal_resume_new(HEAD, 70 * 1024));
}
END_TEST

int main(void)
{
    const TTest *tests[] = {test_resume_is_ready_after_a_whole_event_with_an_id,
                            test_resume_never_counts_an_event_the_client_has_only_in_part,
                            test_resume_keeps_the_id_across_events_without_one_and_comments,
                            test_resume_gives_up_on_ids_it_cannot_repeat,
                            test_resume_seam_starts_the_new_stream_at_a_boundary,
                            test_resume_head_replaces_last_event_id,
                            test_resume_head_keeps_a_listen_request_body,
                            test_resume_refuses_heads_it_should_not_keep};
    return mcpgw_check_run("resume", "resume", tests, sizeof(tests) / sizeof(tests[0]));
}
