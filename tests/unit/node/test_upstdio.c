/* test_upstdio.c - the supervised stdio child: the real @modelcontextprotocol/server-everything
 * in stdio mode (initialize, tools/list, a call; killed mid-call: the in-flight error at once,
 * the restart, a working child again), and small sh children for the faults (non-JSON output,
 * stderr, over-long lines, a child that ignores SIGTERM, one that never answers, one that exits
 * at once, one that does not exist). Needs MCPGW_NPM (tests/run.sh sets it). */
#include "node/upstdio.h"

#include "tests/unit/check-run.h"
#include "tests/unit/upkit.h"

#include <check.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static struct event_base *base;

struct sup {
    int starts, exits, msgs, progress, hangs, stopped;
    pid_t pid;
    long restart_in[8];
    int status;
    char last_method[128];
};

static void on_start(void *arg, pid_t pid)
{
    struct sup *s = arg;
    s->starts++;
    s->pid = pid;
}

static void on_exit_cb(void *arg, int status, long restart_in_ms)
{
    struct sup *s = arg;
    if (s->exits < 8)
        s->restart_in[s->exits] = restart_in_ms;
    s->exits++;
    s->status = status;
}

static void on_message(void *arg, const struct mcpgw_jsonrpc_msg *m)
{
    struct sup *s = arg;
    s->msgs++;
    if (m->method && strcmp(m->method, "notifications/progress") == 0)
        s->progress++;
    snprintf(s->last_method, sizeof(s->last_method), "%s", m->method ? m->method : "");
}

static void on_hang(void *arg, const char *method, long waited_ms)
{
    ((struct sup *)arg)->hangs++;
}

static const struct mcpgw_upstdio_cbs cbs = {on_start, on_exit_cb, on_message, on_hang};

struct reply {
    int done, err;
    char why[512], result[8192];
};

static void on_reply(void *arg, enum mcpgw_upstdio_err err, const char *why,
                     const struct mcpgw_jsonrpc_msg *m)
{
    struct reply *r = arg;
    r->done = 1;
    r->err = err;
    snprintf(r->why, sizeof(r->why), "%s", why);
    if (m)
        snprintf(r->result, sizeof(r->result), "%s",
                 json_object_to_json_string(m->result ? m->result : m->error));
}

#define RUN_UNTIL(cond, ms)                                                                        \
    do {                                                                                           \
        long d_ = upkit_now_ms() + (ms);                                                           \
        int z_ = 0;                                                                                \
        while (!(cond) && upkit_now_ms() < d_)                                                     \
            upkit_run_until(base, &z_, 20);                                                        \
    } while (0)

static struct mcpgw_upstdio *spawn(struct sup *s, const char *const *argv, long timeout_ms,
                                   size_t max_msg)
{
    struct mcpgw_upstdio_cfg cfg = {.name = "ev",
                                    .argv = argv,
                                    .restart_min_ms = 100,
                                    .stop_grace_ms = 300,
                                    .timeout_ms = timeout_ms,
                                    .max_msg = max_msg};
    struct mcpgw_upstdio *u;
    char err[256];
    signal(SIGPIPE, SIG_IGN);
    base = event_base_new();
    u = mcpgw_upstdio_new(base, &cfg, &cbs, s);
    ck_assert_msg(mcpgw_upstdio_start(u, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(s->starts, 1);
    return u;
}

static void request(struct mcpgw_upstdio *u, struct reply *r, const char *method,
                    const char *params, long ms)
{
    ck_assert_ptr_nonnull(
        mcpgw_upstdio_request(u, method, params ? json_tokener_parse(params) : NULL, on_reply, r));
    RUN_UNTIL(r->done, ms);
    ck_assert_msg(r->done, "%s was not answered within %ld ms", method, ms);
}

/* The argv of server-everything in stdio mode, from MCPGW_NPM. */
static const char *const *everything(void)
{
    static char script[1024];
    static const char *argv[4];
    const char *npm = getenv("MCPGW_NPM");
    ck_assert_msg(npm && *npm,
                  "MCPGW_NPM is not set: run through tests/run.sh or set it to the "
                  "folder holding node_modules/@modelcontextprotocol/server-everything");
    snprintf(script, sizeof(script),
             "%s/node_modules/@modelcontextprotocol/server-everything/dist/index.js", npm);
    ck_assert_msg(access(script, R_OK) == 0,
                  "%s is missing: install the test packages (deploy/deps.sh)", script);
    argv[0] = "node";
    argv[1] = script;
    argv[2] = "stdio";
    argv[3] = NULL;
    return argv;
}

static void initialize(struct mcpgw_upstdio *u)
{
    struct reply r = {0};
    static const char n[] = "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}";
    request(u, &r, "initialize",
            "{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{},\"clientInfo\":{\"name\":"
            "\"mcpgw\",\"version\":\"1\"}}",
            20000);
    ck_assert_msg(r.err == MCPGW_UPSTDIO_OK && strstr(r.result, "\"protocolVersion\""), "%s %s",
                  r.why, r.result);
    ck_assert_int_eq(mcpgw_upstdio_send(u, n, sizeof(n) - 1), 0);
}

START_TEST(test_upstdio_splits_command_lines_without_expanding)
{
    char err[128];
    char **a = mcpgw_upstdio_split("npx -y  'a b' \"c \\\"d\\\" $HOME\" e\\ f ~/x $(id)", err,
                                   sizeof(err));
    const char *want[] = {"npx", "-y", "a b", "c \"d\" $HOME", "e f", "~/x", "$(id)", NULL};
    ck_assert_ptr_nonnull(a);
    for (int i = 0; want[i]; i++)
        ck_assert_str_eq(a[i], want[i]);
    ck_assert_ptr_null(a[7]);
    mcpgw_upstdio_argv_free(a);
    ck_assert_ptr_null(mcpgw_upstdio_split("node 'x", err, sizeof(err)));
    ck_assert_msg(strstr(err, "unterminated '"), "%s", err);
    ck_assert_ptr_null(mcpgw_upstdio_split("node \"x", err, sizeof(err)));
    ck_assert_msg(strstr(err, "unterminated \""), "%s", err);
    ck_assert_ptr_null(mcpgw_upstdio_split("   ", err, sizeof(err)));
    ck_assert_msg(strstr(err, "empty"), "%s", err);
}
END_TEST

START_TEST(test_upstdio_runs_server_everything_and_restarts_it_after_a_kill)
{
    struct sup s = {0};
    struct reply list = {0}, echo = {0}, longop = {0}, again = {0};
    struct mcpgw_upstdio *u = spawn(&s, everything(), 0, 0);
    pid_t first;
    long t0;
    initialize(u);
    request(u, &list, "tools/list", NULL, 10000);
    ck_assert_msg(strstr(list.result, "\"echo\"") && strstr(list.result, "get-sum"), "%s",
                  list.result);
    request(u, &echo, "tools/call", "{\"name\":\"echo\",\"arguments\":{\"message\":\"hi\"}}",
            10000);
    ck_assert_msg(strstr(echo.result, "Echo: hi"), "%s", echo.result);
    /* a long operation in flight, with progress; then the child is killed */
    ck_assert_ptr_nonnull(mcpgw_upstdio_request(
        u, "tools/call",
        json_tokener_parse("{\"name\":\"trigger-long-running-operation\",\"arguments\":"
                           "{\"duration\":30,\"steps\":30},\"_meta\":{\"progressToken\":1}}"),
        on_reply, &longop));
    RUN_UNTIL(s.progress >= 1, 10000);
    ck_assert_int_ge(s.progress, 1);
    first = s.pid;
    t0 = upkit_now_ms();
    kill(first, SIGKILL);
    RUN_UNTIL(longop.done, 5000);
    ck_assert_int_eq(longop.err, MCPGW_UPSTDIO_E_EXITED);
    ck_assert_msg(strstr(longop.why, "upstream ev") && strstr(longop.why, "exited") &&
                      strstr(longop.why, "tools/call"),
                  "%s", longop.why);
    ck_assert_int_lt(upkit_now_ms() - t0, 2000); /* at once, not at some timeout */
    ck_assert_int_eq(s.exits, 1);
    ck_assert_int_eq(s.restart_in[0], 100);
    RUN_UNTIL(s.starts == 2, 5000);
    ck_assert_int_eq(s.starts, 2);
    ck_assert_int_ne(s.pid, first);
    ck_assert_uint_eq(mcpgw_upstdio_restarts(u), 1);
    initialize(u);
    request(u, &again, "tools/call", "{\"name\":\"echo\",\"arguments\":{\"message\":\"back\"}}",
            10000);
    ck_assert_msg(strstr(again.result, "Echo: back"), "%s", again.result);
    mcpgw_upstdio_free(u);
    event_base_free(base);
}
END_TEST

START_TEST(test_upstdio_drops_non_json_and_logs_stderr_with_the_name)
{
    struct sup s = {0};
    const char *argv[] = {
        "sh", "-c",
        "echo 'Starting server...'; echo 'oops' >&2; "
        "echo '{\"jsonrpc\":\"2.0\",\"method\":\"notifications/after\"}'; exec sleep 30",
        NULL};
    char logpath[] = "/tmp/test_upstdio_log_XXXXXX", buf[4096] = "";
    int fd = mkstemp(logpath), saved = dup(2), n;
    struct mcpgw_upstdio *u;
    dup2(fd, 2); /* the log goes to stderr: read it back */
    u = spawn(&s, argv, 0, 0);
    RUN_UNTIL(s.msgs >= 1, 5000);
    ck_assert_int_eq(s.msgs, 1);
    ck_assert_str_eq(s.last_method, "notifications/after");
    mcpgw_upstdio_free(u);
    event_base_free(base);
    dup2(saved, 2);
    n = (int)pread(fd, buf, sizeof(buf) - 1, 0);
    buf[n > 0 ? n : 0] = 0;
    close(fd);
    unlink(logpath);
    ck_assert_msg(strstr(buf, "upstream ev: dropped output that is not JSON-RPC") &&
                      strstr(buf, "Starting server..."),
                  "log: %s", buf);
    ck_assert_msg(strstr(buf, "upstream ev stderr: oops"), "log: %s", buf);
}
END_TEST

START_TEST(test_upstdio_drops_a_line_over_the_cap_and_keeps_the_next)
{
    struct sup s = {0};
    const char *argv[] = {
        "sh", "-c",
        "head -c 5000 /dev/zero | tr '\\0' x; echo; "
        "echo '{\"jsonrpc\":\"2.0\",\"method\":\"notifications/small\"}'; exec sleep 30",
        NULL};
    struct mcpgw_upstdio *u = spawn(&s, argv, 0, 1024);
    RUN_UNTIL(s.msgs >= 1, 5000);
    ck_assert_int_eq(s.msgs, 1);
    ck_assert_str_eq(s.last_method, "notifications/small");
    mcpgw_upstdio_free(u);
    event_base_free(base);
}
END_TEST

static int stopped;
static void on_stopped(void *arg)
{
    stopped = 1;
}

START_TEST(test_upstdio_stop_kills_a_child_that_ignores_sigterm_after_the_grace)
{
    struct sup s = {0};
    const char *argv[] = {"sh", "-c",
                          "trap '' TERM; echo '{\"jsonrpc\":\"2.0\",\"method\":\"ready\"}'; "
                          "while :; do sleep 1; done",
                          NULL};
    struct mcpgw_upstdio *u = spawn(&s, argv, 0, 0);
    long t0;
    RUN_UNTIL(s.msgs >= 1, 5000); /* the trap is set */
    ck_assert_int_eq(s.msgs, 1);
    t0 = upkit_now_ms();
    mcpgw_upstdio_stop(u, on_stopped, NULL);
    RUN_UNTIL(stopped, 5000);
    ck_assert(stopped);
    ck_assert_int_ge(upkit_now_ms() - t0, 290);
    ck_assert_int_eq(s.exits, 1);
    ck_assert_int_eq(s.restart_in[0], -1);
    ck_assert(WIFSIGNALED(s.status) && WTERMSIG(s.status) == SIGKILL);
    ck_assert(!mcpgw_upstdio_running(u));
    {
        int z = 0; /* and it stays stopped */
        upkit_run_until(base, &z, 400);
    }
    ck_assert_int_eq(s.starts, 1);
    mcpgw_upstdio_free(u);
    event_base_free(base);
}
END_TEST

START_TEST(test_upstdio_a_child_that_never_answers_fires_the_hang_hook)
{
    struct sup s = {0};
    struct reply r = {0};
    const char *argv[] = {"sh", "-c", "exec cat >/dev/null", NULL};
    struct mcpgw_upstdio *u = spawn(&s, argv, 200, 0);
    request(u, &r, "tools/call", "{\"name\":\"x\"}", 5000);
    ck_assert_int_eq(r.err, MCPGW_UPSTDIO_E_TIMEOUT);
    ck_assert_int_eq(s.hangs, 1);
    ck_assert_msg(strstr(r.why, "no answer to tools/call within"), "%s", r.why);
    ck_assert(mcpgw_upstdio_running(u)); /* restarting is the breaker's call, not ours */
    mcpgw_upstdio_free(u);
    event_base_free(base);
}
END_TEST

START_TEST(test_upstdio_backs_off_exponentially_when_the_child_keeps_exiting)
{
    struct sup s = {0};
    const char *argv[] = {"sh", "-c", "exit 3", NULL};
    struct mcpgw_upstdio *u = spawn(&s, argv, 0, 0);
    struct reply r = {0};
    RUN_UNTIL(s.exits >= 4, 10000);
    ck_assert_int_ge(s.exits, 4);
    ck_assert(WIFEXITED(s.status) && WEXITSTATUS(s.status) == 3);
    ck_assert_int_eq(s.restart_in[0], 100);
    ck_assert_int_eq(s.restart_in[1], 200);
    ck_assert_int_eq(s.restart_in[2], 400);
    ck_assert_int_eq(s.restart_in[3], 800);
    /* between children a request is refused at once, not queued */
    if (!mcpgw_upstdio_running(u))
        ck_assert_ptr_null(mcpgw_upstdio_request(u, "ping", NULL, on_reply, &r));
    mcpgw_upstdio_free(u);
    event_base_free(base);
}
END_TEST

START_TEST(test_upstdio_a_missing_command_is_a_clear_error)
{
    struct sup s = {0};
    const char *argv[] = {"mcpgw-no-such-command", NULL};
    struct mcpgw_upstdio_cfg cfg = {.name = "ev", .argv = argv};
    char err[256];
    struct mcpgw_upstdio *u;
    base = event_base_new();
    u = mcpgw_upstdio_new(base, &cfg, &cbs, &s);
    ck_assert_int_eq(mcpgw_upstdio_start(u, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "cannot run 'mcpgw-no-such-command'"), "%s", err);
    ck_assert_int_eq(s.starts, 0);
    mcpgw_upstdio_free(u);
    event_base_free(base);
}
END_TEST

int main(void)
{
    const TTest *tests[] = {
        test_upstdio_splits_command_lines_without_expanding,
        test_upstdio_runs_server_everything_and_restarts_it_after_a_kill,
        test_upstdio_drops_non_json_and_logs_stderr_with_the_name,
        test_upstdio_drops_a_line_over_the_cap_and_keeps_the_next,
        test_upstdio_stop_kills_a_child_that_ignores_sigterm_after_the_grace,
        test_upstdio_a_child_that_never_answers_fires_the_hang_hook,
        test_upstdio_backs_off_exponentially_when_the_child_keeps_exiting,
        test_upstdio_a_missing_command_is_a_clear_error,
    };
    return mcpgw_check_run("upstdio", "core", tests, sizeof(tests) / sizeof(tests[0]));
}
