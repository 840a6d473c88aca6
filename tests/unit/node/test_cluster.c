/* test_cluster.c - node/cluster.c through the memory store: idle expiry (and what keeps a
 * session from idling), the init deadline, DELETE, dropping a session with its calls and GET
 * stream, a claim the store cannot grant, resource events to local subscribers, and the drain.
 * A whole node in this process (nodekit.h: real httpd, transport, protocol, memory store, the
 * cluster's own timers on the loop; no mocks). Ports 18340-18349. */
#include "node/cluster.h"

#include "node/session.h"

#include <check.h>

#include "tests/unit/check-run.h"
#include "tests/unit/node/nodekit.h"

#define PORT 18340

/* Pump until the session is gone from the registry (1) or ms passed (0). */
static int gone_within(struct nk *k, const char *sid, unsigned ms)
{
    uint64_t end = nk_now_ms() + ms;
    while (nk_now_ms() < end) {
        if (!nk_session(k, sid))
            return 1;
        nk_run_for(k, 10);
    }
    return !nk_session(k, sid);
}

START_TEST(test_cluster_expires_an_idle_session_and_counts_it)
{
    char sid[128];
    struct nk *k = nk_new(PORT);
    struct nk_resp r;
    k->n.cfg.session_idle_ms = 1000;
    nk_start(k, 1);
    nk_init(k, 1, sid, sizeof(sid));
    ck_assert_ptr_nonnull(nk_session(k, sid));
    ck_assert(gone_within(k, sid, 5000));
    ck_assert_uint_eq(*k->n.st.sessions_expired, 1);
    /* gone from the store too: the id is unknown now */
    nk_post(k, sid, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", &r);
    ck_assert_int_eq(r.status, 404);
    nk_free(k);
}
END_TEST

START_TEST(test_cluster_a_session_holding_a_get_stream_is_not_idle)
{
    char sid[128];
    struct nk *k = nk_new(PORT + 1);
    int fd;
    k->n.cfg.session_idle_ms = 1000;
    nk_start(k, 1);
    nk_init(k, 1, sid, sizeof(sid));
    fd = nk_get_stream(k, sid);
    nk_run_for(k, 2500);
    ck_assert_ptr_nonnull(nk_session(k, sid));
    ck_assert_uint_eq(*k->n.st.sessions_expired, 0);
    close(fd); /* the client leaves: from then on it idles */
    ck_assert(gone_within(k, sid, 5000));
    ck_assert_uint_eq(*k->n.st.sessions_expired, 1);
    nk_free(k);
}
END_TEST

START_TEST(test_cluster_ends_a_session_that_never_finishes_initializing)
{
    char waiting[128], ready[128];
    struct nk *k = nk_new(PORT + 2);
    k->n.cfg.init_timeout_ms = 1000;
    nk_start(k, 1);
    nk_init(k, 0, waiting, sizeof(waiting));
    nk_init(k, 1, ready, sizeof(ready));
    ck_assert(gone_within(k, waiting, 5000));
    ck_assert_ptr_nonnull(nk_session(k, ready));
    ck_assert_uint_eq(*k->n.st.sessions_expired, 1);
    nk_free(k);
}
END_TEST

START_TEST(test_cluster_delete_ends_the_session_everywhere)
{
    char sid[128];
    struct nk *k = nk_new(PORT + 3);
    struct nk_resp r;
    nk_start(k, 1);
    nk_init(k, 1, sid, sizeof(sid));
    ck_assert(nk_http(k, "DELETE", sid, NULL, NULL, NULL, &r));
    ck_assert_int_lt(r.status, 300);
    ck_assert_ptr_null(nk_session(k, sid));
    ck_assert_uint_eq(*k->n.st.sessions_deleted, 1);
    nk_post(k, sid, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", &r);
    ck_assert_int_eq(r.status, 404);
    nk_free(k);
}
END_TEST

START_TEST(test_cluster_drop_aborts_calls_and_ends_the_get_stream)
{
    char sid[128], buf[8192] = "";
    const char *body = "{\"jsonrpc\":\"2.0\",\"id\":42,\"method\":\"tools/call\",\"params\":{"
                       "\"name\":\"sleep\",\"arguments\":{\"ms\":60000}}}";
    char req[1024];
    struct nk *k = nk_new(PORT + 4);
    struct mcpgw_session *s;
    int get, post, n;
    uint64_t end;
    nk_start(k, 1);
    nk_init(k, 1, sid, sizeof(sid));
    get = nk_get_stream(k, sid);
    post = nk_connect(k);
    n = snprintf(req, sizeof(req),
                 "POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                 "Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: "
                 "2025-11-25\r\nMcp-Session-Id: %s\r\nContent-Length: %zu\r\n\r\n%s",
                 sid, strlen(body), body);
    ck_assert_int_eq(send(post, req, (size_t)n, 0), n);
    end = nk_now_ms() + NK_TIMEOUT_MS;
    while (!nk_session(k, sid)->calls && nk_now_ms() < end)
        nk_run_for(k, 5);
    s = nk_session(k, sid);
    ck_assert_ptr_nonnull(s->calls);
    ck_assert_ptr_nonnull(s->get_stream);
    mcpgw_cluster_drop(&k->n, s);
    ck_assert_ptr_null(nk_session(k, sid));
    /* the GET stream ends cleanly (the last chunk), so its client may resume elsewhere */
    ck_assert(nk_read_until(k, get, "0\r\n\r\n", buf, sizeof(buf)));
    ck_assert_int_eq(*k->n.st.calls_inflight, 0);
    close(get);
    close(post);
    nk_free(k);
}
END_TEST

static int claim_calls, claim_err;
static struct mcpgw_session *claim_s;

static void on_claim(void *arg, struct mcpgw_session *s, int err)
{
    claim_calls++;
    claim_s = s;
    claim_err = err;
}

START_TEST(test_cluster_claim_of_an_unknown_session_fails_cleanly)
{
    struct nk *k = nk_new(PORT + 5);
    const char *sid = "n1.doesnotexist";
    nk_start(k, 1);
    mcpgw_cluster_claim(&k->n, sid, strlen(sid), NULL, on_claim, NULL, NULL);
    nk_run_for(k, 50);
    ck_assert_int_eq(claim_calls, 1);
    ck_assert_ptr_null(claim_s);
    ck_assert_int_ne(claim_err, 0);
    ck_assert_ptr_null(nk_session(k, sid));
    ck_assert_uint_eq(*k->n.st.sessions_claimed, 0);
    nk_free(k);
}
END_TEST

START_TEST(test_cluster_resource_events_reach_local_subscribers_only)
{
    char sub[128], other[128], buf[8192] = "", obuf[8192] = "";
    struct nk *k = nk_new(PORT + 6);
    struct nk_resp r;
    int fs, fo;
    nk_start(k, 1);
    nk_init(k, 1, sub, sizeof(sub));
    nk_init(k, 1, other, sizeof(other));
    nk_post(k, sub,
            "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"resources/subscribe\",\"params\":{\"uri\":"
            "\"mcpgw://notes/u1\"}}",
            &r);
    ck_assert_ptr_nonnull(strstr(r.body, "\"result\""));
    fs = nk_get_stream(k, sub);
    fo = nk_get_stream(k, other);
    nk_post(k, other,
            "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":"
            "\"notes_write\",\"arguments\":{\"name\":\"u1\",\"text\":\"hello\"}}}",
            &r);
    ck_assert_ptr_nonnull(strstr(r.body, "version"));
    ck_assert(nk_read_until(k, fs, "notifications/resources/updated", buf, sizeof(buf)));
    ck_assert_ptr_nonnull(strstr(buf, "mcpgw://notes/u1"));
    ck_assert(!nk_read_until(k, fo, "notifications/resources/updated", obuf, sizeof(obuf)) ||
              !strstr(obuf, "notes/u1\""));
    close(fs);
    close(fo);
    nk_free(k);
}
END_TEST

START_TEST(test_cluster_drain_ends_streams_and_refuses_new_sessions)
{
    char sid[128], buf[8192] = "";
    struct nk *k = nk_new(PORT + 7);
    struct nk_resp r;
    int get;
    nk_start(k, 1);
    nk_init(k, 1, sid, sizeof(sid));
    get = nk_get_stream(k, sid);
    mcpgw_cluster_drain(&k->n);
    ck_assert(k->n.draining);
    ck_assert(nk_read_until(k, get, "0\r\n\r\n", buf, sizeof(buf)));
    ck_assert_ptr_nonnull(nk_session(k, sid)); /* the session stays, for its calls */
    nk_post(k, NULL,
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{"
            "\"protocolVersion\":\"2025-11-25\",\"capabilities\":{},\"clientInfo\":{\"name\":"
            "\"u\",\"version\":\"1\"}}}",
            &r);
    ck_assert_int_eq(r.status, 503);
    ck_assert_ptr_nonnull(strstr(r.body, "draining"));
    close(get);
    nk_free(k);
}
END_TEST

int main(void)
{
    const TTest *const tests[] = {
        test_cluster_expires_an_idle_session_and_counts_it,
        test_cluster_a_session_holding_a_get_stream_is_not_idle,
        test_cluster_ends_a_session_that_never_finishes_initializing,
        test_cluster_delete_ends_the_session_everywhere,
        test_cluster_drop_aborts_calls_and_ends_the_get_stream,
        test_cluster_claim_of_an_unknown_session_fails_cleanly,
        test_cluster_resource_events_reach_local_subscribers_only,
        test_cluster_drain_ends_streams_and_refuses_new_sessions,
    };
    return mcpgw_check_run("cluster", "memory store", tests, sizeof(tests) / sizeof(tests[0]));
}
