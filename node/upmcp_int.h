/* upmcp_int.h - what upmcp.c (the MCP client session over Streamable HTTP) and upmcp26.c (its
 * 2026-07-28 era: discover, input_required rounds, the listen filter) share: an internal pair.
 *
 * Not for other modules: they see the session and its calls only through upmcp.h. */
#ifndef MCPGW_NODE_UPMCP_INT_H
#define MCPGW_NODE_UPMCP_INT_H

#include "node/upmcp.h"

#include <event2/util.h>

struct mcpgw_hc_req;
struct mcpgw_sse_parser;
struct mcpgw_up26_round;
struct mcpgw_upcred;
struct mcpgw_upcred_wait;
struct mcpgw_upmcp_lstream;
struct event;

/* The most extra headers of one request: Mcp-Method, Mcp-Name and the Mcp-Param-* of a tool. */
#define MCPGW_UPMCP_EXTRA 16

enum call_kind { CALL_REQUEST, CALL_SEND, CALL_INIT, CALL_INITIALIZED, CALL_DELETE };
enum body_mode { BODY_NONE, BODY_JSON, BODY_SSE, BODY_ERROR };
/* Where a 2026-07-28 call is between HTTP exchanges; the steps but WAIT run from u->kick, never
 * inside a caller's callback. */
enum call_step {
    STEP_NONE,  /* an HTTP exchange is running (or the session era) */
    STEP_ASK,   /* the next input request goes to on_message */
    STEP_WAIT,  /* waiting for the answer to input request input_id */
    STEP_RETRY, /* every input request answered: send the request again */
    STEP_FAIL,  /* the client answered an input request with an error: end with it */
    STEP_LOCAL  /* answered here (resources/subscribe): end with {} */
};

/* Events parsed from a stream, dispatched only after the parser returns, so that a callback may
 * cancel the call (or free the session) without pulling the parser from under itself. */
struct ev_item {
    char *id, *data;
    size_t len;
};
struct ev_queue {
    struct ev_item *v;
    size_t n, cap;
};

struct mcpgw_upmcp_call {
    struct mcpgw_upmcp *u;
    struct mcpgw_upmcp_call *prev, *next;
    enum call_kind kind;
    struct mcpgw_hc_req *req;
    long long id;
    char *method;
    struct mcpgw_upmcp_call_cbs cbs;
    void (*send_done)(void *arg, enum mcpgw_upmcp_err err, const char *why);
    void *arg;
    enum body_mode mode;
    long status;
    char *body;
    size_t body_len, body_cap;
    struct mcpgw_sse_parser *sse;
    struct ev_queue q;
    int finished;
    int busy; /* inside a dispatch: a cancel only marks it */
    /* A result passed through (on_result_raw): its text, borrowed from the body or the event
     * being dispatched, for mcpgw_upmcp_finish */
    const char *raw;
    size_t raw_len;
    /* With OAuth: the request and its extra headers kept until it is answered, to send again
     * after a 401 (without OAuth they are freed once sent) */
    char *post_body;
    size_t post_len;
    char *extra[MCPGW_UPMCP_EXTRA + 1]; /* NULL-terminated */
    struct mcpgw_upcred_wait *wait;     /* waiting for a token */
    unsigned gen;                       /* the token it was sent with */
    int auth_retried;
    /* 2026-07-28 */
    json_object *params; /* the request's params, for a retry */
    struct mcpgw_up26_round *round;
    enum call_step step;
    int rounds;
    char input_id[32];   /* the id of the input request the client is asked */
    json_object *failed; /* STEP_FAIL: the client's error object */
    /* HeaderMismatch: the tools are listed again (relist, pages so far), then one retry */
    int mismatched, relist_pages;
    struct mcpgw_upmcp_call *relist;
};

struct mcpgw_upmcp {
    struct mcpgw_hc *hc;
    char *name, *url;
    char **headers;
    size_t nheaders;
    long timeout_ms;
    size_t max_msg;
    int flags;
    struct mcpgw_upcred *cred;          /* NULL: no OAuth */
    struct mcpgw_upcred *old_cred;      /* the source before a reload changed the settings */
    struct mcpgw_upcred_wait *get_wait; /* the GET stream waiting for a token */
    unsigned get_gen;
    int get_refused; /* the last GET was answered 401 */
    struct mcpgw_upmcp_cbs cbs;
    void *arg;
    char *sid, *version;
    json_object *server_result;
    int ready, initializing;
    long long next_id;
    /* 2026-07-28 */
    enum mcpgw_upmcp_era want_era;
    int era26;         /* speaking 2026-07-28 (after discover) */
    json_object *caps; /* the client capabilities of every request's _meta */
    char **watch;      /* resourceSubscriptions of the listen stream */
    size_t nwatch;
    long long next_input;
    int listen_broken;  /* the listen stream broke: fetch the lists again once it is back */
    unsigned watch_gen; /* counts the changes of watch (a stream knows the filter it has) */
    /* The listen streams (upmcp26.c; u->get stays NULL in this era): the current one, the one
     * opened with a new filter until it is acknowledged, and the one it replaced, kept open a
     * little longer for what the upstream sent on it before that acknowledgement. */
    struct mcpgw_upmcp_lstream *lcur, *lnext, *lold;
    struct event *retire; /* ends lold */
    /* Lists of a kind the upstream announces no list_changed for (tools, prompts, resources):
     * fetched again when their ttlMs runs out (ttl_ms: the current delay, doubled while no
     * answer comes). */
    struct event *ttl[3];
    long ttl_ms[3];
    struct event *kick; /* runs the calls' steps */
    struct mcpgw_upmcp_call *calls;
    /* the GET stream */
    int listen_wanted, listening, listen_got;
    struct mcpgw_hc_req *get;
    struct mcpgw_sse_parser *get_sse;
    struct ev_queue get_q;
    char *last_event_id;
    long backoff_ms;
    struct event *retry;
    /* lifetime */
    int busy, dying;
    void (*close_done)(void *arg);
    void *close_arg;
};

/* upmcp.c */
void mcpgw_upmcp_q_clear(struct ev_queue *q, size_t from);
/* The event parser's callback: queues an event into q (arg). */
void mcpgw_upmcp_q_push(void *arg, const char *id, const char *event, const char *data, size_t len);
/* Enter and leave a callback of u: u is freed only once the last one left (leave returns 1 then,
 * and the caller must not touch u). */
void mcpgw_upmcp_enter(struct mcpgw_upmcp *u);
int mcpgw_upmcp_leave(struct mcpgw_upmcp *u);
void mcpgw_upmcp_call_free(struct mcpgw_upmcp_call *c);
/* Ends call c once: its callback fires with the outcome (why from fmt, prefixed with the
 * upstream's name), then it is freed (after the dispatch that is running, if any). */
void mcpgw_upmcp_finish(struct mcpgw_upmcp_call *c, enum mcpgw_upmcp_err err,
                        const struct mcpgw_jsonrpc_msg *m, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Posts body (taken) for call c with the extra headers (taken, NULL-terminated, at most 3),
 * with the upstream's access token when it has OAuth (waiting for one first when none is at
 * hand). Returns 0, or -1 (logged) when the request could not start. */
int mcpgw_upmcp_call_post(struct mcpgw_upmcp_call *c, char *body, size_t len, char **extra);
/* Posts body (taken) as a new call of this kind, extra as for call_post. NULL on failure. */
struct mcpgw_upmcp_call *mcpgw_upmcp_call_start(struct mcpgw_upmcp *u, enum call_kind kind,
                                                const char *method, long long id, char *body,
                                                size_t len, char **extra);
/* Opens the GET stream (the listen stream in the 2026-07-28 era), waiting for a token first when
 * the upstream has OAuth and none is at hand. */
void mcpgw_upmcp_listen_open(struct mcpgw_upmcp *u);
/* Starts subscriptions/listen with the current filter, with auth (borrowed; NULL: none) as the
 * Authorization header. Its events go to the mcpgw_upmcp26_listen_* functions. NULL (logged)
 * when it could not start. */
struct mcpgw_hc_req *mcpgw_upmcp_listen_post(struct mcpgw_upmcp *u, const char *auth);
/* A listen stream was answered status st, not a stream: a new token for 401, none for 405,
 * otherwise mcpgw_upmcp_listen_again. */
void mcpgw_upmcp_listen_refused(struct mcpgw_upmcp *u, long st);
/* The stream is opened again after the backoff (when it is still wanted). */
void mcpgw_upmcp_listen_again(struct mcpgw_upmcp *u);
/* The end of connecting: on_ready fires with err (0: ready). */
void mcpgw_upmcp_ready(void *arg, enum mcpgw_upmcp_err err, const char *why);
/* Sends initialize, with u->caps. Returns 0 or -1. */
int mcpgw_upmcp_send_initialize(struct mcpgw_upmcp *u);

/* upmcp26.c */
/* Sends server/discover. Returns 0 or -1. */
int mcpgw_upmcp26_discover(struct mcpgw_upmcp *u);
/* The answer to server/discover: ready in the 2026-07-28 era, or (auto) initialize instead. */
void mcpgw_upmcp26_discover_reply(struct mcpgw_upmcp *u, enum mcpgw_upmcp_err err, const char *why,
                                  const struct mcpgw_jsonrpc_msg *m);
/* An input_required result m for call c: its rounds begin. */
void mcpgw_upmcp26_round_start(struct mcpgw_upmcp_call *c, const struct mcpgw_jsonrpc_msg *m);
/* u->kick's callback: runs the steps of the calls that have one. */
void mcpgw_upmcp26_on_kick(evutil_socket_t fd, short what, void *arg);
/* resources/subscribe and unsubscribe, answered here (params taken). */
struct mcpgw_upmcp_call *mcpgw_upmcp26_local_call(struct mcpgw_upmcp *u, const char *method,
                                                  json_object *params,
                                                  const struct mcpgw_upmcp_call_cbs *cbs,
                                                  void *arg);
/* Call c was answered an HTTP error (its body in c->body). When it is a tools/call refused with
 * HeaderMismatch (400, -32020: refused before it ran), the upstream's tools are listed again
 * and c is sent once more with the headers of the new schema (or ends with a clear error when
 * that was its retry): returns 1, and c may be gone. 0: not that, the caller ends c. */
int mcpgw_upmcp26_mismatch(struct mcpgw_upmcp_call *c);
/* mcpgw_upmcp_send in the 2026-07-28 era. */
int mcpgw_upmcp26_send(struct mcpgw_upmcp *u, const char *msg, size_t len,
                       void (*done)(void *arg, enum mcpgw_upmcp_err err, const char *why),
                       void *arg);
/* The listen stream's filter changed: a stream with the new one is opened beside the current
 * one, which is closed once the new one is acknowledged. */
void mcpgw_upmcp26_watch_changed(struct mcpgw_upmcp *u);
/* Opens the stream the filter asks for, unless it is open or opening (auth as for
 * mcpgw_upmcp_listen_post). */
void mcpgw_upmcp26_listen_open(struct mcpgw_upmcp *u, const char *auth);
/* The events of the listen streams' HTTP requests (r tells which stream). */
void mcpgw_upmcp26_listen_head(struct mcpgw_upmcp *u, struct mcpgw_hc_req *r);
void mcpgw_upmcp26_listen_body(struct mcpgw_upmcp *u, struct mcpgw_hc_req *r, const char *buf,
                               size_t len);
void mcpgw_upmcp26_listen_done(struct mcpgw_upmcp *u, struct mcpgw_hc_req *r, int err,
                               const char *why);
/* Closes every listen stream (idempotent). */
void mcpgw_upmcp26_listen_stop(struct mcpgw_upmcp *u);
/* The result (borrowed, edited) of call c: for tools/list, mcpgw_upmcp26_learn_tools; for a
 * list of a kind whose list_changed the upstream does not announce, the caller is told it
 * changed once its ttlMs has run out (so it fetches it again), until u is closed. */
void mcpgw_upmcp26_list_answer(struct mcpgw_upmcp_call *c, json_object *result);
/* A tools/list result (borrowed, edited) of the upstream: a tool whose x-mcp-header markings
 * break the revision's rules is taken out of it (logged); the inputSchema of each other tool is
 * kept for the Mcp-Param-* headers of its calls, by every session to the same URL (per-client
 * sessions never list tools themselves). */
void mcpgw_upmcp26_learn_tools(struct mcpgw_upmcp *u, json_object *result);
/* The Mcp-Param-* headers of method(params) (tools/call of a tool whose schema marks
 * x-mcp-header), at most max, malloc'd into out. Returns how many. */
int mcpgw_upmcp26_param_headers(struct mcpgw_upmcp *u, const char *method, json_object *params,
                                char **out, int max);

#endif
