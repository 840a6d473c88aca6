/* upstdio.h - a supervised stdio upstream: one child process speaking newline-delimited JSON-RPC
 * on stdin/stdout, its stderr logged, restarted with backoff when it exits, stopped on request. */
#ifndef MCPGW_NODE_UPSTDIO_H
#define MCPGW_NODE_UPSTDIO_H

#include "common/jsonrpc.h"

#include <stddef.h>
#include <sys/types.h>

struct event_base;
struct mcpgw_upstdio;
struct mcpgw_upstdio_call;

enum mcpgw_upstdio_err {
    MCPGW_UPSTDIO_OK,
    MCPGW_UPSTDIO_E_EXITED,  /* the child exited (or was killed) before answering */
    MCPGW_UPSTDIO_E_DOWN,    /* no child is running (starting, backing off, stopped) */
    MCPGW_UPSTDIO_E_TIMEOUT, /* no answer within timeout_ms (the hang hook fired) */
    MCPGW_UPSTDIO_E_BUSY,    /* the child does not read its stdin: the write queue is full */
    MCPGW_UPSTDIO_E_COUNT
};
const char *mcpgw_upstdio_err_str(enum mcpgw_upstdio_err e);

#define MCPGW_UPSTDIO_MAX_MSG (16u << 20)

struct mcpgw_upstdio_cfg {
    const char *name;        /* for logs and errors (copied) */
    const char *const *argv; /* NULL-terminated; argv[0] is looked up in PATH (copied) */
    long restart_min_ms;     /* first restart delay, doubled per quick exit; 0 = 100 ms */
    long restart_max_ms;     /* 0 = 30 s */
    long stable_ms;          /* a child that ran this long restarts at the minimum; 0 = 10 s */
    long stop_grace_ms;      /* SIGTERM, then SIGKILL after this; 0 = 5 s */
    long timeout_ms;         /* per request; 0 = none. Passing it fires on_hang */
    size_t max_msg;          /* 0 = MCPGW_UPSTDIO_MAX_MSG */
};

/* All optional; all on the loop thread. Callbacks may send, cancel and stop; mcpgw_upstdio_free
 * from inside one is deferred until it returns. */
struct mcpgw_upstdio_cbs {
    /* A child is running (the first one, or one after a restart): the owner initializes it. */
    void (*on_start)(void *arg, pid_t pid);
    /* The child exited: status as from waitpid; restart_in_ms is the delay before the next one,
     * or -1 when none follows (stopped). In-flight calls have already failed. */
    void (*on_exit)(void *arg, int status, long restart_in_ms);
    /* A notification or a server-to-client request from the child (m borrowed). */
    void (*on_message)(void *arg, const struct mcpgw_jsonrpc_msg *m);
    /* A request went timeout_ms without an answer: the hook for a circuit breaker (which may
     * decide to mcpgw_upstdio_restart). The call then fails with E_TIMEOUT. */
    void (*on_hang)(void *arg, const char *method, long waited_ms);
};

typedef void (*mcpgw_upstdio_reply_fn)(void *arg, enum mcpgw_upstdio_err err, const char *why,
                                       const struct mcpgw_jsonrpc_msg *m);

/* Splits a command line the way a shell would in the simple cases: blanks separate words,
 * '...' is literal, "..." allows \" \\ \$ \` escapes, a backslash outside quotes escapes the
 * next character. Nothing is expanded ($VAR, ~, globs, $(...) stay literal) and there are no
 * pipes or redirections. Returns a NULL-terminated argv (free with mcpgw_upstdio_argv_free), or
 * NULL with err filled (unterminated quote, empty command). */
char **mcpgw_upstdio_split(const char *cmdline, char *err, size_t errlen);
void mcpgw_upstdio_argv_free(char **argv);

/* The process must ignore SIGPIPE (mcpgw-node does): a write to the stdin of a child that just
 * died must fail with EPIPE, not kill the gateway. argv is copied. */
struct mcpgw_upstdio *mcpgw_upstdio_new(struct event_base *base,
                                        const struct mcpgw_upstdio_cfg *cfg,
                                        const struct mcpgw_upstdio_cbs *cbs, void *arg);
/* Spawns the child. Returns 0 (on_start fires before this returns), or -1 with err filled when it
 * cannot be spawned (no such command, no pipes); supervision then retries with backoff. */
int mcpgw_upstdio_start(struct mcpgw_upstdio *s, char *err, size_t errlen);
/* Stops the child: stdin closed and SIGTERM to its process group, SIGKILL after the grace
 * period; on_exit fires with -1, then done (optional). No restart follows. */
void mcpgw_upstdio_stop(struct mcpgw_upstdio *s, void (*done)(void *arg), void *arg);
/* Kills the running child's process group now (SIGKILL); supervision restarts it as after a
 * crash. For the breaker, when the child hangs. */
void mcpgw_upstdio_restart(struct mcpgw_upstdio *s);
/* SIGKILLs and reaps the child, fails nothing (no callbacks), frees s. */
void mcpgw_upstdio_free(struct mcpgw_upstdio *s);

/* Sends a request with an id of our own (params taken). Returns the call, owned by s until
 * reply returns, or NULL after calling nothing when no child runs or its stdin is full (check
 * mcpgw_upstdio_running). reply fires exactly once unless the call is cancelled. */
struct mcpgw_upstdio_call *mcpgw_upstdio_request(struct mcpgw_upstdio *s, const char *method,
                                                 json_object *params, mcpgw_upstdio_reply_fn reply,
                                                 void *arg);
long long mcpgw_upstdio_call_id(const struct mcpgw_upstdio_call *c);
/* Optional, set right after mcpgw_upstdio_request: when c's answer is a plain result (exactly
 * "jsonrpc":"2.0", c's id and an object "result", strictly valid JSON: the contract of
 * node/upmcp.h's on_result_raw), raw gets the result's text (borrowed for the callback) instead
 * of reply getting the parsed message. Every other answer still goes to reply. */
typedef void (*mcpgw_upstdio_raw_fn)(void *arg, const char *result, size_t len);
void mcpgw_upstdio_call_set_raw(struct mcpgw_upstdio_call *c, mcpgw_upstdio_raw_fn raw);
/* No callback fires for c afterwards (the child is not told: send notifications/cancelled). */
void mcpgw_upstdio_call_cancel(struct mcpgw_upstdio_call *c);
/* Writes one message (a notification or a response; copied) as one line. Returns 0, or -1 when
 * no child runs, the message holds a newline, or the write queue is full. */
int mcpgw_upstdio_send(struct mcpgw_upstdio *s, const char *msg, size_t len);

/* The running child's pid, or 0. */
pid_t mcpgw_upstdio_pid(const struct mcpgw_upstdio *s);
int mcpgw_upstdio_running(const struct mcpgw_upstdio *s);
/* How many times the child was restarted after an exit. */
unsigned mcpgw_upstdio_restarts(const struct mcpgw_upstdio *s);

#endif
