/* limits.c - per-principal rate, concurrency and session limits at the front door of /mcp. */
#include "node/limits.h"

#include "common/hash.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/util.h"
#include "gossip/swim.h"
#include "gossip/wire.h"
#include "node/limitcfg.h"
#include "node/msg.h"
#include "node/node-t.h"
#include "node/registry.h"
#include "node/store.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define BUCKETS          4096   /* hash chains of the local table */
#define ENTS_MAX         100000 /* local entries; beyond it new principals are not limited here */
#define PARKED_MAX       4096   /* requests waiting for Redis; beyond it they are decided here */
#define REDIS_TIMEOUT_MS 250    /* a slower answer is not waited for: decided here */
#define SWEEP_MS         10000
#define SESSION_SET_TTL  "604800000" /* 7 days: the session set outlives any idle session */
#define SESSION_RETRY_S  5
#define TOOL_MAX         512  /* bytes of a tool name (MCP allows 128 characters; prefixes add) */
#define KEY_MAX          1200 /* "mcpgw:lim:{principal}:t:<interval>:<burst>:<tool>" fits */

/* One script for every admission that asks Redis: the session cap first (it consumes nothing),
 * then all rate buckets together, so a request refused by one bucket costs nothing in the
 * other. Time is Redis's own clock, so every node measures on the same one.
 * KEYS: the bucket keys, then the principal's session set when ARGV[2] > 0.
 * ARGV: number of buckets, session cap (0: none), then interval_us and burst per bucket.
 * Returns {0, 0} (admitted), {i, wait_us} (bucket i refused) or {-1, sessions} (cap). */
static const char script[] =
    "local nb, cap = tonumber(ARGV[1]), tonumber(ARGV[2]) "
    "if cap > 0 then "
    "  local n = 0 "
    "  for _, sid in ipairs(redis.call('SMEMBERS', KEYS[nb + 1])) do "
    "    if redis.call('EXISTS', 'mcpgw:{' .. sid .. '}:s') == 1 then n = n + 1 "
    "    else redis.call('SREM', KEYS[nb + 1], sid) end "
    "  end "
    "  if n >= cap then return {-1, n} end "
    "end "
    "local t = redis.call('TIME') "
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2]) "
    "local nt, worst, idx = {}, 0, 0 "
    "for i = 1, nb do "
    "  local iv, b = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i]) "
    "  local tat = tonumber(redis.call('GET', KEYS[i]) or '0') "
    "  if tat < now then tat = now end "
    "  nt[i] = tat + iv "
    "  local wait = nt[i] - iv * b - now "
    "  if wait > worst then worst, idx = wait, i end "
    "end "
    "if idx > 0 then return {idx, worst} end "
    "for i = 1, nb do "
    "  redis.call('SET', KEYS[i], string.format('%.0f', nt[i]), 'PX', "
    "             math.floor((nt[i] - now) / 1000) + 1) "
    "end "
    "return {0, 0}";

/* Local state of one key: a principal ("p\n<who>") or a principal's tool ("t\n<who>\n<tool>"). */
struct ent {
    struct ent *next;
    uint64_t tat;      /* local GCRA bucket (memory store, or the fallback) */
    uint32_t inflight; /* principal: calls in flight on this node */
    uint32_t refs;     /* parked checks pointing here */
    char **sids;       /* principal, memory store: sessions created (pruned on use) */
    uint32_t nsids;
    char key[];
};

enum fallback { FB_DOWN, FB_SLOW, FB_ERROR, FB_COUNT };
static const char *const fb_names[FB_COUNT] = {"redis_down", "redis_slow", "redis_error"};

/* What one admission asks for, copied from the rules (a reload may free them meanwhile). */
struct ask {
    int nb;              /* rate buckets: 0..2 */
    struct ent *ents[2]; /* their local entries */
    int kinds[2];        /* MCPGW_LIMIT_RATE / TOOL_RATE */
    uint64_t interval[2], burst[2];
    char text[2][80]; /* the rules as written, for the refusal */
    uint64_t cap;     /* sessions: the cap, 0 none */
    char cap_text[80];
    struct ent *pent; /* the principal's entry */
    char tool[TOOL_MAX];
    char rid[128]; /* the JSON-RPC id as JSON text */
};

/* A request waiting for Redis: the admission and a deep copy of the request. */
struct check {
    struct check *next, *prev;
    struct mcpgw_limits *l;
    struct mcpgw_http_conn *conn; /* NULL once the client left */
    struct event *timer;
    int decided;   /* answered (or handed on) already: a late reply only frees it */
    int eval_sent; /* NOSCRIPT was answered with EVAL once */
    struct ask a;
    struct mcpgw_http_req req;
    char buf[];
};

struct mcpgw_limits {
    struct mcpgw_node *n;
    mcpgw_http_handler_fn retry; /* the node's request handler, for parked requests admitted */
    struct ent *table[BUCKETS];
    unsigned nents;
    struct ent *current;  /* principal of the request being served */
    struct check *checks; /* parked */
    unsigned nchecks;
    int closing;
    char sha[41];
    struct event *sweep;
    uint64_t *limited[MCPGW_LIMIT_COUNT];
    uint64_t *fallbacks[FB_COUNT];
};

/* ---- the local table ---- */

static struct ent *ent_get(struct mcpgw_limits *l, const char *key, size_t len)
{
    uint64_t h = mcpgw_hash64(key, len);
    struct ent **b = &l->table[h % BUCKETS], *e;
    for (e = *b; e; e = e->next)
        if (strlen(e->key) == len && memcmp(e->key, key, len) == 0)
            return e;
    if (l->nents >= ENTS_MAX)
        return NULL;
    e = xcalloc(1, sizeof(*e) + len + 1);
    memcpy(e->key, key, len);
    e->next = *b;
    *b = e;
    l->nents++;
    return e;
}

/* Drop the sessions of e that this node no longer holds (memory store: they are gone). */
static void prune_sids(struct mcpgw_limits *l, struct ent *e)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < e->nsids; i++) {
        if (mcpgw_registry_lookup(l->n->reg, e->sids[i], strlen(e->sids[i])))
            e->sids[k++] = e->sids[i];
        else
            free(e->sids[i]);
    }
    e->nsids = k;
    if (!k) {
        free(e->sids);
        e->sids = NULL;
    }
}

static void ent_free(struct ent *e)
{
    for (uint32_t i = 0; i < e->nsids; i++)
        free(e->sids[i]);
    free(e->sids);
    free(e);
}

/* Every SWEEP_MS: forget what no longer limits anyone, so the table holds only principals
 * seen within the last bucket period. */
static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_limits *l = arg;
    uint64_t now = mcpgw_now_us();
    for (int i = 0; i < BUCKETS; i++)
        for (struct ent **pe = &l->table[i], *e; (e = *pe) != NULL;) {
            if (e->nsids)
                prune_sids(l, e);
            if (!e->inflight && !e->refs && !e->nsids && e->tat <= now) {
                *pe = e->next;
                ent_free(e);
                l->nents--;
            } else {
                pe = &e->next;
            }
        }
}

/* ---- what a request is ---- */

/* The client's address: the connection's peer, or behind a trusted balancer (the node checks
 * --balancer-secret) the last X-Forwarded-For entry, the one our balancer appended. */
static void address_of(struct mcpgw_limits *l, struct mcpgw_http_conn *c,
                       const struct mcpgw_http_req *req, char *out, size_t outlen)
{
    const struct mcpgw_http_header *fwd;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    snprintf(out, outlen, "-");
    if (l->n->cfg.balancer_secret[0] &&
        (fwd = mcpgw_http_find(&req->head, "x-forwarded-for")) != NULL) {
        size_t start = fwd->value_len, end = fwd->value_len;
        while (start > 0 && fwd->value[start - 1] != ',')
            start--;
        while (start < end && fwd->value[start] == ' ')
            start++;
        while (end > start && fwd->value[end - 1] == ' ')
            end--;
        if (end > start && end - start < outlen) {
            snprintf(out, outlen, "%.*s", (int)(end - start), fwd->value + start);
            return;
        }
    }
    if (getpeername(mcpgw_http_conn_fd(c), (struct sockaddr *)&ss, &sl) < 0)
        return;
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out, (socklen_t)outlen);
    else if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, out, (socklen_t)outlen);
}

/* A POST body that is a JSON-RPC request: its method, id (JSON text) and tools/call name.
 * Returns 0 for anything else (notifications and responses are never limited; a body that is
 * not JSON is refused further on, not here). */
static int inspect(const struct mcpgw_http_req *req, int *initialize, struct ask *a)
{
    json_tokener *tok = json_tokener_new();
    json_object *root = json_tokener_parse_ex(tok, req->body, (int)req->body_len), *id, *m, *p,
                *name;
    int rc = 0;
    json_tokener_free(tok);
    if (!root || !json_object_is_type(root, json_type_object) ||
        !json_object_object_get_ex(root, "method", &m) ||
        !json_object_is_type(m, json_type_string) || !json_object_object_get_ex(root, "id", &id))
        goto out;
    snprintf(a->rid, sizeof(a->rid), "%s", json_object_to_json_string_ext(id, 0));
    *initialize = strcmp(json_object_get_string(m), "initialize") == 0;
    if (strcmp(json_object_get_string(m), "tools/call") == 0 &&
        json_object_object_get_ex(root, "params", &p) &&
        json_object_object_get_ex(p, "name", &name) &&
        json_object_is_type(name, json_type_string) &&
        (size_t)json_object_get_string_len(name) < sizeof(a->tool))
        /* Whole or not at all: a name cut short would match no rule naming the tool (and share
         * a bucket with its namesakes). Longer names no tool has: principal rates only. */
        memcpy(a->tool, json_object_get_string(name), (size_t)json_object_get_string_len(name) + 1);
    rc = 1;
out:
    json_object_put(root);
    return rc;
}

/* ---- refusals ---- */

static void clean(char *out, size_t outlen, const char *v)
{
    size_t k = 0;
    for (size_t i = 0; v[i] && k + 1 < outlen; i++)
        out[k++] = (v[i] >= 0x20 && v[i] < 0x7f && v[i] != '"' && v[i] != '\\') ? v[i] : '?';
    out[k] = '\0';
}

/* The request's id (a reference to free), parsed again from its body: a->rid is cut to fit
 * the audit line, and a refusal must name the id whole. Refusals only. */
static json_object *request_id(const struct mcpgw_http_req *req)
{
    json_tokener *tok = json_tokener_new();
    json_object *root = json_tokener_parse_ex(tok, req->body, (int)req->body_len), *id = NULL;
    json_tokener_free(tok);
    if (json_object_object_get_ex(root, "id", &id))
        json_object_get(id);
    json_object_put(root);
    return id;
}

/* The client's address as text ("-" when unknown). */
static void peer_of(struct mcpgw_http_conn *c, char *out, size_t outlen)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    snprintf(out, outlen, "-");
    if (getpeername(mcpgw_http_conn_fd(c), (struct sockaddr *)&ss, &sl) != 0)
        return;
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out, (socklen_t)outlen);
    else if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, out, (socklen_t)outlen);
}

/* 429 with Retry-After and a JSON-RPC error naming the limit, counted and audited. c may be
 * freed once answered (outside its handler): nothing reads it afterwards. */
static void refuse(struct mcpgw_limits *l, struct mcpgw_http_conn *c,
                   const struct mcpgw_http_req *req, const struct ask *a, int kind,
                   const char *rule, uint64_t wait_us)
{
    const char *who = a->pent->key + 2;
    const struct mcpgw_http_header *sid = mcpgw_http_find(&req->head, "mcp-session-id"),
                                   *fwd = mcpgw_http_find(&req->head, "x-forwarded-for");
    uint64_t secs = (wait_us + 999999) / 1000000;
    char msg[800], hdr[48], kv[1600], p[520], s[80], rid[130], peer[64], f[80], t[130], tmp[80];
    json_object *id = request_id(req), *data;
    char *body;
    size_t len;
    if (secs == 0)
        secs = 1;
    /* The peer first: outside the connection's handler (a parked request), answering may free a
     * connection that asked to be closed. */
    peer_of(c, peer, sizeof(peer));
    (*l->limited[kind])++;
    (*l->n->st.http_rejects)++;
    snprintf(msg, sizeof(msg),
             "Too Many Requests: over the %s limit (limit %s %s%s%s) for this principal; retry "
             "after %llu s",
             mcpgw_limit_kind_str(kind),
             kind == MCPGW_LIMIT_TOOL_RATE ? "rate" : mcpgw_limit_kind_str(kind), rule,
             kind == MCPGW_LIMIT_TOOL_RATE ? " tool=" : "",
             kind == MCPGW_LIMIT_TOOL_RATE ? a->tool : "", (unsigned long long)secs);
    data = json_object_new_object();
    json_object_object_add(data, "limit", json_object_new_string(mcpgw_limit_kind_str(kind)));
    json_object_object_add(data, "retryAfter", json_object_new_int64((int64_t)secs));
    body = mcpgw_msg_error_data(id, -32000, msg, data, &len);
    snprintf(hdr, sizeof(hdr), "Retry-After: %llu\r\n", (unsigned long long)secs);
    mcpgw_http_respond(c, 429, "application/json", hdr, body, len);
    free(body);
    json_object_put(id);

    clean(p, sizeof(p), who);
    snprintf(tmp, sizeof(tmp), "%.*s", sid ? (int)(sid->value_len > 70 ? 70 : sid->value_len) : 1,
             sid ? sid->value : "-");
    clean(s, sizeof(s), tmp);
    clean(rid, sizeof(rid), a->rid[0] ? a->rid : "-");
    snprintf(tmp, sizeof(tmp), "%.*s", fwd ? (int)(fwd->value_len > 70 ? 70 : fwd->value_len) : 1,
             fwd ? fwd->value : "-");
    clean(f, sizeof(f), tmp);
    clean(t, sizeof(t), a->tool[0] ? a->tool : "-");
    snprintf(kv, sizeof(kv),
             "audit=limits status=429 reason=%s principal=\"%s\" session=\"%s\" request_id=\"%s\" "
             "remote=\"%s\" forwarded_for=\"%s\" tool=\"%s\" retry_after=%llu",
             mcpgw_limit_kind_str(kind), p, s, rid, peer, f, t, (unsigned long long)secs);
    mcpgw_log_kv(MCPGW_LOG_WARN, "request refused", kv);
}

/* ---- deciding here (memory store, or Redis unavailable) ---- */

/* Live serving members in the gossip view, this node included: the local share of a
 * cluster-wide budget is budget / members. */
static uint64_t live_nodes(struct mcpgw_limits *l)
{
    uint64_t k = 0;
    struct mcpgw_gossip *g = l->n->gossip;
    int cnt = g ? mcpgw_gossip_member_count(g) : 0;
    for (int i = 0; i < cnt; i++) {
        const struct mcpgw_member *m = mcpgw_gossip_member_get(g, i);
        if (m && m->state == MCPGW_MEMBER_ALIVE && (m->serving || m->is_self))
            k++;
    }
    return k ? k : 1;
}

/* Rates decided with the local buckets, each at 1/share of its budget. Returns 1 (admitted,
 * both buckets charged) or 0 (answered 429). */
static int decide_here(struct mcpgw_limits *l, struct mcpgw_http_conn *c,
                       const struct mcpgw_http_req *req, const struct ask *a, uint64_t share)
{
    uint64_t now = mcpgw_now_us(), worst = 0, w;
    int idx = -1;
    for (int i = 0; i < a->nb; i++) {
        uint64_t burst = a->burst[i] / share ? a->burst[i] / share : 1;
        if (!a->ents[i])
            continue; /* the table is full: this key is not limited here */
        w = mcpgw_limitcfg_gcra(&a->ents[i]->tat, now, a->interval[i] * share, burst, 0);
        if (w > worst) {
            worst = w;
            idx = i;
        }
    }
    if (idx >= 0) {
        refuse(l, c, req, a, a->kinds[idx], a->text[idx], worst);
        return 0;
    }
    for (int i = 0; i < a->nb; i++)
        if (a->ents[i])
            mcpgw_limitcfg_gcra(&a->ents[i]->tat, now, a->interval[i] * share,
                                a->burst[i] / share ? a->burst[i] / share : 1, 1);
    return 1;
}

/* ---- asking Redis ---- */

static void check_unlink_free(struct check *k)
{
    struct mcpgw_limits *l = k->l;
    if (k->prev)
        k->prev->next = k->next;
    else
        l->checks = k->next;
    if (k->next)
        k->next->prev = k->prev;
    l->nchecks--;
    for (int i = 0; i < k->a.nb; i++)
        if (k->a.ents[i])
            k->a.ents[i]->refs--;
    k->a.pent->refs--;
    if (k->conn)
        mcpgw_http_conn_set_close_cb(k->conn, NULL, NULL);
    if (k->timer)
        event_free(k->timer);
    free(k);
}

/* The check is decided: stop waiting, and take the client's connection off it (NULL when the
 * client left). */
static struct mcpgw_http_conn *detach(struct check *k)
{
    struct mcpgw_http_conn *c = k->conn;
    k->decided = 1;
    if (k->timer) {
        event_free(k->timer);
        k->timer = NULL;
    }
    if (c) {
        mcpgw_http_conn_set_close_cb(c, NULL, NULL);
        k->conn = NULL;
    }
    return c;
}

/* An admitted request goes to the node's handler again, marked admitted: it passes here at
 * once, also when something else holds it back on the way (authentication checking its token
 * again) and hands on a copy later. It was charged once, when it was decided. */
static void pass_on(struct check *k, struct mcpgw_http_conn *c)
{
    struct mcpgw_limits *l = k->l;
    k->req.admitted = 1;
    l->retry(c, &k->req, l->n);
}

/* Redis did not answer (down, slow, an error): decide with the local buckets. */
static void check_fallback(struct check *k, enum fallback why)
{
    struct mcpgw_limits *l = k->l;
    struct mcpgw_http_conn *c = detach(k);
    (*l->fallbacks[why])++;
    if (c && decide_here(l, c, &k->req, &k->a, live_nodes(l)))
        pass_on(k, c);
}

static void send_check(struct check *k);

static void on_reply(void *arg, struct redisReply *reply)
{
    struct check *k = arg;
    struct mcpgw_limits *l = k->l;
    struct mcpgw_http_conn *c;
    long long code, val;
    if (k->decided || l->closing) {
        check_unlink_free(k);
        return;
    }
    if (reply && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0 &&
        !k->eval_sent) {
        k->eval_sent = 1; /* SCRIPT FLUSH, a failover to a replica: EVAL loads it again */
        send_check(k);
        return;
    }
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER ||
        reply->element[1]->type != REDIS_REPLY_INTEGER) {
        if (reply && reply->type == REDIS_REPLY_ERROR)
            log_warn("limits: redis error, deciding locally: %s", reply->str);
        check_fallback(k, reply ? FB_ERROR : FB_DOWN);
        check_unlink_free(k);
        return;
    }
    code = reply->element[0]->integer;
    val = reply->element[1]->integer;
    c = detach(k);
    if (c && code == 0)
        pass_on(k, c);
    else if (c && code < 0)
        refuse(l, c, &k->req, &k->a, MCPGW_LIMIT_SESSIONS, k->a.cap_text,
               SESSION_RETRY_S * 1000000ull);
    else if (c && code <= k->a.nb)
        refuse(l, c, &k->req, &k->a, k->a.kinds[code - 1], k->a.text[code - 1],
               val > 0 ? (uint64_t)val : 1);
    else if (c)
        pass_on(k, c); /* an answer we do not understand limits nobody */
    check_unlink_free(k);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct check *k = arg;
    /* Decided here now; the check stays until the reply comes (the store's watchdog bounds
     * that), which then only frees it. */
    check_fallback(k, FB_SLOW);
}

static void on_check_close(struct mcpgw_http_conn *c, void *arg)
{
    ((struct check *)arg)->conn = NULL;
}

static size_t key_of(char *out, size_t outlen, const char *who, const char *suffix,
                     const char *tool)
{
    int n = snprintf(out, outlen, "mcpgw:lim:{%s}:%s%s", who, suffix, tool ? tool : "");
    return n < 0 ? 0 : (size_t)n < outlen ? (size_t)n : outlen - 1;
}

/* EVALSHA (or EVAL after NOSCRIPT) of the admission script for k. */
static void send_check(struct check *k)
{
    struct mcpgw_limits *l = k->l;
    const char *who = k->a.pent->key + 2;
    char keys[3][KEY_MAX], nums[7][24];
    const char *argv[16];
    size_t lens[16];
    int argc = 3, nkeys = 0;
    argv[0] = k->eval_sent ? "EVAL" : "EVALSHA";
    argv[1] = k->eval_sent ? script : l->sha;
    for (int i = 0; i < k->a.nb; i++) {
        /* The rule's numbers are part of the key: a reload that changes a rate starts fresh
         * buckets instead of reading old timestamps under new numbers. */
        char kind[64];
        int rate = k->a.kinds[i] == MCPGW_LIMIT_RATE;
        snprintf(kind, sizeof(kind), "%s:%llu:%llu%s", rate ? "r" : "t",
                 (unsigned long long)k->a.interval[i], (unsigned long long)k->a.burst[i],
                 rate ? "" : ":");
        key_of(keys[nkeys], KEY_MAX, who, kind, rate ? NULL : k->a.tool);
        argv[argc++] = keys[nkeys++];
    }
    if (k->a.cap) {
        key_of(keys[nkeys], KEY_MAX, who, "s", NULL);
        argv[argc++] = keys[nkeys++];
    }
    snprintf(nums[0], sizeof(nums[0]), "%d", nkeys);
    argv[2] = nums[0];
    snprintf(nums[1], sizeof(nums[1]), "%d", k->a.nb);
    argv[argc++] = nums[1];
    snprintf(nums[2], sizeof(nums[2]), "%llu", (unsigned long long)k->a.cap);
    argv[argc++] = nums[2];
    for (int i = 0; i < k->a.nb; i++) {
        snprintf(nums[3 + 2 * i], sizeof(nums[0]), "%llu", (unsigned long long)k->a.interval[i]);
        argv[argc++] = nums[3 + 2 * i];
        snprintf(nums[4 + 2 * i], sizeof(nums[0]), "%llu", (unsigned long long)k->a.burst[i]);
        argv[argc++] = nums[4 + 2 * i];
    }
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    if (mcpgw_store_command(l->n->store, argc, argv, lens, on_reply, k) < 0) {
        check_fallback(k, FB_DOWN);
        check_unlink_free(k);
    }
}

/* Copy req and park it on a check, then ask Redis. */
static void park_and_ask(struct mcpgw_limits *l, struct mcpgw_http_conn *c,
                         const struct mcpgw_http_req *req, const struct ask *a)
{
    const struct mcpgw_http_head *h = &req->head;
    size_t need = req->path_len + req->query_len + req->body_len + h->method_len + h->target_len,
           at = 0;
    struct check *k;
    struct timeval tv = {0, REDIS_TIMEOUT_MS * 1000};
    for (int i = 0; i < h->nheaders; i++)
        need += h->headers[i].name_len + h->headers[i].value_len;
    k = xcalloc(1, sizeof(*k) + need + 1);
    k->l = l;
    k->conn = c;
    k->a = *a;
    k->req = *req;
#define PUT(dst, src, len)                                                                         \
    do {                                                                                           \
        if (src)                                                                                   \
            memcpy(k->buf + at, src, len);                                                         \
        dst = src ? k->buf + at : NULL;                                                            \
        at += len;                                                                                 \
    } while (0)
    PUT(k->req.path, req->path, req->path_len);
    PUT(k->req.query, req->query, req->query_len);
    PUT(k->req.body, req->body, req->body_len);
    PUT(k->req.head.method_str, h->method_str, h->method_len);
    PUT(k->req.head.target, h->target, h->target_len);
    for (int i = 0; i < h->nheaders; i++) {
        PUT(k->req.head.headers[i].name, h->headers[i].name, h->headers[i].name_len);
        PUT(k->req.head.headers[i].value, h->headers[i].value, h->headers[i].value_len);
    }
#undef PUT
    for (int i = 0; i < a->nb; i++)
        if (a->ents[i])
            a->ents[i]->refs++;
    a->pent->refs++;
    k->next = l->checks;
    if (l->checks)
        l->checks->prev = k;
    l->checks = k;
    l->nchecks++;
    mcpgw_http_conn_set_close_cb(c, on_check_close, k);
    k->timer = event_new(l->n->base, -1, 0, on_timeout, k);
    event_add(k->timer, &tv);
    send_check(k);
}

/* ---- the front door ---- */

/* The local entry of who (and tool): "p\n<who>" or "t\n<who>\n<tool>". */
static struct ent *ent_for(struct mcpgw_limits *l, const char *who, const char *tool)
{
    char key[KEY_MAX];
    int n = tool ? snprintf(key, sizeof(key), "t\n%s\n%s", who, tool)
                 : snprintf(key, sizeof(key), "p\n%s", who);
    if (n < 0 || (size_t)n >= sizeof(key))
        return NULL;
    return ent_get(l, key, (size_t)n);
}

/* Sessions of the principal on this node (memory store): those created and still held. */
static int sessions_here(struct mcpgw_limits *l, struct ent *pent)
{
    prune_sids(l, pent);
    return (int)pent->nsids;
}

int mcpgw_limits_admit(struct mcpgw_limits *l, struct mcpgw_http_conn *c,
                       const struct mcpgw_http_req *req, const char *principal)
{
    const struct mcpgw_limitcfg *set = l->n->cfg.limits;
    const struct mcpgw_limit_rule *r;
    struct ask a;
    char addr[64];
    const char *who = principal;
    int initialize = 0;

    l->current = NULL;
    if (!set || !set->n || req->head.method != MCPGW_HTTP_POST)
        return 1;
    memset(&a, 0, sizeof(a));
    if (!inspect(req, &initialize, &a))
        return 1;
    if (!who) {
        address_of(l, c, req, addr, sizeof(addr));
        who = addr;
    }
    if (!(a.pent = ent_for(l, who, NULL)))
        return 1; /* the table is full: not limited here (fails open) */
    /* Concurrency is local and checked each time, also when a parked request comes back. */
    r = mcpgw_limitcfg_match(set, MCPGW_LIMIT_CONCURRENCY, who, NULL);
    if (r && a.pent->inflight >= r->cap) {
        refuse(l, c, req, &a, MCPGW_LIMIT_CONCURRENCY, r->text, 1000000);
        return 0;
    }
    if (req->admitted) {
        l->current = a.pent;
        return 1;
    }
    if ((r = mcpgw_limitcfg_match(set, MCPGW_LIMIT_RATE, who, NULL)) != NULL) {
        a.kinds[a.nb] = MCPGW_LIMIT_RATE;
        a.ents[a.nb] = a.pent;
        a.interval[a.nb] = r->interval_us;
        a.burst[a.nb] = r->burst;
        snprintf(a.text[a.nb++], sizeof(a.text[0]), "%s", r->text);
    }
    if (a.tool[0] && (r = mcpgw_limitcfg_match(set, MCPGW_LIMIT_TOOL_RATE, who, a.tool)) != NULL) {
        a.kinds[a.nb] = MCPGW_LIMIT_TOOL_RATE;
        a.ents[a.nb] = ent_for(l, who, a.tool);
        a.interval[a.nb] = r->interval_us;
        a.burst[a.nb] = r->burst;
        snprintf(a.text[a.nb++], sizeof(a.text[0]), "%s", r->text);
    }
    if (initialize && (r = mcpgw_limitcfg_match(set, MCPGW_LIMIT_SESSIONS, who, NULL)) != NULL) {
        a.cap = r->cap;
        snprintf(a.cap_text, sizeof(a.cap_text), "%s", r->text);
    }
    if (!a.nb && !a.cap) {
        l->current = a.pent;
        return 1;
    }
    if (!mcpgw_store_shared(l->n->store)) {
        /* The memory store: every limit is this node's own. */
        if (a.cap && sessions_here(l, a.pent) >= (int)a.cap) {
            refuse(l, c, req, &a, MCPGW_LIMIT_SESSIONS, a.cap_text, SESSION_RETRY_S * 1000000ull);
            return 0;
        }
        if (!decide_here(l, c, req, &a, 1))
            return 0;
        l->current = a.pent;
        return 1;
    }
    if (l->nchecks >= PARKED_MAX || !mcpgw_store_up(l->n->store)) {
        (*l->fallbacks[FB_DOWN])++;
        if (!decide_here(l, c, req, &a, live_nodes(l)))
            return 0;
        l->current = a.pent;
        return 1;
    }
    park_and_ask(l, c, req, &a);
    return 0;
}

void mcpgw_limits_served(struct mcpgw_limits *l)
{
    l->current = NULL;
}

void *mcpgw_limits_call_begin(struct mcpgw_limits *l)
{
    if (!l->current)
        return NULL;
    l->current->inflight++;
    return l->current;
}

void mcpgw_limits_call_end(struct mcpgw_limits *l, void *slot)
{
    struct ent *e = slot;
    /* No limits (freed at shutdown, before the HTTP server whose connections end the last
     * calls of the 2026-07-28 era, which belong to no session): the slot went with the table. */
    if (l && e && e->inflight)
        e->inflight--;
}

static void ignore_reply(void *arg, struct redisReply *reply)
{
    (void)arg;
    (void)reply;
}

void mcpgw_limits_session_created(struct mcpgw_limits *l, const char *sid)
{
    struct ent *e = l->current;
    if (!e || !mcpgw_limitcfg_has(l->n->cfg.limits, MCPGW_LIMIT_SESSIONS))
        return;
    if (mcpgw_store_shared(l->n->store)) {
        /* Sent after the session's record on the same connection, so Redis has the record by
         * the time another node's check can see this member. */
        char key[KEY_MAX];
        const char *add[3] = {"SADD", key, sid}, *exp[3] = {"PEXPIRE", key, SESSION_SET_TTL};
        key_of(key, sizeof(key), e->key + 2, "s", NULL);
        mcpgw_store_command(l->n->store, 3, add, NULL, ignore_reply, NULL);
        mcpgw_store_command(l->n->store, 3, exp, NULL, ignore_reply, NULL);
        return;
    }
    e->sids = xrealloc(e->sids, (e->nsids + 1) * sizeof(*e->sids));
    e->sids[e->nsids++] = xstrdup(sid);
}

/* ---- lifecycle ---- */

static struct mcpgw_limits *limits_new(struct mcpgw_node *n, mcpgw_http_handler_fn retry)
{
    struct mcpgw_limits *l = xcalloc(1, sizeof(*l));
    unsigned char md[SHA_DIGEST_LENGTH];
    struct timeval tv = {SWEEP_MS / 1000, 0};
    char labels[128];
    l->n = n;
    l->retry = retry;
    SHA1((const unsigned char *)script, strlen(script), md);
    for (int j = 0; j < SHA_DIGEST_LENGTH; j++)
        snprintf(&l->sha[j * 2], 3, "%02x", md[j]);
    for (int k = 0; k < MCPGW_LIMIT_COUNT; k++) {
        snprintf(labels, sizeof(labels), "node=\"%s\",kind=\"%s\"", n->cfg.node_id,
                 mcpgw_limit_kind_str(k));
        l->limited[k] = mcpgw_metrics_counter(n->metrics, "mcpgw_node_limited_total",
                                              "Requests refused with 429 by a limit", labels);
    }
    for (int k = 0; k < FB_COUNT; k++) {
        snprintf(labels, sizeof(labels), "node=\"%s\",why=\"%s\"", n->cfg.node_id, fb_names[k]);
        l->fallbacks[k] = mcpgw_metrics_counter(
            n->metrics, "mcpgw_node_limit_fallbacks_total",
            "Rate checks decided with the local budget because Redis could not answer", labels);
    }
    l->sweep = event_new(n->base, -1, EV_PERSIST, on_sweep, l);
    event_add(l->sweep, &tv);
    return l;
}

void mcpgw_limits_start(struct mcpgw_node *n, mcpgw_http_handler_fn retry)
{
    if (n->cfg.limits && n->cfg.limits->n)
        n->limits = limits_new(n, retry);
}

void mcpgw_limits_reload(struct mcpgw_node *n, struct mcpgw_node_config *next,
                         mcpgw_http_handler_fn retry)
{
    struct mcpgw_limitcfg *tmp;
    if (mcpgw_limitcfg_equal(n->cfg.limits, next->limits))
        return;
    tmp = n->cfg.limits;
    n->cfg.limits = next->limits;
    next->limits = tmp;
    log_info("reload: limit lines changed (%d now)", n->cfg.limits ? n->cfg.limits->n : 0);
    if (!n->limits && n->cfg.limits && n->cfg.limits->n)
        n->limits = limits_new(n, retry);
}

void mcpgw_limits_stop(struct mcpgw_node *n)
{
    struct mcpgw_limits *l = n->limits;
    if (!l)
        return;
    l->closing = 1;
    for (struct check *k = l->checks; k; k = k->next) {
        struct mcpgw_http_conn *c = k->decided ? NULL : detach(k);
        if (c)
            mcpgw_http_respond(c, 503, "text/plain", NULL, "shutting down\n", 14);
    }
}

void mcpgw_limits_free(struct mcpgw_node *n)
{
    struct mcpgw_limits *l = n->limits;
    if (!l)
        return;
    while (l->checks)
        check_unlink_free(l->checks);
    for (int i = 0; i < BUCKETS; i++)
        for (struct ent *e = l->table[i], *next; e; e = next) {
            next = e->next;
            ent_free(e);
        }
    event_free(l->sweep);
    free(l);
    n->limits = NULL;
}
