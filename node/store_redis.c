/* store_redis.c - the Redis store: replicated sessions, fenced ownership, event streams,
 * pub/sub fan-out. Protocol and keys: docs/replication.md. */
#include "common/log.h"
#include "common/util.h"
#include "node/proto.h"
#include "node/rdecode.h"
#include "node/registry.h"
#include "node/session.h"
#include "node/store-impl.h"
#include "node/store_redis_lua.h"

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rstore {
    struct mcpgw_store *st;
    /* A pending resync: done once our own "sync <token>" comes back on the channel. */
    mcpgw_store_done_fn sync_done;
    void *sync_arg;
    uint64_t sync_token;
    char host[256];
    int port;
    char user[128], pass[256]; /* AUTH on every connection when pass is set */
    redisAsyncContext *cmd, *sub;
    int cmd_up, sub_up, was_up;
    int scripts_ok;      /* every SCRIPT LOAD on this connection succeeded */
    int scripts_loading; /* SCRIPT LOAD replies still expected */
    struct event *timer;
    uint64_t outstanding, last_reply_ms, warned_ms;
    char sha[S_COUNT][41];
    char channel[64];
    char ttl[24];
    /* The highest event counter this node knows of (read at connect, then each event's): a new
     * session's list mark (`lcm`), so its replays never bring list changes from before it. */
    uint64_t ev_max;
};

static struct rstore *R(const struct mcpgw_store *st)
{
    return st->impl;
}

static int up(const struct mcpgw_store *st)
{
    return R(st)->cmd_up && R(st)->sub_up && R(st)->scripts_ok;
}

static uint64_t event_counter(const struct mcpgw_store *st)
{
    return R(st)->ev_max;
}

static void set_up_gauge(struct rstore *r)
{
    int now_up = r->cmd_up && r->sub_up && r->scripts_ok;
    if (now_up != r->was_up) {
        if (now_up)
            log_info("session store: connected to redis %s:%d", r->host, r->port);
        else
            log_warn("session store: redis %s:%d unavailable; serving local sessions only "
                     "(degraded)",
                     r->host, r->port);
        r->was_up = now_up;
    }
    mcpgw_store_report_up(r->st, now_up);
}

/* ---- commands ---- */

struct op {
    struct rstore *r;
    void (*on_reply)(struct op *o, redisReply *reply, int err);
    union {
        mcpgw_store_done_fn done;
        mcpgw_store_claim_fn claim;
        mcpgw_store_note_fn note;
        mcpgw_store_result_fn result;
        mcpgw_store_replayed_fn replayed;
        mcpgw_store_task_fn task;
        mcpgw_store_sent_fn sent;
    } cb;
    void *arg;
    mcpgw_store_event_fn visit;
    char sid[MCPGW_SESSION_ID_MAX];
    char *note; /* note_write: the name (owned; its reply frees it) */
};

static int reply_err(redisReply *reply)
{
    if (!reply)
        return MCPGW_STORE_UNAVAILABLE;
    if (reply->type == REDIS_REPLY_ERROR) {
        if (strncmp(reply->str, "NOSCRIPT", 8) == 0) {
            /* Scripts gone (SCRIPT FLUSH, a failover to a replica): load them again. */
            return MCPGW_STORE_NOSCRIPT;
        }
        if (strncmp(reply->str, "STALE", 5) == 0)
            return MCPGW_STORE_STALE;
        if (strncmp(reply->str, "GONE", 4) == 0)
            return MCPGW_STORE_GONE;
        log_warn("session store: redis error: %s", reply->str);
        return MCPGW_STORE_UNAVAILABLE;
    }
    return MCPGW_STORE_OK;
}

static void verify_reply(struct op *o, redisReply *reply, int err)
{
    struct mcpgw_session *s = mcpgw_registry_lookup(o->r->st->cfg.reg, o->sid, strlen(o->sid));
    redisReply *owner, *epoch;
    uint64_t e;
    if (!s)
        return;
    if (err || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
        mcpgw_store_report_verified(o->r->st, s, MCPGW_STORE_VERIFY_FAILED, "", 0);
        return;
    }
    owner = reply->element[0];
    epoch = reply->element[1];
    if (owner->type != REDIS_REPLY_STRING) {
        mcpgw_store_report_verified(o->r->st, s, MCPGW_STORE_VERIFY_LOST, "", 0);
        return;
    }
    e = epoch->type == REDIS_REPLY_STRING ? strtoull(epoch->str, NULL, 10) : 0;
    /* Taken over while we were not listening: its "moved" notice was lost with the connection. */
    mcpgw_store_report_verified(
        o->r->st, s,
        epoch->type == REDIS_REPLY_STRING &&
                (strcmp(owner->str, o->r->st->cfg.node_id) != 0 || e != s->epoch)
            ? MCPGW_STORE_VERIFY_MOVED
            : MCPGW_STORE_VERIFY_OWNED,
        owner->str, e);
}

static void send_argv(struct rstore *r, struct op *o, int argc, const char **argv,
                      const size_t *lens);
static struct op *op_new(struct rstore *r, void (*on_reply)(struct op *, redisReply *, int),
                         void *arg);

static void hold_one(void *arg, struct mcpgw_session *s)
{
    struct rstore *r = arg;
    mcpgw_store_report_hold(r->st, s);
}

static void verify_one(void *arg, struct mcpgw_session *s)
{
    struct rstore *r = arg;
    struct op *o = xcalloc(1, sizeof(*o));
    char k[128];
    const char *argv[4] = {"HMGET", k, "owner", "epoch"};
    o->r = r;
    o->on_reply = verify_reply;
    snprintf(o->sid, sizeof(o->sid), "%s", s->id);
    /* Events published from now on arrive live, but some published while pub/sub was down may
     * be missing: hold the live ones until the catch-up has read the gap (verify_reply). */
    mcpgw_store_report_hold(r->st, s);
    snprintf(k, sizeof(k), "mcpgw:{%s}:s", s->id);
    send_argv(r, o, 4, argv, NULL);
}

static void notes_reply(struct op *o, redisReply *reply, int err)
{
    const char **names;
    size_t k = 0;
    if (err || reply->type != REDIS_REPLY_ARRAY)
        return; /* the next reconnect reads the list again */
    names = xcalloc(reply->elements + 1, sizeof(*names));
    for (size_t i = 0; i < reply->elements; i++)
        if (reply->element[i]->type == REDIS_REPLY_STRING)
            names[k++] = reply->element[i]->str;
    mcpgw_store_report_notes(o->r->st, names, k);
    free(names);
}

/* Read the whole notes list (after every reconnect: names created while this node was not
 * listening were announced without it). */
static void evseq_reply(struct op *o, redisReply *reply, int err)
{
    uint64_t g;
    if (err || reply->type != REDIS_REPLY_STRING)
        return;
    g = strtoull(reply->str, NULL, 10);
    if (g > o->r->ev_max)
        o->r->ev_max = g;
}

static void load_notes(struct rstore *r)
{
    const char *argv[4] = {"ZRANGE", NOTES_KEY, "0", "-1"};
    const char *get[2] = {"GET", EVSEQ_KEY};
    send_argv(r, op_new(r, notes_reply, NULL), 4, argv, NULL);
    send_argv(r, op_new(r, evseq_reply, NULL), 2, get, NULL);
}

/* After a reconnect: a session whose record vanished (Redis restarted empty) is dropped, so its
 * client gets a clean 404 instead of silently diverging state; one another node took over while
 * this one was cut off is dropped too (its "moved" notice was lost); the others catch up on
 * events published while this node's pub/sub connection was down. */
static void verify_sessions(struct rstore *r)
{
    load_notes(r);
    mcpgw_registry_foreach(r->st->cfg.reg, verify_one, r);
    mcpgw_store_report_feed_ready(r->st);
}

static void on_cmd_reply(redisAsyncContext *ac, void *rep, void *priv)
{
    struct op *o = priv;
    redisReply *reply = rep;
    int err = reply_err(reply);
    if (o->r->outstanding)
        o->r->outstanding--;
    o->r->last_reply_ms = mcpgw_now_ms();
    if (err == MCPGW_STORE_NOSCRIPT) {
        if (o->r->scripts_ok)
            log_warn("session store: redis lost our scripts; loading them again");
        o->r->scripts_ok = 0;
        set_up_gauge(o->r);
        err = MCPGW_STORE_UNAVAILABLE;
    }
    if (o->on_reply)
        o->on_reply(o, reply, err);
    free(o);
}

static struct op *op_new(struct rstore *r, void (*on_reply)(struct op *, redisReply *, int),
                         void *arg)
{
    struct op *o = xcalloc(1, sizeof(*o));
    o->r = r;
    o->on_reply = on_reply;
    o->arg = arg;
    return o;
}

/* Send argv; when Redis is down the op fails at once (callback with UNAVAILABLE). */
static void send_argv(struct rstore *r, struct op *o, int argc, const char **argv,
                      const size_t *lens)
{
    if (!r->cmd_up ||
        redisAsyncCommandArgv(r->cmd, o ? on_cmd_reply : NULL, o, argc, argv, lens) != REDIS_OK) {
        if (o && o->on_reply)
            o->on_reply(o, NULL, MCPGW_STORE_UNAVAILABLE);
        free(o);
        return;
    }
    if (o && !r->outstanding)
        r->last_reply_ms = mcpgw_now_ms();
    if (o)
        r->outstanding++;
}

/* EVALSHA script with nkeys keys followed by args (all NUL-terminated except where lens given). */
static void eval(struct rstore *r, struct op *o, enum script sc, int nkeys, int nargs,
                 const char **args, const size_t *arglens)
{
    const char *argv[32];
    size_t lens[32];
    char nk[8];
    int argc = 0;
    snprintf(nk, sizeof(nk), "%d", nkeys);
    argv[argc] = "EVALSHA", lens[argc++] = 7;
    argv[argc] = r->sha[sc], lens[argc++] = 40;
    argv[argc] = nk, lens[argc++] = strlen(nk);
    for (int i = 0; i < nargs && argc < 32; i++) {
        argv[argc] = args[i];
        lens[argc++] = arglens && arglens[i] != (size_t)-1 ? arglens[i] : strlen(args[i]);
    }
    send_argv(r, o, argc, argv, lens);
}

static void key(char *out, size_t len, const char *sid, const char *suffix)
{
    snprintf(out, len, "mcpgw:{%s}:%s", sid, suffix);
}

static void done_reply(struct op *o, redisReply *reply, int err)
{
    o->cb.done(o->arg, err);
}

static void r_create(struct mcpgw_store *st, struct mcpgw_session *s, mcpgw_store_done_fn done,
                     void *arg)
{
    struct rstore *r = R(st);
    struct op *o = op_new(r, done_reply, arg);
    char ks[128], proto[8], caps[8], state[8], level[8], created[24], lcm[24];
    const char *args[24];
    int n = 0;
    o->cb.done = done;
    s->epoch = 1;
    s->ttl_refreshed_ms = mcpgw_now_ms(); /* the script sets the TTL: no touch needed yet */
    key(ks, sizeof(ks), s->id, "s");
    snprintf(proto, sizeof(proto), "%u", s->proto);
    snprintf(caps, sizeof(caps), "%u", s->client_caps);
    snprintf(state, sizeof(state), "%u", s->state);
    snprintf(level, sizeof(level), "%d", s->log_level);
    snprintf(created, sizeof(created), "%llu", (unsigned long long)mcpgw_wall_ms());
    args[n++] = ks;
    args[n++] = r->ttl;
    args[n++] = "v", args[n++] = RECORD_V;
    args[n++] = "proto", args[n++] = proto;
    args[n++] = "client", args[n++] = s->client ? s->client : "{}";
    args[n++] = "caps", args[n++] = caps;
    args[n++] = "state", args[n++] = state;
    args[n++] = "level", args[n++] = level;
    args[n++] = "owner", args[n++] = r->st->cfg.node_id;
    args[n++] = "epoch", args[n++] = "1";
    args[n++] = "created", args[n++] = created;
    snprintf(lcm, sizeof(lcm), "%llu", (unsigned long long)r->ev_max);
    args[n++] = "lcm", args[n++] = lcm;
    if (s->principal) /* the principal it is bound to (node/auth.h) */
        args[n++] = "pr", args[n++] = s->principal;
    eval(r, o, S_CREATE, 1, n, args, NULL);
}

static void claim_reply(struct op *o, redisReply *reply, int err)
{
    struct mcpgw_session *s;
    const char *why;
    if (err) {
        o->cb.claim(o->arg, NULL, err);
        return;
    }
    err = mcpgw_rdecode_claim(reply, o->sid, &s, &why);
    if (why)
        log_warn("session store: %s for %s", why, o->sid);
    if (s) /* The claim script refreshed both TTLs: the first request after it needs no touch
            * (two PEXPIREs per moved session, a quarter of Redis's commands in a failover). */
        s->ttl_refreshed_ms = mcpgw_now_ms();
    o->cb.claim(o->arg, s, err);
}

static void r_claim(struct mcpgw_store *st, const char *sid, size_t len, mcpgw_store_claim_fn done,
                    void *arg)
{
    struct rstore *r = R(st);
    struct op *o;
    char ks[128], ksub[128];
    const char *args[6];
    if (len >= MCPGW_SESSION_ID_MAX) {
        done(arg, NULL, MCPGW_STORE_GONE);
        return;
    }
    o = op_new(r, claim_reply, arg);
    o->cb.claim = done;
    memcpy(o->sid, sid, len);
    o->sid[len] = '\0';
    key(ks, sizeof(ks), o->sid, "s");
    key(ksub, sizeof(ksub), o->sid, "subs");
    args[0] = ks, args[1] = ksub;
    args[2] = r->st->cfg.node_id, args[3] = r->ttl, args[4] = o->sid;
    args[5] = st->claimant ? st->claimant : "";
    eval(r, o, S_CLAIM, 2, 6, args, NULL);
}

static void r_save(struct mcpgw_store *st, struct mcpgw_session *s, mcpgw_store_done_fn done,
                   void *arg)
{
    struct rstore *r = R(st);
    struct op *o = op_new(r, done_reply, arg);
    char ks[128], epoch[24], state[8], level[8];
    const char *args[6];
    o->cb.done = done;
    key(ks, sizeof(ks), s->id, "s");
    snprintf(epoch, sizeof(epoch), "%llu", (unsigned long long)s->epoch);
    snprintf(state, sizeof(state), "%u", s->state);
    snprintf(level, sizeof(level), "%d", s->log_level);
    args[0] = ks, args[1] = epoch;
    args[2] = "state", args[3] = state, args[4] = "level", args[5] = level;
    eval(r, o, S_SAVE, 1, 6, args, NULL);
}

/* A per-client upstream session's state: one more field of the session hash, "up:<name>" (no
 * format change: a node that does not know the field never reads it). */
static void r_upstream_put(struct mcpgw_store *st, struct mcpgw_session *s, const char *name,
                           const char *value, mcpgw_store_done_fn done, void *arg)
{
    struct rstore *r = R(st);
    struct op *o = op_new(r, done_reply, arg);
    char ks[128], epoch[24], field[160];
    const char *args[4];
    o->cb.done = done;
    key(ks, sizeof(ks), s->id, "s");
    snprintf(epoch, sizeof(epoch), "%llu", (unsigned long long)s->epoch);
    snprintf(field, sizeof(field), "up:%s", name);
    args[0] = ks, args[1] = epoch, args[2] = field, args[3] = value;
    eval(r, o, S_SAVE, 1, 4, args, NULL);
}

static void r_subscribe(struct mcpgw_store *st, struct mcpgw_session *s, const char *uri, int on,
                        mcpgw_store_done_fn done, void *arg)
{
    struct rstore *r = R(st);
    struct op *o = op_new(r, done_reply, arg);
    char ks[128], ksub[128], epoch[24];
    const char *args[6];
    o->cb.done = done;
    key(ks, sizeof(ks), s->id, "s");
    key(ksub, sizeof(ksub), s->id, "subs");
    snprintf(epoch, sizeof(epoch), "%llu", (unsigned long long)s->epoch);
    if (on) {
        args[0] = ks, args[1] = ksub, args[2] = EVSEQ_KEY;
        args[3] = epoch, args[4] = uri, args[5] = r->ttl;
        eval(r, o, S_SUB, 3, 6, args, NULL);
    } else {
        args[0] = ks, args[1] = ksub, args[2] = epoch, args[3] = uri;
        eval(r, o, S_UNSUB, 2, 4, args, NULL);
    }
}

static void r_delete(struct mcpgw_store *st, struct mcpgw_session *s)
{
    struct rstore *r = R(st);
    char ks[128], ksub[128], epoch[24];
    const char *args[3];
    key(ks, sizeof(ks), s->id, "s");
    key(ksub, sizeof(ksub), s->id, "subs");
    snprintf(epoch, sizeof(epoch), "%llu", (unsigned long long)s->epoch);
    args[0] = ks, args[1] = ksub, args[2] = epoch;
    eval(r, NULL, S_DELETE, 2, 3, args, NULL); /* fire and forget */
}

static void r_touch(struct mcpgw_store *st, struct mcpgw_session *s)
{
    struct rstore *r = R(st);
    uint64_t now = mcpgw_now_ms();
    const char *argv[3];
    char k[128];
    if (now - s->ttl_refreshed_ms < r->st->cfg.session_ttl_ms / 10)
        return;
    s->ttl_refreshed_ms = now;
    argv[0] = "PEXPIRE";
    argv[1] = k;
    argv[2] = r->ttl;
    key(k, sizeof(k), s->id, "s");
    send_argv(r, NULL, 3, argv, NULL);
    key(k, sizeof(k), s->id, "subs");
    send_argv(r, NULL, 3, argv, NULL);
}

/* ---- events ---- */

static void replay_reply(struct op *o, redisReply *reply, int err)
{
    uint64_t at = 0;
    if (!err && (err = mcpgw_rdecode_replay(reply, &at, o->visit, o->arg)) != 0)
        log_warn("session store: unexpected replay reply");
    o->cb.replayed(o->arg, err, at);
}

/* after: "<counter>-<n>", the last event id the client has (the part after "0."). */
static void r_replay(struct mcpgw_store *st, const char *sid, const char *after,
                     mcpgw_store_event_fn visit, mcpgw_store_replayed_fn done, void *arg)
{
    struct rstore *r = R(st);
    struct op *o = op_new(r, replay_reply, arg);
    char ksub[128], ks[128], from[24];
    uint64_t g = 0, n = 0;
    const char *args[4];
    o->cb.replayed = done;
    o->visit = visit;
    key(ksub, sizeof(ksub), sid, "subs");
    key(ks, sizeof(ks), sid, "s");
    mcpgw_session_cluster_id_parse(after, strlen(after), &g, &n);
    snprintf(from, sizeof(from), "%llu", (unsigned long long)g);
    args[0] = ksub, args[1] = ks, args[2] = from, args[3] = EV_MAXLEN;
    eval(r, o, S_REPLAY, 2, 4, args, NULL);
}

static void r_replay_uris(struct mcpgw_store *st, const char *uris, uint64_t after,
                          mcpgw_store_event_fn visit, mcpgw_store_replayed_fn done, void *arg)
{
    struct rstore *r = R(st);
    struct op *o = op_new(r, replay_reply, arg);
    char from[24];
    const char *args[3];
    o->cb.replayed = done;
    o->visit = visit;
    snprintf(from, sizeof(from), "%llu", (unsigned long long)after);
    args[0] = from, args[1] = EV_MAXLEN, args[2] = uris;
    eval(r, o, S_REPLAY_URIS, 0, 3, args, NULL);
}

static void list_change_reply(struct op *o, redisReply *reply, int err)
{
    if (!err && reply->type != REDIS_REPLY_INTEGER)
        err = MCPGW_STORE_UNAVAILABLE;
    o->cb.done(o->arg, err);
}

static void r_list_change(struct mcpgw_store *st, const char *kind, uint64_t hash,
                          mcpgw_store_done_fn done, void *arg)
{
    struct rstore *r = R(st);
    struct op *o = op_new(r, list_change_reply, arg);
    char h[24];
    const char *args[5];
    o->cb.done = done;
    snprintf(h, sizeof(h), "%016llx", (unsigned long long)hash);
    args[0] = EVSEQ_KEY, args[1] = LC_KEY, args[2] = CAT_KEY, args[3] = kind, args[4] = h;
    eval(r, o, S_LIST_CHANGE, 3, 5, args, NULL);
}

/* ---- notes and results ---- */

static void note_write_reply(struct op *o, redisReply *reply, int err)
{
    uint64_t v = 0;
    if (!err && reply->type == REDIS_REPLY_INTEGER)
        v = (uint64_t)reply->integer;
    else if (!err)
        err = MCPGW_STORE_UNAVAILABLE;
    /* The "lst" of a new note comes on the other connection, maybe later than this reply: report
     * the name now too, so a resources/list right after the write lists it. */
    if (!err && v == 1)
        mcpgw_store_report_notes(o->r->st, (const char *const *)&o->note, 1);
    free(o->note);
    o->cb.note(o->arg, err, NULL, v);
}

static void r_note_write(struct mcpgw_store *st, const char *name, const char *text,
                         mcpgw_store_note_fn done, void *arg)
{
    struct rstore *r = R(st);
    struct op *o = op_new(r, note_write_reply, arg);
    char k[128], kev[160], uri[128];
    const char *args[8];
    o->cb.note = done;
    o->note = xstrdup(name);
    snprintf(k, sizeof(k), "mcpgw:note:%s", name);
    snprintf(uri, sizeof(uri), "mcpgw://notes/%s", name);
    snprintf(kev, sizeof(kev), "mcpgw:u:%s", uri);
    args[0] = k, args[1] = kev, args[2] = EVSEQ_KEY, args[3] = NOTES_KEY, args[4] = LC_KEY;
    args[5] = text, args[6] = uri, args[7] = name;
    eval(r, o, S_NOTE_WRITE, 5, 8, args, NULL);
}

static void note_read_reply(struct op *o, redisReply *reply, int err)
{
    if (!err && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_STRING)
        o->cb.note(o->arg, MCPGW_STORE_OK, reply->element[0]->str,
                   reply->element[1]->type == REDIS_REPLY_STRING
                       ? strtoull(reply->element[1]->str, NULL, 10)
                       : 0);
    else
        o->cb.note(o->arg, err ? err : MCPGW_STORE_GONE, NULL, 0);
}

static void r_note_read(struct mcpgw_store *st, const char *name, mcpgw_store_note_fn done,
                        void *arg)
{
    struct rstore *r = R(st);
    struct op *o = op_new(r, note_read_reply, arg);
    char k[128];
    const char *argv[4] = {"HMGET", k, "text", "version"};
    o->cb.note = done;
    snprintf(k, sizeof(k), "mcpgw:note:%s", name);
    send_argv(r, o, 4, argv, NULL);
}

static void result_get_reply(struct op *o, redisReply *reply, int err)
{
    o->cb.result(o->arg, err, !err && reply->type == REDIS_REPLY_STRING ? reply->str : NULL);
}

/* The key of a recorded result, whole: rid (the request id's JSON text) is as long as the client
 * made it, and a key cut to a fixed buffer gave two long ids one result. Free with free(). */
static char *result_key(const struct mcpgw_session *s, const char *rid)
{
    size_t n = strlen(s->id) + strlen(rid) + sizeof("mcpgw:{}:rq:");
    char *k = xmalloc(n);
    snprintf(k, n, "mcpgw:{%s}:rq:%s", s->id, rid);
    return k;
}

static void r_result_get(struct mcpgw_store *st, struct mcpgw_session *s, const char *rid,
                         mcpgw_store_result_fn done, void *arg)
{
    struct rstore *r = R(st);
    struct op *o = op_new(r, result_get_reply, arg);
    char *k = result_key(s, rid);
    const char *argv[2] = {"GET", k};
    o->cb.result = done;
    send_argv(r, o, 2, argv, NULL);
    free(k);
}

static void r_result_put(struct mcpgw_store *st, struct mcpgw_session *s, const char *rid,
                         const char *json, mcpgw_store_done_fn done, void *arg)
{
    struct rstore *r = R(st);
    struct op *o = op_new(r, done_reply, arg);
    char *k = result_key(s, rid);
    const char *argv[5] = {"SET", k, json, "PX", RESULT_TTL_MS};
    o->cb.done = done;
    send_argv(r, o, 5, argv, NULL);
    free(k);
}

/* ---- task records (node/tasks.c, docs/protocol-2026.md "Tasks") ---- */

static void task_key(char *out, size_t len, const char *id)
{
    snprintf(out, len, "mcpgw:{%s}:task", id);
}

static void task_put_reply(struct op *o, redisReply *reply, int err)
{
    if (!err && reply->type == REDIS_REPLY_INTEGER && reply->integer == 0)
        err = MCPGW_STORE_STALE;
    if (o->cb.done)
        o->cb.done(o->arg, err);
}

static void r_task_put(struct mcpgw_store *st, const char *id, const struct mcpgw_store_task *t,
                       const char *expect_owner, uint64_t ttl_ms, mcpgw_store_done_fn done,
                       void *arg)
{
    struct rstore *r = R(st);
    struct op *o = op_new(r, task_put_reply, arg);
    char k[256], lease[24], ttl[24], ver[24];
    const char *args[9] = {k,
                           t->status ? t->status : "",
                           t->owner,
                           lease,
                           t->rec ? t->rec : "",
                           ttl,
                           expect_owner ? expect_owner : "",
                           ver,
                           t->note ? t->note : ""};
    task_key(k, sizeof(k), id);
    snprintf(lease, sizeof(lease), "%llu", (unsigned long long)t->lease_ms);
    snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)ttl_ms);
    snprintf(ver, sizeof(ver), "%llu", (unsigned long long)t->version);
    o->cb.done = done;
    eval(r, o, S_TASK_PUT, 1, 9, args, NULL);
}

static void task_get_reply(struct op *o, redisReply *reply, int err)
{
    struct mcpgw_store_task t;
    if (!err)
        err = mcpgw_rdecode_task(reply, &t);
    o->cb.task(o->arg, err, err ? NULL : &t);
}

static void r_task_get(struct mcpgw_store *st, const char *id, mcpgw_store_task_fn done, void *arg)
{
    struct rstore *r = R(st);
    struct op *o = op_new(r, task_get_reply, arg);
    char k[256];
    const char *args[1] = {k};
    task_key(k, sizeof(k), id);
    o->cb.task = done;
    eval(r, o, S_TASK_GET, 1, 1, args, NULL);
}

static void sent_reply(struct op *o, redisReply *reply, int err)
{
    if (o->cb.sent)
        o->cb.sent(o->arg, err,
                   !err && reply->type == REDIS_REPLY_INTEGER ? (long)reply->integer : 0);
}

static void r_node_send(struct mcpgw_store *st, const char *node_id, const char *msg, size_t len,
                        mcpgw_store_sent_fn done, void *arg)
{
    struct rstore *r = R(st);
    struct op *o = op_new(r, sent_reply, arg);
    char channel[64];
    char *payload = xmalloc(len + 4);
    const char *argv[3] = {"PUBLISH", channel, payload};
    size_t lens[3] = {7, 0, len + 4};
    o->cb.sent = done;
    snprintf(channel, sizeof(channel), "mcpgw:node:%s", node_id);
    lens[1] = strlen(channel);
    memcpy(payload, MSG_TAG, 4);
    memcpy(payload + 4, msg, len);
    send_argv(r, o, 3, argv, lens);
    free(payload);
}

/* ---- pub/sub: events and ownership changes addressed to this node ---- */

/* "<id> <version> <uri>": a resource update, broadcast to every node; each tells its own
 * subscribers of <uri>. A subscriber held elsewhere is served by its own node; one held by
 * nobody (its node died) gets it from the URI's stream when it resumes. */
static void on_uri_event(struct rstore *r, const char *p, size_t len)
{
    struct mcpgw_store_event ev;
    char uri[MCPGW_URI_MAX + 1];
    if (mcpgw_rdecode_uri_event(p, len, &ev, uri) == 0) {
        if (ev.g > r->ev_max)
            r->ev_max = ev.g;
        mcpgw_store_report_resource(r->st, &ev);
    }
}

/* "<id> <kind>": a list changed (the kind's event, as a resource event named
 * MCPGW_STORE_LIST_PREFIX <kind>, version 0). */
static void on_list_event(struct rstore *r, const char *p, size_t len)
{
    struct mcpgw_store_event ev;
    char name[MCPGW_RDECODE_LIST_NAME_MAX];
    if (mcpgw_rdecode_list_event(p, len, &ev, name) == 0) {
        if (ev.g > r->ev_max)
            r->ev_max = ev.g;
        mcpgw_store_report_resource(r->st, &ev);
    }
}

static void on_moved_message(struct rstore *r, const char *p, size_t len)
{
    const char *sp = memchr(p, ' ', len);
    struct mcpgw_session *s;
    if (!sp)
        return;
    s = mcpgw_registry_lookup(r->st->cfg.reg, p, (size_t)(sp - p));
    if (s)
        mcpgw_store_report_moved(r->st, s, strtoull(sp + 1, NULL, 10));
}

static void verify_sessions(struct rstore *r);

static void finish_sync(struct rstore *r, int err)
{
    mcpgw_store_done_fn done = r->sync_done;
    r->sync_done = NULL;
    if (done)
        done(r->sync_arg, err);
}

/* Messages on one subscriber connection arrive in publish order: once our own token is back,
 * everything published to us before it has been handled. */
static void r_resync(struct mcpgw_store *st, mcpgw_store_done_fn done, void *arg)
{
    struct rstore *r = R(st);
    char token[48];
    const char *argv[3] = {"PUBLISH", r->channel, token};
    if (!r->cmd_up || !r->sub_up) {
        done(arg, MCPGW_STORE_UNAVAILABLE);
        return;
    }
    r->sync_done = done;
    r->sync_arg = arg;
    r->sync_token++;
    snprintf(token, sizeof(token), "sync %llu", (unsigned long long)r->sync_token);
    send_argv(r, NULL, 3, argv, NULL);
}

static void on_sub_message(redisAsyncContext *ac, void *rep, void *priv)
{
    struct rstore *r = priv;
    redisReply *reply = rep;
    redisReply *payload;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING)
        return;
    if (strcmp(reply->element[0]->str, "subscribe") == 0) {
        /* Only once both channels are confirmed is nothing published to us lost: catch up from
         * here. Until the catch-up has read the gap, live events wait (see verify_one), even if
         * the scripts it needs are not loaded yet. */
        if (reply->element[2]->type != REDIS_REPLY_INTEGER || reply->element[2]->integer < 2)
            return;
        mcpgw_registry_foreach(r->st->cfg.reg, hold_one, r);
        mcpgw_store_report_feed_hold(r->st);
        r->sub_up = 1;
        set_up_gauge(r);
        if (r->cmd_up && r->scripts_ok)
            verify_sessions(r);
        return;
    }
    if (strcmp(reply->element[0]->str, "message") != 0)
        return;
    payload = reply->element[2];
    if (payload->type != REDIS_REPLY_STRING)
        return;
    if (payload->len > 5 && memcmp(payload->str, "sync ", 5) == 0) {
        if (r->sync_done && strtoull(payload->str + 5, NULL, 10) == r->sync_token)
            finish_sync(r, MCPGW_STORE_OK);
        return;
    }
    if (payload->len > 4 && memcmp(payload->str, EV_TAG, 4) == 0)
        on_uri_event(r, payload->str + 4, payload->len - 4);
    else if (payload->len > 4 && memcmp(payload->str, LCH_TAG, 4) == 0)
        on_list_event(r, payload->str + 4, payload->len - 4);
    else if (payload->len > 4 && memcmp(payload->str, LST_TAG, 4) == 0) {
        const char *name = payload->str + 4;
        mcpgw_store_report_notes(r->st, &name, 1);
    } else if (payload->len > 6 && memcmp(payload->str, "moved ", 6) == 0)
        on_moved_message(r, payload->str + 6, payload->len - 6);
    else if (payload->len > 4 && memcmp(payload->str, TSK_TAG, 4) == 0)
        mcpgw_store_report_task_note(r->st, payload->str + 4, payload->len - 4);
    else if (payload->len > 4 && memcmp(payload->str, MSG_TAG, 4) == 0)
        mcpgw_store_report_node_msg(r->st, payload->str + 4, payload->len - 4);
}

/* ---- connection management ---- */

static void connect_all(struct rstore *r);

static void on_cmd_connect(const redisAsyncContext *ac, int status)
{
    struct rstore *r = ac->data;
    if (status != REDIS_OK) {
        r->cmd = NULL; /* hiredis frees the context after a failed connect */
        set_up_gauge(r);
        return;
    }
    r->cmd_up = 1;
    set_up_gauge(r); /* up once the scripts are loaded (on_script_loaded) */
}

static void on_cmd_disconnect(const redisAsyncContext *ac, int status)
{
    struct rstore *r = ac->data;
    r->cmd = NULL;
    r->cmd_up = 0;
    r->scripts_ok = 0;
    r->scripts_loading = 0;
    r->outstanding = 0;
    set_up_gauge(r);
}

static void on_sub_connect(const redisAsyncContext *ac, int status)
{
    struct rstore *r = ac->data;
    if (status != REDIS_OK) {
        r->sub = NULL;
        set_up_gauge(r);
        return;
    }
    /* sub_up is set when Redis confirms the SUBSCRIBE (on_sub_message). */
}

static void on_sub_disconnect(const redisAsyncContext *ac, int status)
{
    struct rstore *r = ac->data;
    r->sub = NULL;
    r->sub_up = 0;
    set_up_gauge(r);
    finish_sync(r, MCPGW_STORE_UNAVAILABLE);
}

static void on_script_loaded(redisAsyncContext *ac, void *rep, void *priv)
{
    struct rstore *r = priv;
    redisReply *reply = rep;
    if (!reply || reply->type != REDIS_REPLY_STRING) {
        /* Redis still loading its data (LOADING), or gone: the timer tries again. */
        if (reply && reply->type == REDIS_REPLY_ERROR)
            log_warn("session store: cannot load scripts yet: %s", reply->str);
        r->scripts_loading = 0;
        r->scripts_ok = 0;
        return;
    }
    if (r->scripts_loading && --r->scripts_loading == 0) {
        r->scripts_ok = 1;
        set_up_gauge(r);
        if (r->cmd_up && r->sub_up)
            verify_sessions(r);
    }
}

/* Commands on one connection run in order: every EVALSHA sent after these finds its script. */
static void load_scripts(struct rstore *r)
{
    if (!r->cmd || r->scripts_loading)
        return;
    r->scripts_loading = S_COUNT;
    for (int i = 0; i < S_COUNT; i++) {
        const char *argv[3] = {"SCRIPT", "LOAD", scripts[i]};
        if (redisAsyncCommandArgv(r->cmd, on_script_loaded, r, 3, argv, NULL) != REDIS_OK) {
            r->scripts_loading = 0;
            return;
        }
    }
}

static void on_auth(redisAsyncContext *ac, void *rep, void *priv)
{
    struct rstore *r = priv;
    redisReply *reply = rep;
    /* Said once per reconnect attempt: the commands queued behind it fail with NOAUTH and the
     * store stays down (503s, /readyz degraded) until the credentials are right. */
    if (reply && reply->type == REDIS_REPLY_ERROR && mcpgw_now_ms() - r->warned_ms > 5000) {
        r->warned_ms = mcpgw_now_ms();
        log_error("session store: redis refused our credentials (user '%s'): %s",
                  r->user[0] ? r->user : "default", reply->str);
    }
}

/* The first command on a new connection, when a password is configured (commands on one
 * connection run in order, so everything after it runs authenticated). */
static void send_auth(struct rstore *r, redisAsyncContext *ac)
{
    const char *argv[3] = {"AUTH", r->user, r->pass};
    if (!r->pass[0])
        return;
    if (r->user[0])
        redisAsyncCommandArgv(ac, on_auth, r, 3, argv, NULL);
    else {
        argv[1] = r->pass;
        redisAsyncCommandArgv(ac, on_auth, r, 2, argv, NULL);
    }
}

static void connect_all(struct rstore *r)
{
    if (!r->cmd) {
        r->cmd = redisAsyncConnect(r->host, r->port);
        if (r->cmd && !r->cmd->err) {
            mcpgw_rdecode_cap_reader(r->cmd->c.reader);
            r->cmd->data = r;
            redisLibeventAttach(r->cmd, r->st->cfg.base);
            redisAsyncSetConnectCallback(r->cmd, on_cmd_connect);
            redisAsyncSetDisconnectCallback(r->cmd, on_cmd_disconnect);
            send_auth(r, r->cmd);
            load_scripts(r);
        } else {
            if (r->cmd)
                redisAsyncFree(r->cmd);
            r->cmd = NULL;
        }
    }
    if (!r->sub) {
        r->sub = redisAsyncConnect(r->host, r->port);
        if (r->sub && !r->sub->err) {
            const char *argv[3] = {"SUBSCRIBE", r->channel, EV_CHANNEL};
            mcpgw_rdecode_cap_reader(r->sub->c.reader);
            r->sub->data = r;
            redisLibeventAttach(r->sub, r->st->cfg.base);
            redisAsyncSetConnectCallback(r->sub, on_sub_connect);
            redisAsyncSetDisconnectCallback(r->sub, on_sub_disconnect);
            send_auth(r, r->sub);
            redisAsyncCommandArgv(r->sub, on_sub_message, r, 3, argv, NULL);
        } else {
            if (r->sub)
                redisAsyncFree(r->sub);
            r->sub = NULL;
        }
    }
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct rstore *r = arg;
    uint64_t now = mcpgw_now_ms();
    /* A Redis that accepts commands but never answers (paused, overloaded) is down too: free the
     * context so pending callbacks fail instead of waiting forever. */
    if (r->cmd && r->cmd_up && r->outstanding && now - r->last_reply_ms > WATCHDOG_MS) {
        redisAsyncContext *c = r->cmd;
        log_warn("session store: redis has not answered for %llu ms; reconnecting",
                 (unsigned long long)(now - r->last_reply_ms));
        redisAsyncFree(c); /* fires the disconnect callback, which clears r->cmd */
        r->cmd = NULL;
        r->cmd_up = 0;
        r->outstanding = 0;
        set_up_gauge(r);
    }
    if (!r->cmd || !r->sub)
        connect_all(r);
    else if (r->cmd_up && !r->scripts_ok)
        load_scripts(r);
}

/* A raw command's callback and its argument (mcpgw_store_command). */
struct raw_op {
    struct rstore *r;
    mcpgw_store_raw_fn fn;
    void *arg;
};

static void on_raw_reply(redisAsyncContext *ac, void *rep, void *priv)
{
    struct raw_op *o = priv;
    if (o->r->outstanding)
        o->r->outstanding--;
    o->r->last_reply_ms = mcpgw_now_ms();
    o->fn(o->arg, rep);
    free(o);
}

static int r_command(struct mcpgw_store *st, int argc, const char **argv, const size_t *lens,
                     mcpgw_store_raw_fn fn, void *arg)
{
    struct rstore *r = R(st);
    struct raw_op *o;
    if (!r->cmd_up || !r->scripts_ok)
        return -1;
    o = xcalloc(1, sizeof(*o));
    o->r = r;
    o->fn = fn;
    o->arg = arg;
    if (redisAsyncCommandArgv(r->cmd, on_raw_reply, o, argc, argv, lens) != REDIS_OK) {
        free(o);
        return -1;
    }
    if (!r->outstanding)
        r->last_reply_ms = mcpgw_now_ms();
    r->outstanding++;
    return 0;
}

static void r_free(struct mcpgw_store *st)
{
    struct rstore *r = R(st);
    if (r->timer)
        event_free(r->timer);
    if (r->cmd)
        redisAsyncFree(r->cmd);
    if (r->sub)
        redisAsyncFree(r->sub);
    free(r);
}

int mcpgw_store_redis_init(struct mcpgw_store *st, const char *hostport, char *err, size_t errlen)
{
    struct rstore *r = xcalloc(1, sizeof(*r));
    struct timeval tv = {1, 0};
    unsigned char md[SHA_DIGEST_LENGTH];
    const char *at = strrchr(hostport, '@'), *env;
    if (at) {
        /* [user]:password@host:port: no percent-decoding, so a password with ':' '@' '/' '%'
         * goes in MCPGW_REDIS_PASSWORD instead (which also keeps it out of ps and logs). */
        const char *colon = memchr(hostport, ':', (size_t)(at - hostport));
        if (!colon || colon == at - 1) {
            snprintf(err, errlen,
                     "--store: write credentials as redis://[USER]:PASSWORD@HOST:PORT");
            free(r);
            return -1;
        }
        snprintf(r->user, sizeof(r->user), "%.*s", (int)(colon - hostport), hostport);
        snprintf(r->pass, sizeof(r->pass), "%.*s", (int)(at - colon - 1), colon + 1);
        hostport = at + 1;
    } else if ((env = getenv("MCPGW_REDIS_PASSWORD")) != NULL && env[0]) {
        snprintf(r->pass, sizeof(r->pass), "%s", env);
        if ((env = getenv("MCPGW_REDIS_USER")) != NULL)
            snprintf(r->user, sizeof(r->user), "%s", env);
    }
    if (mcpgw_parse_hostport(hostport, r->host, sizeof(r->host), &r->port, err, errlen) < 0) {
        free(r);
        return -1;
    }
    r->st = st;
    st->impl = r;
    snprintf(r->channel, sizeof(r->channel), "mcpgw:node:%s", st->cfg.node_id);
    snprintf(r->ttl, sizeof(r->ttl), "%llu", (unsigned long long)st->cfg.session_ttl_ms);
    for (int i = 0; i < S_COUNT; i++) {
        SHA1((const unsigned char *)scripts[i], strlen(scripts[i]), md);
        for (int j = 0; j < SHA_DIGEST_LENGTH; j++)
            snprintf(&r->sha[i][j * 2], 3, "%02x", md[j]);
    }
    r->timer = event_new(st->cfg.base, -1, EV_PERSIST, on_timer, r);
    event_add(r->timer, &tv);
    connect_all(r);
    return 0;
}

const struct mcpgw_store_ops mcpgw_store_redis_ops = {
    .name = "redis",
    .list_change = r_list_change,
    .shared = 1,
    .up = up,
    .event_counter = event_counter,
    .free = r_free,
    .create = r_create,
    .claim = r_claim,
    .save = r_save,
    .subscribe = r_subscribe,
    .del = r_delete,
    .touch = r_touch,
    .replay = r_replay,
    .replay_uris = r_replay_uris,
    .note_write = r_note_write,
    .note_read = r_note_read,
    .result_get = r_result_get,
    .resync = r_resync,
    .result_put = r_result_put,
    .upstream_put = r_upstream_put,
    .command = r_command,
    .task_put = r_task_put,
    .task_get = r_task_get,
    .node_send = r_node_send,
};
