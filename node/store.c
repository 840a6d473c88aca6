/* store.c - the store interface's dispatch and the in-process (memory) store. */
#include "node/store.h"

#include "common/util.h"
#include "node/notes.h"
#include "node/session.h"
#include "node/store-impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *mcpgw_store_err_str(int err)
{
    switch (err) {
    case MCPGW_STORE_OK:
        return "ok";
    case MCPGW_STORE_UNAVAILABLE:
        return "session store unavailable";
    case MCPGW_STORE_GONE:
        return "session record not found";
    case MCPGW_STORE_STALE:
        return "session moved to another node";
    case MCPGW_STORE_FOREIGN:
        return "session belongs to another principal";
    default:
        return "unknown store error";
    }
}

static const char *const verdict_names[MCPGW_STORE_VERIFY_COUNT] = {"owned", "moved", "lost",
                                                                    "failed"};

const char *mcpgw_store_verdict_str(enum mcpgw_store_verdict v)
{
    return (unsigned)v < MCPGW_STORE_VERIFY_COUNT ? verdict_names[v] : "?";
}

/* ---- memory: everything is local, every callback fires at once ---- */

static void mem_create(struct mcpgw_store *st, struct mcpgw_session *s, mcpgw_store_done_fn done,
                       void *arg)
{
    s->epoch = 1;
    done(arg, MCPGW_STORE_OK);
}

static void mem_claim(struct mcpgw_store *st, const char *sid, size_t len,
                      mcpgw_store_claim_fn done, void *arg)
{
    done(arg, NULL, MCPGW_STORE_GONE);
}

static void mem_save(struct mcpgw_store *st, struct mcpgw_session *s, mcpgw_store_done_fn done,
                     void *arg)
{
    done(arg, MCPGW_STORE_OK);
}

static void mem_subscribe(struct mcpgw_store *st, struct mcpgw_session *s, const char *uri, int on,
                          mcpgw_store_done_fn done, void *arg)
{
    done(arg, MCPGW_STORE_OK);
}

static void mem_delete(struct mcpgw_store *st, struct mcpgw_session *s)
{
}

static void mem_touch(struct mcpgw_store *st, struct mcpgw_session *s)
{
}

/* The memory store keeps no events: a session's GET stream replays from its own log. */
static void mem_replay(struct mcpgw_store *st, const char *sid, const char *after,
                       mcpgw_store_event_fn visit, mcpgw_store_replayed_fn done, void *arg)
{
    done(arg, MCPGW_STORE_OK, 0);
}

static void mem_replay_uris(struct mcpgw_store *st, const char *uris, uint64_t after,
                            mcpgw_store_event_fn visit, mcpgw_store_replayed_fn done, void *arg)
{
    done(arg, MCPGW_STORE_OK, 0);
}

static struct mcpgw_notes *mem_notes(struct mcpgw_store *st)
{
    return st->impl;
}

static void mem_note_write(struct mcpgw_store *st, const char *name, const char *text,
                           mcpgw_store_note_fn done, void *arg)
{
    int created;
    char uri[128];
    struct mcpgw_store_event ev = {0, 0, uri, 0};
    ev.version = mcpgw_notes_write(mem_notes(st), name, text, &created);
    snprintf(uri, sizeof(uri), "mcpgw://notes/%s", name);
    if (created)
        mcpgw_store_report_notes(st, &name, 1);
    /* This node is the whole cluster: its subscribers are told here and now. */
    mcpgw_store_report_resource(st, &ev);
    done(arg, MCPGW_STORE_OK, text, ev.version);
}

static void mem_note_read(struct mcpgw_store *st, const char *name, mcpgw_store_note_fn done,
                          void *arg)
{
    uint64_t v = 0;
    const char *text = mcpgw_notes_read(mem_notes(st), name, &v);
    done(arg, text ? MCPGW_STORE_OK : MCPGW_STORE_GONE, text, v);
}

static void mem_result_get(struct mcpgw_store *st, struct mcpgw_session *s, const char *rid,
                           mcpgw_store_result_fn done, void *arg)
{
    done(arg, MCPGW_STORE_OK, NULL);
}

static void mem_result_put(struct mcpgw_store *st, struct mcpgw_session *s, const char *rid,
                           const char *json, mcpgw_store_done_fn done, void *arg)
{
    done(arg, MCPGW_STORE_OK);
}

static void mem_resync(struct mcpgw_store *st, mcpgw_store_done_fn done, void *arg)
{
    done(arg, MCPGW_STORE_OK);
}

static int mem_up(const struct mcpgw_store *st)
{
    return 1;
}

static void mem_free(struct mcpgw_store *st)
{
    mcpgw_notes_free(mem_notes(st));
}

static void mem_upstream_put(struct mcpgw_store *st, struct mcpgw_session *s, const char *name,
                             const char *value, mcpgw_store_done_fn done, void *arg)
{
    (void)st, (void)s, (void)name, (void)value;
    if (done)
        done(arg, MCPGW_STORE_OK);
}

static const struct mcpgw_store_ops memory_ops = {
    .name = "memory",
    .shared = 0,
    .up = mem_up,
    .free = mem_free,
    .create = mem_create,
    .claim = mem_claim,
    .save = mem_save,
    .subscribe = mem_subscribe,
    .del = mem_delete,
    .touch = mem_touch,
    .replay = mem_replay,
    .replay_uris = mem_replay_uris,
    .note_write = mem_note_write,
    .note_read = mem_note_read,
    .result_get = mem_result_get,
    .resync = mem_resync,
    .result_put = mem_result_put,
    .upstream_put = mem_upstream_put,
};

/* ---- dispatch ---- */

struct mcpgw_store *mcpgw_store_new(const struct mcpgw_store_config *cfg,
                                    const struct mcpgw_store_events *ev, void *arg, char *err,
                                    size_t errlen)
{
    struct mcpgw_store *st = xcalloc(1, sizeof(*st));
    st->cfg = *cfg;
    st->ev = ev;
    st->ev_arg = arg;
    if (strcmp(cfg->url, "memory") == 0) {
        st->ops = &memory_ops;
        st->impl = mcpgw_notes_new();
        return st;
    }
    if (strncmp(cfg->url, "redis://", 8) == 0) {
        st->ops = &mcpgw_store_redis_ops;
        if (mcpgw_store_redis_init(st, cfg->url + 8, err, errlen) == 0)
            return st;
        free(st);
        return NULL;
    }
    snprintf(err, errlen, "--store '%s' is not supported: use memory or redis://HOST:PORT",
             cfg->url);
    free(st);
    return NULL;
}

void mcpgw_store_free(struct mcpgw_store *st)
{
    if (!st)
        return;
    st->ops->free(st);
    mcpgw_store_task_mem_free(st);
    free(st);
}

int mcpgw_store_shared(const struct mcpgw_store *st)
{
    return st->ops->shared;
}

int mcpgw_store_up(const struct mcpgw_store *st)
{
    return st->ops->up(st);
}

uint64_t mcpgw_store_event_counter(const struct mcpgw_store *st)
{
    return st->ops->event_counter ? st->ops->event_counter(st) : 0;
}

void mcpgw_store_create(struct mcpgw_store *st, struct mcpgw_session *s, mcpgw_store_done_fn done,
                        void *arg)
{
    st->ops->create(st, s, done, arg);
}

void mcpgw_store_set_claimant(struct mcpgw_store *st, const char *principal)
{
    st->claimant = principal;
}

void mcpgw_store_claim(struct mcpgw_store *st, const char *sid, size_t len,
                       mcpgw_store_claim_fn done, void *arg)
{
    st->ops->claim(st, sid, len, done, arg);
}

void mcpgw_store_save(struct mcpgw_store *st, struct mcpgw_session *s, mcpgw_store_done_fn done,
                      void *arg)
{
    st->ops->save(st, s, done, arg);
}

void mcpgw_store_subscribe(struct mcpgw_store *st, struct mcpgw_session *s, const char *uri, int on,
                           mcpgw_store_done_fn done, void *arg)
{
    st->ops->subscribe(st, s, uri, on, done, arg);
}

void mcpgw_store_delete(struct mcpgw_store *st, struct mcpgw_session *s)
{
    st->ops->del(st, s);
}

void mcpgw_store_touch(struct mcpgw_store *st, struct mcpgw_session *s)
{
    st->ops->touch(st, s);
}

void mcpgw_store_replay(struct mcpgw_store *st, struct mcpgw_session *s, const char *after,
                        mcpgw_store_event_fn visit, mcpgw_store_replayed_fn done, void *arg)
{
    st->ops->replay(st, s->id, after, visit, done, arg);
}

void mcpgw_store_replay_uris(struct mcpgw_store *st, const char *uris, uint64_t after,
                             mcpgw_store_event_fn visit, mcpgw_store_replayed_fn done, void *arg)
{
    st->ops->replay_uris(st, uris, after, visit, done, arg);
}

int mcpgw_store_list_change(struct mcpgw_store *st, const char *kind, uint64_t hash,
                            mcpgw_store_done_fn done, void *arg)
{
    if (!st->ops->list_change)
        return -1;
    st->ops->list_change(st, kind, hash, done, arg);
    return 0;
}

void mcpgw_store_claim_replay(struct mcpgw_store *st, const char *sid, size_t len,
                              const char *after, mcpgw_store_claim_fn claimed, void *claim_arg,
                              mcpgw_store_event_fn visit, mcpgw_store_replayed_fn done, void *arg)
{
    char id[MCPGW_SESSION_ID_MAX];
    /* An over-long id is claimed in vain (no such record); its replay finds nothing. */
    snprintf(id, sizeof(id), "%.*s", (int)len, sid);
    st->ops->claim(st, sid, len, claimed, claim_arg);
    st->ops->replay(st, id, after, visit, done, arg);
}

void mcpgw_store_note_write(struct mcpgw_store *st, const char *name, const char *text,
                            mcpgw_store_note_fn done, void *arg)
{
    st->ops->note_write(st, name, text, done, arg);
}

void mcpgw_store_note_read(struct mcpgw_store *st, const char *name, mcpgw_store_note_fn done,
                           void *arg)
{
    st->ops->note_read(st, name, done, arg);
}

void mcpgw_store_result_get(struct mcpgw_store *st, struct mcpgw_session *s, const char *rid,
                            mcpgw_store_result_fn done, void *arg)
{
    st->ops->result_get(st, s, rid, done, arg);
}

void mcpgw_store_resync(struct mcpgw_store *st, mcpgw_store_done_fn done, void *arg)
{
    st->ops->resync(st, done, arg);
}

void mcpgw_store_result_put(struct mcpgw_store *st, struct mcpgw_session *s, const char *rid,
                            const char *json, mcpgw_store_done_fn done, void *arg)
{
    st->ops->result_put(st, s, rid, json, done, arg);
}

void mcpgw_store_upstream_put(struct mcpgw_store *st, struct mcpgw_session *s, const char *name,
                              const char *value, mcpgw_store_done_fn done, void *arg)
{
    st->ops->upstream_put(st, s, name, value, done, arg);
}

void mcpgw_store_node_send(struct mcpgw_store *st, const char *node_id, const char *msg, size_t len,
                           mcpgw_store_sent_fn done, void *arg)
{
    if (st->ops->node_send)
        st->ops->node_send(st, node_id, msg, len, done, arg);
    else if (done)
        done(arg, MCPGW_STORE_UNAVAILABLE, 0);
}

void mcpgw_store_set_node_handler(struct mcpgw_store *st, mcpgw_store_node_msg_fn fn, void *arg)
{
    st->node_msg = fn;
    st->node_msg_arg = arg;
}

void mcpgw_store_set_task_handler(struct mcpgw_store *st, mcpgw_store_task_note_fn fn, void *arg)
{
    st->task_note = fn;
    st->task_note_arg = arg;
}

/* ---- reports ---- */

void mcpgw_store_report_node_msg(struct mcpgw_store *st, const char *msg, size_t len)
{
    if (st->node_msg)
        st->node_msg(st->node_msg_arg, msg, len);
}

void mcpgw_store_report_task_note(struct mcpgw_store *st, const char *msg, size_t len)
{
    if (st->task_note)
        st->task_note(st->task_note_arg, msg, len);
}

void mcpgw_store_report_moved(struct mcpgw_store *st, struct mcpgw_session *s, uint64_t epoch)
{
    if (st->ev && st->ev->moved)
        st->ev->moved(st->ev_arg, s, epoch);
}

void mcpgw_store_report_resource(struct mcpgw_store *st, const struct mcpgw_store_event *ev)
{
    if (st->ev && st->ev->resource)
        st->ev->resource(st->ev_arg, ev);
}

void mcpgw_store_report_hold(struct mcpgw_store *st, struct mcpgw_session *s)
{
    if (st->ev && st->ev->hold)
        st->ev->hold(st->ev_arg, s);
}

void mcpgw_store_report_verified(struct mcpgw_store *st, struct mcpgw_session *s,
                                 enum mcpgw_store_verdict v, const char *owner, uint64_t epoch)
{
    if (st->ev && st->ev->verified)
        st->ev->verified(st->ev_arg, s, v, owner, epoch);
}

void mcpgw_store_report_notes(struct mcpgw_store *st, const char *const *names, size_t count)
{
    if (st->ev && st->ev->notes && count)
        st->ev->notes(st->ev_arg, names, count);
}

void mcpgw_store_report_feed_hold(struct mcpgw_store *st)
{
    if (st->ev && st->ev->feed_hold)
        st->ev->feed_hold(st->ev_arg);
}

void mcpgw_store_report_feed_ready(struct mcpgw_store *st)
{
    if (st->ev && st->ev->feed_ready)
        st->ev->feed_ready(st->ev_arg);
}

void mcpgw_store_report_up(struct mcpgw_store *st, int up)
{
    if (st->ev && st->ev->up)
        st->ev->up(st->ev_arg, up);
}

int mcpgw_store_command(struct mcpgw_store *st, int argc, const char **argv, const size_t *lens,
                        mcpgw_store_raw_fn fn, void *arg)
{
    return st->ops->command ? st->ops->command(st, argc, argv, lens, fn, arg) : -1;
}

void mcpgw_store_task_put(struct mcpgw_store *st, const char *id, const struct mcpgw_store_task *t,
                          const char *expect_owner, uint64_t ttl_ms, mcpgw_store_done_fn done,
                          void *arg)
{
    if (st->ops->task_put)
        st->ops->task_put(st, id, t, expect_owner, ttl_ms, done, arg);
    else
        mcpgw_store_task_mem_put(st, id, t, expect_owner, ttl_ms, done, arg);
}

void mcpgw_store_task_get(struct mcpgw_store *st, const char *id, mcpgw_store_task_fn done,
                          void *arg)
{
    if (st->ops->task_get)
        st->ops->task_get(st, id, done, arg);
    else
        mcpgw_store_task_mem_get(st, id, done, arg);
}
