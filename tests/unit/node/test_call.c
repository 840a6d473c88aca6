/* test_call.c - calls and the session's streams over real loopback connections: a call's answer
 * (JSON, or SSE once it emits), its events logged for a resume, server-to-client requests and
 * their replies and timeouts, the GET stream's live delivery, replay, hold and release, and
 * replies deferred while the store works.
 *
 * One process, one thread: the test sends with blocking send() and pumps the event loop while
 * reading its client socket without blocking. Ports 18480-18499 (the node unit-test range). */
#include "node/call.h"

#include "common/httpd.h"
#include "common/metrics.h"
#include "common/util.h"
#include "node/defer.h"
#include "node/node-t.h"
#include "node/registry.h"
#include "node/session.h"
#include "node/store.h"
#include "node/stream.h"

#include <check.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PORT_BASE  18480
#define TIMEOUT_MS 3000

struct harness {
    struct mcpgw_node n;
    struct mcpgw_session *s;
    struct mcpgw_http_conn *conn; /* the last request's connection, once the handler ran */
    int fd;                       /* the client socket */
    char out[16384];              /* what the client read */
    size_t outlen;
    uint64_t counters[8];
    int64_t gauges[4];
    /* a server-to-client request's reply */
    int replies;
    json_object *reply_result, *reply_error;
};

static struct harness *H;

static void handler(struct mcpgw_http_conn *c, const struct mcpgw_http_req *req, void *arg)
{
    struct harness *h = arg;
    h->conn = c;
}

static struct harness *harness_new(int port_off)
{
    struct harness *h = xcalloc(1, sizeof(*h));
    struct mcpgw_httpd_config hc;
    struct mcpgw_store_config sc = {"memory", "n1", 60000, NULL, NULL};
    char err[256], addr[64];
    h->n.base = event_base_new();
    h->n.reg = mcpgw_registry_new(2);
    h->n.metrics = mcpgw_metrics_new();
    h->n.cfg.client_request_timeout_ms = 60000;
    h->n.cfg.tool_timeout_ms = 60000;
    h->n.cfg.sse_retry_ms = 1000;
    h->n.st.events_sent = &h->counters[0];
    h->n.st.events_replayed = &h->counters[1];
    h->n.st.replay_gaps = &h->counters[2];
    h->n.st.errors = &h->counters[3];
    h->n.st.calls_inflight = &h->gauges[0];
    h->n.st.latency = mcpgw_metrics_hist(h->n.metrics, "t_seconds", "t", "");
    sc.base = h->n.base;
    sc.reg = h->n.reg;
    h->n.store = mcpgw_store_new(&sc, NULL, NULL, err, sizeof(err));
    ck_assert_ptr_nonnull(h->n.store);
    mcpgw_httpd_config_defaults(&hc);
    h->n.httpd = mcpgw_httpd_new(h->n.base, &hc, handler, h);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", PORT_BASE + port_off);
    ck_assert_msg(mcpgw_httpd_listen(h->n.httpd, addr, err, sizeof(err)) == 0, "%s", err);
    h->s = xcalloc(1, sizeof(*h->s));
    snprintf(h->s->id, sizeof(h->s->id), "n1.test");
    h->s->log_level = -1;
    h->s->state = MCPGW_SESSION_READY;
    ck_assert_int_eq(mcpgw_registry_insert(h->n.reg, h->s), 0);
    h->fd = -1;
    H = h;
    return h;
}

static void pump(struct harness *h)
{
    event_base_loop(h->n.base, EVLOOP_NONBLOCK);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Read what the server sent until `needle` appears in it (or the connection ends with closed
 * set). Returns 1 when found. */
static int read_until(struct harness *h, const char *needle)
{
    uint64_t end = now_ms() + TIMEOUT_MS;
    while (now_ms() < end) {
        ssize_t r;
        pump(h);
        r = recv(h->fd, h->out + h->outlen, sizeof(h->out) - 1 - h->outlen, MSG_DONTWAIT);
        if (r > 0) {
            h->outlen += (size_t)r;
            h->out[h->outlen] = '\0';
        }
        if (strstr(h->out, needle))
            return 1;
        if (r == 0)
            return 0;
        usleep(1000);
    }
    return 0;
}

/* Read what the server sends within ms (to see that something was not sent). */
static void read_for(struct harness *h, unsigned ms)
{
    uint64_t end = now_ms() + ms;
    while (now_ms() < end) {
        ssize_t r;
        pump(h);
        r = recv(h->fd, h->out + h->outlen, sizeof(h->out) - 1 - h->outlen, MSG_DONTWAIT);
        if (r > 0) {
            h->outlen += (size_t)r;
            h->out[h->outlen] = '\0';
        }
        usleep(1000);
    }
}

/* Open a client connection and send a request; pump until the handler has it in h->conn. */
static void request(struct harness *h, int port_off, const char *method)
{
    struct sockaddr_in a = {0};
    char req[256];
    uint64_t end = now_ms() + TIMEOUT_MS;
    int n;
    h->conn = NULL;
    h->outlen = 0;
    h->out[0] = '\0';
    h->fd = socket(AF_INET, SOCK_STREAM, 0);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)(PORT_BASE + port_off));
    a.sin_addr.s_addr = htonl(0x7f000001);
    ck_assert_int_eq(connect(h->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    n = snprintf(req, sizeof(req),
                 "%s /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}", method);
    ck_assert_int_eq(send(h->fd, req, (size_t)n, 0), n);
    while (!h->conn && now_ms() < end) {
        pump(h);
        usleep(1000);
    }
    ck_assert_ptr_nonnull(h->conn);
}

static void harness_free(struct harness *h)
{
    if (h->fd >= 0)
        close(h->fd);
    pump(h);
    while (h->s->calls)
        mcpgw_call_abort(h->s->calls);
    mcpgw_stream_end(h->s);
    mcpgw_registry_remove(h->n.reg, h->s);
    mcpgw_session_free(h->s);
    mcpgw_httpd_free(h->n.httpd);
    mcpgw_store_free(h->n.store);
    mcpgw_registry_free(h->n.reg);
    mcpgw_metrics_free(h->n.metrics);
    event_base_free(h->n.base);
    free(h);
}

static struct mcpgw_call *call_new(struct harness *h, int id)
{
    json_object *jid = json_object_new_int(id);
    struct mcpgw_call *c = mcpgw_call_new(&h->n, h->s, jid, h->conn, NULL);
    json_object_put(jid);
    return c;
}

static json_object *text_result(const char *text)
{
    json_object *r = json_object_new_object();
    json_object_object_add(r, "text", json_object_new_string(text));
    return r;
}

struct visits {
    int n;
    char data[8][256];
};

static void visit(void *arg, const struct mcpgw_event *ev)
{
    struct visits *v = arg;
    if (v->n < 8)
        snprintf(v->data[v->n], sizeof(v->data[0]), "%.*s", (int)ev->len, ev->data);
    v->n++;
}

START_TEST(test_call_result_without_events_is_one_json_answer)
{
    struct harness *h = harness_new(0);
    request(h, 0, "POST");
    mcpgw_call_result(call_new(h, 7), text_result("hi"));
    ck_assert(read_until(h, "\"hi\""));
    ck_assert_ptr_nonnull(strstr(h->out, "HTTP/1.1 200"));
    ck_assert_ptr_nonnull(strstr(h->out, "application/json"));
    ck_assert_ptr_nonnull(strstr(h->out, "Mcp-Session-Id: n1.test"));
    ck_assert_ptr_nonnull(strstr(h->out, "\"id\":7"));
    ck_assert_ptr_null(h->s->calls);
    ck_assert_int_eq(h->gauges[0], 0);
    harness_free(h);
}
END_TEST

START_TEST(test_call_notification_switches_the_answer_to_sse_with_stream_ids)
{
    struct harness *h = harness_new(1);
    struct mcpgw_call *c;
    request(h, 1, "POST");
    c = call_new(h, 1);
    mcpgw_call_log(c, "info", "working");
    ck_assert(read_until(h, "working"));
    ck_assert_ptr_nonnull(strstr(h->out, "text/event-stream"));
    ck_assert_ptr_nonnull(strstr(h->out, "notifications/message"));
    /* stream 1 is this call's; the priming event took seq 1 */
    ck_assert_ptr_nonnull(strstr(h->out, "id: 1.2"));
    mcpgw_call_result(c, text_result("done"));
    ck_assert(read_until(h, "0\r\n\r\n")); /* the result, then the end of the stream */
    ck_assert_ptr_nonnull(strstr(h->out, "id: 1.3"));
    ck_assert_ptr_nonnull(strstr(h->out, "\"done\""));
    harness_free(h);
}
END_TEST

START_TEST(test_call_events_are_logged_for_a_resume_of_their_stream)
{
    struct harness *h = harness_new(2);
    struct mcpgw_call *c;
    struct visits v = {0};
    request(h, 2, "POST");
    c = call_new(h, 1);
    mcpgw_call_log(c, "info", "one");
    mcpgw_call_result(c, text_result("two"));
    ck_assert_int_eq(mcpgw_session_replay(h->s, 1, 0, visit, &v), 2);
    ck_assert_ptr_nonnull(strstr(v.data[0], "one"));
    ck_assert_ptr_nonnull(strstr(v.data[1], "two"));
    v.n = 0;
    ck_assert_int_eq(mcpgw_session_replay(h->s, 0, 0, visit, &v), 0); /* not the GET stream's */
    harness_free(h);
}
END_TEST

START_TEST(test_call_log_below_the_sessions_level_is_not_sent)
{
    struct harness *h = harness_new(3);
    struct mcpgw_call *c;
    struct visits v = {0};
    request(h, 3, "POST");
    h->s->log_level = 3; /* warning */
    c = call_new(h, 1);
    mcpgw_call_log(c, "info", "quiet");
    mcpgw_call_log(c, "nonsense", "quiet");
    mcpgw_call_result(c, text_result("r"));
    ck_assert(read_until(h, "\"r\""));
    ck_assert_ptr_nonnull(strstr(h->out, "application/json")); /* never became SSE */
    ck_assert_int_eq(mcpgw_session_replay(h->s, 1, 0, visit, &v), 0);
    harness_free(h);
}
END_TEST

static void on_reply(struct mcpgw_call *c, json_object *result, json_object *error)
{
    H->replies++;
    H->reply_result = result ? json_object_get(result) : NULL;
    H->reply_error = error ? json_object_get(error) : NULL;
    mcpgw_call_result(c, text_result("replied"));
}

START_TEST(test_call_request_is_answered_by_the_clients_reply)
{
    struct harness *h = harness_new(4);
    struct mcpgw_call *c;
    json_object *answer = json_object_new_object();
    request(h, 4, "POST");
    c = call_new(h, 1);
    ck_assert_int_eq(
        mcpgw_call_request(c, "sampling/createMessage", json_object_new_object(), on_reply), 0);
    /* one at a time */
    ck_assert_int_eq(mcpgw_call_request(c, "x", json_object_new_object(), on_reply), -1);
    ck_assert(read_until(h, "sampling/createMessage"));
    ck_assert_ptr_eq(mcpgw_call_find_out(h->s, c->out_id), c);
    mcpgw_call_reply(mcpgw_call_find_out(h->s, c->out_id), answer, NULL);
    ck_assert_int_eq(h->replies, 1);
    ck_assert_ptr_eq(h->reply_result, answer);
    ck_assert_ptr_null(h->reply_error);
    ck_assert(read_until(h, "replied"));
    json_object_put(h->reply_result);
    json_object_put(answer);
    harness_free(h);
}
END_TEST

START_TEST(test_call_request_times_out_with_neither_result_nor_error)
{
    struct harness *h = harness_new(5);
    struct mcpgw_call *c;
    uint64_t end;
    request(h, 5, "POST");
    h->n.cfg.client_request_timeout_ms = 30;
    c = call_new(h, 1);
    mcpgw_call_request(c, "elicitation/create", json_object_new_object(), on_reply);
    end = now_ms() + TIMEOUT_MS;
    while (!h->replies && now_ms() < end) {
        pump(h);
        usleep(1000);
    }
    ck_assert_int_eq(h->replies, 1);
    ck_assert_ptr_null(h->reply_result);
    ck_assert_ptr_null(h->reply_error);
    harness_free(h);
}
END_TEST

START_TEST(test_call_abort_answers_202_when_nothing_was_sent)
{
    struct harness *h = harness_new(6);
    struct mcpgw_call *c;
    json_object *id = json_object_new_int(9);
    request(h, 6, "POST");
    c = call_new(h, 9);
    ck_assert_ptr_eq(mcpgw_call_find(h->s, id), c);
    mcpgw_call_abort(c);
    ck_assert_ptr_null(mcpgw_call_find(h->s, id));
    ck_assert(read_until(h, "HTTP/1.1 202"));
    json_object_put(id);
    harness_free(h);
}
END_TEST

START_TEST(test_call_goes_on_when_its_client_leaves)
{
    struct harness *h = harness_new(7);
    struct mcpgw_call *c;
    struct visits v = {0};
    request(h, 7, "POST");
    c = call_new(h, 1);
    mcpgw_call_log(c, "info", "before");
    ck_assert(read_until(h, "before"));
    close(h->fd);
    h->fd = -1;
    while (c->conn)
        pump(h);
    mcpgw_call_log(c, "info", "after");
    mcpgw_call_result(c, text_result("end"));
    ck_assert_int_eq(mcpgw_session_replay(h->s, 1, 0, visit, &v), 3);
    ck_assert_ptr_nonnull(strstr(v.data[1], "after"));
    harness_free(h);
}
END_TEST

START_TEST(test_stream_send_logs_and_writes_to_the_attached_get_stream)
{
    struct harness *h = harness_new(8);
    request(h, 8, "GET");
    mcpgw_stream_attach(&h->n, h->s, h->conn, 0, 0);
    ck_assert_ptr_eq(h->s->get_stream, h->conn);
    mcpgw_stream_send(&h->n, h->s, "{\"a\":1}", 7);
    ck_assert(read_until(h, "{\"a\":1}"));
    ck_assert_ptr_nonnull(strstr(h->out, "text/event-stream"));
    ck_assert_ptr_nonnull(strstr(h->out, "id: 0."));
    mcpgw_stream_end(h->s);
    ck_assert_ptr_null(h->s->get_stream);
    ck_assert(read_until(h, "0\r\n\r\n"));
    harness_free(h);
}
END_TEST

START_TEST(test_stream_attach_with_replay_sends_the_logged_events_first)
{
    struct harness *h = harness_new(9);
    char *p1, *p2;
    mcpgw_stream_send(&h->n, h->s, "{\"e\":\"first\"}", 13); /* no stream yet: logged */
    mcpgw_stream_send(&h->n, h->s, "{\"e\":\"second\"}", 14);
    request(h, 9, "GET");
    mcpgw_stream_attach(&h->n, h->s, h->conn, 1, 1); /* the client has seq 1 */
    ck_assert(read_until(h, "second"));
    ck_assert_ptr_null(strstr(h->out, "first"));
    mcpgw_stream_send(&h->n, h->s, "{\"e\":\"third\"}", 13);
    ck_assert(read_until(h, "third"));
    p1 = strstr(h->out, "second");
    p2 = strstr(h->out, "third");
    ck_assert(p1 < p2);
    ck_assert_uint_eq(h->counters[1], 1); /* one replayed */
    harness_free(h);
}
END_TEST

START_TEST(test_stream_hold_queues_deliveries_until_the_release_and_drops_old_ones)
{
    struct harness *h = harness_new(10);
    char *p5, *p6;
    request(h, 10, "GET");
    mcpgw_stream_attach(&h->n, h->s, h->conn, 0, 0);
    mcpgw_stream_hold(h->s);
    mcpgw_stream_hold(h->s); /* one hold at a time */
    mcpgw_stream_deliver(&h->n, h->s, 5, 0, "{\"v\":5}", 7);
    mcpgw_stream_deliver(&h->n, h->s, 6, 0, "{\"v\":6}", 7);
    read_for(h, 100); /* whatever the loop would write now */
    ck_assert_ptr_null(strstr(h->out, "{\"v\":5}"));
    mcpgw_stream_release(&h->n, h->s);
    ck_assert(read_until(h, "{\"v\":6}"));
    p5 = strstr(h->out, "id: 0.5-0");
    p6 = strstr(h->out, "id: 0.6-0");
    ck_assert(p5 && p6 && p5 < p6);
    /* an event at or before the last delivered id was already written: skipped */
    mcpgw_stream_deliver(&h->n, h->s, 4, 0, "{\"v\":4}", 7);
    mcpgw_stream_deliver(&h->n, h->s, 7, 0, "{\"v\":7}", 7);
    ck_assert(read_until(h, "{\"v\":7}"));
    ck_assert_ptr_null(strstr(h->out, "{\"v\":4}"));
    harness_free(h);
}
END_TEST

START_TEST(test_defer_finds_its_session_again_only_while_it_exists)
{
    struct harness *h = harness_new(11);
    struct mcpgw_defer *d;
    json_object *id = json_object_new_int(3);
    request(h, 11, "POST");
    d = mcpgw_defer_new(&h->n, h->conn, h->s, id);
    ck_assert_ptr_eq(mcpgw_defer_session(d), h->s);
    mcpgw_registry_remove(h->n.reg, h->s);
    ck_assert_ptr_null(mcpgw_defer_session(d));
    mcpgw_registry_insert(h->n.reg, h->s);
    mcpgw_defer_result(d, text_result("later"));
    ck_assert(read_until(h, "later"));
    ck_assert_ptr_nonnull(strstr(h->out, "\"id\":3"));
    json_object_put(id);
    harness_free(h);
}
END_TEST

START_TEST(test_defer_answer_after_the_client_left_is_dropped)
{
    struct harness *h = harness_new(12);
    struct mcpgw_defer *d;
    json_object *id = json_object_new_int(4);
    request(h, 12, "POST");
    d = mcpgw_defer_new(&h->n, h->conn, h->s, id);
    close(h->fd);
    h->fd = -1;
    while (d->conn)
        pump(h);
    ck_assert_ptr_null(mcpgw_defer_conn(d));
    mcpgw_defer_error(d, -32603, "too late"); /* frees d; nothing to write to */
    json_object_put(id);
    harness_free(h);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("call");
    TCase *calls = tcase_create("call"), *streams = tcase_create("stream"),
          *defers = tcase_create("defer");
    SRunner *sr;
    int failed;
    tcase_add_test(calls, test_call_result_without_events_is_one_json_answer);
    tcase_add_test(calls, test_call_notification_switches_the_answer_to_sse_with_stream_ids);
    tcase_add_test(calls, test_call_events_are_logged_for_a_resume_of_their_stream);
    tcase_add_test(calls, test_call_log_below_the_sessions_level_is_not_sent);
    tcase_add_test(calls, test_call_request_is_answered_by_the_clients_reply);
    tcase_add_test(calls, test_call_request_times_out_with_neither_result_nor_error);
    tcase_add_test(calls, test_call_abort_answers_202_when_nothing_was_sent);
    tcase_add_test(calls, test_call_goes_on_when_its_client_leaves);
    suite_add_tcase(s, calls);
    tcase_add_test(streams, test_stream_send_logs_and_writes_to_the_attached_get_stream);
    tcase_add_test(streams, test_stream_attach_with_replay_sends_the_logged_events_first);
    tcase_add_test(streams,
                   test_stream_hold_queues_deliveries_until_the_release_and_drops_old_ones);
    suite_add_tcase(s, streams);
    tcase_add_test(defers, test_defer_finds_its_session_again_only_while_it_exists);
    tcase_add_test(defers, test_defer_answer_after_the_client_left_is_dropped);
    suite_add_tcase(s, defers);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
