/* exchange_impl.h - what exchange.c (the client side: heads, request bodies, moves, closing)
 * shares with exchange_response.c (response heads and bodies, stream resumption, the upstream
 * callbacks); included by those two files only (an internal pair). */
#ifndef MCPGW_BALANCER_EXCHANGE_IMPL_H
#define MCPGW_BALANCER_EXCHANGE_IMPL_H

#include "balancer/exchange.h"
#include "balancer/nodes.h"
#include "balancer/resume.h"
#include "balancer/upstream.h"
#include "common/http.h"

#include <event2/event_struct.h>
#include <stdint.h>
#include <sys/queue.h>

#define MCPGW_BAL_RESUME_TRIES                                                                     \
    3 /* a stream moves at most this often in a row without an answer                              \
       */

enum cstate { C_HEAD, C_FORWARD, C_TUNNEL, C_CLOSING };
/* Timeout lists, and L_CLOSED: clients closed and waiting to be freed from the loop. */
enum clist_kind { L_NONE, L_HEAD, L_BODY, L_IDLE, L_LINGER, L_CLOSED, L_COUNT };
enum rstate { R_HEAD, R_BODY };
enum rmode { R_NONE, R_LENGTH, R_CHUNKED, R_EOF, R_TUNNEL };

struct request;
struct bufferevent;
struct evbuffer;

/* A client connection. Idle, it is this struct plus its bufferevent (whose buffers are empty):
 * nothing else. Plain sockets are read through rev (see on_client_readable); TLS ones by the
 * OpenSSL bufferevent. Writing always goes through the bufferevent. */
struct client {
    struct event rev;
    struct bufferevent *bev;
    struct mcpgw_bal_exchange_set *xs;
    struct request *rq;       /* the request in flight, if any */
    TAILQ_ENTRY(client) link; /* timeout list */
    uint32_t deadline;        /* set ms */
    uint32_t scanned;         /* head bytes already searched for the blank line */
    uint32_t ip4;             /* IPv4 peer (network order) when v4 is set */
    uint8_t state;            /* enum cstate */
    uint8_t list;             /* enum clist_kind */
    uint8_t keep_alive : 1;   /* keep the connection after the response in flight */
    uint8_t http10 : 1;       /* HTTP/1.0 client: no chunked responses */
    uint8_t paused : 1;       /* reading paused: the upstream's output is full */
    uint8_t send_timeout : 1; /* a send timeout is armed (our output is full) */
    uint8_t v4 : 1;
    uint8_t resumed : 1; /* its stream went on at another node: no error response can follow */
    uint8_t closed : 1;  /* closed: no I/O, no callbacks; freed from the loop (on_reap) */
};
_Static_assert(sizeof(struct client) <= sizeof(struct event) + 64,
               "an idle client must stay small");

/* The request in flight on a client, from its head to the end of its response. It owns the
 * upstream carrying it and is that upstream's owner (its callbacks get the request); when the
 * request moves to another node, it keeps its state and takes another upstream. */
struct request {
    struct client *c;
    struct mcpgw_bal_upstream *up;   /* NULL only while it moves */
    struct mcpgw_bal_resume *resume; /* an SSE stream the balancer can re-open elsewhere */
    uint64_t start_us;
    uint64_t tried; /* bitmap of slots tried */
    int64_t req_left;
    int64_t resp_left;
    uint64_t req_body; /* decoded chunked body bytes */
    struct mcpgw_chunked req_dec;
    struct mcpgw_chunked resp_dec;
    char *sid; /* routing key copy (owned), NULL when routed by load */
    uint32_t scanned;
    uint16_t sidlen;
    uint8_t rstate, rmode;
    uint8_t req_chunked : 1, req_done : 1, upgrade_req : 1, head_req : 1, resp_keep : 1,
        dechunk : 1, mux : 1 /* may go as a stream of the node's mux */,
        resuming : 1 /* re-opened elsewhere: the new node's head is not the client's */,
        up_paused : 1 /* the upstream is paused: the client's output is full */,
        listen : 1 /* a subscriptions/listen stream (Mcp-Method), its body in the kept head */,
        rechunk : 1 /* the body is decoded and chunked again (a listen stream re-opened) */,
        skip_ack : 1 /* dropping the re-opened listen stream's acknowledgement */,
        skip_nl : 1 /* the last byte dropped was a LF */;
    uint8_t resumes; /* times its stream moved */
};

TAILQ_HEAD(clist, client);

struct mcpgw_bal_exchange_set {
    struct event_base *base;
    const struct mcpgw_bal_config *cfg;
    struct mcpgw_bal_worker_stats *st;
    struct mcpgw_bal_nodes *nodes;
    struct mcpgw_bal_upstream_set *ups;
    struct ssl_ctx_st *tls;
    struct evbuffer *scratch; /* a request head being rewritten */
    struct event *reap;       /* frees the clients on L_CLOSED */
    struct clist lists[L_COUNT];
    uint32_t timeouts[L_COUNT];
    uint64_t t0;
    unsigned nclients;
    int draining;
    mcpgw_bal_exchange_empty_fn empty;
    void *arg;
};

static inline struct mcpgw_bal_node_stats *nstats(struct mcpgw_bal_exchange_set *xs, int slot)
{
    return mcpgw_bal_nodes_stats(xs->nodes, slot);
}

static inline const char *node_id(struct mcpgw_bal_exchange_set *xs, int slot)
{
    return mcpgw_bal_nodes_id(xs->nodes, slot);
}

/* exchange.c */
void mcpgw_bal_exchange_list_remove(struct client *c);
void mcpgw_bal_exchange_list_append(struct client *c, enum clist_kind k);
void mcpgw_bal_exchange_read_on(struct client *c);
/* Send what is queued to c now; a client that is gone is closed (-1, c->closed set). */
int mcpgw_bal_exchange_push(struct client *c);
/* End rq: its upstream is closed (not reused), and the client forgets it. */
void mcpgw_bal_exchange_request_free(struct request *rq);
/* Drop the request in flight, flush what is queued, then close. */
void mcpgw_bal_exchange_close_when_flushed(struct client *c);
/* Answer with a JSON-RPC error (unless inside a response already) and close. */
void mcpgw_bal_exchange_fail_json(struct client *c, int status, const char *why);
/* Stop all I/O on c and end its request now; c is freed from the loop. Safe twice. */
void mcpgw_bal_exchange_close(struct client *c);
/* Read the next request head from c's input (state C_HEAD). */
void mcpgw_bal_exchange_process(struct client *c);
struct mcpgw_bal_upstream *mcpgw_bal_exchange_route(struct mcpgw_bal_exchange_set *xs,
                                                    struct request *rq, const char *cause,
                                                    char *why, size_t whylen);
void mcpgw_bal_exchange_move(struct request *rq, const char *cause);
void mcpgw_bal_exchange_relay_body(struct request *rq);
int mcpgw_bal_exchange_relay_chunked(struct mcpgw_chunked *d, struct evbuffer *src,
                                     struct evbuffer *dst, mcpgw_chunk_data_fn on_data, void *arg);

/* exchange_response.c */
void mcpgw_bal_exchange_relay_response(struct request *rq);
extern const struct mcpgw_bal_upstream_cb mcpgw_bal_exchange_upstream_cb;

#endif
