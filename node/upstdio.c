/* upstdio.c - a supervised stdio child on the loop: posix_spawn into its own process group,
 * pipes as bufferevents, exit noticed through a pidfd, restarts with exponential backoff. */
#include "node/upstdio.h"

#include "common/jscan.h"
#include "common/lines.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define STDERR_LINE_MAX 4096
#define WRITE_QUEUE_MAX (64u << 20)

struct mcpgw_upstdio_call {
    struct mcpgw_upstdio *s;
    struct mcpgw_upstdio_call *prev, *next;
    long long id;
    char *method;
    mcpgw_upstdio_reply_fn reply;
    mcpgw_upstdio_raw_fn raw; /* a plain result passed through (NULL: parsed for reply) */
    void *arg;
    struct event *timer;
    uint64_t sent_ms;
};

struct mcpgw_upstdio {
    struct event_base *base;
    char *name;
    char **argv;
    struct mcpgw_upstdio_cfg cfg;
    struct mcpgw_upstdio_cbs cbs;
    void *arg;
    pid_t pid;
    int pidfd;
    struct event *exit_ev;
    struct bufferevent *in, *out, *err;
    int out_discard, err_discard; /* inside an over-long line: drop up to its newline */
    uint64_t started_ms;
    unsigned quick_exits, restarts;
    struct event *restart_ev, *kill_ev;
    int stopping;
    void (*stop_done)(void *arg);
    void *stop_arg;
    long long next_id;
    struct mcpgw_upstdio_call *calls;
    int busy, dying;
};

static const char *const err_names[MCPGW_UPSTDIO_E_COUNT] = {"ok", "exited", "down", "timeout",
                                                             "busy"};

const char *mcpgw_upstdio_err_str(enum mcpgw_upstdio_err e)
{
    return (unsigned)e < MCPGW_UPSTDIO_E_COUNT ? err_names[e] : "?";
}

/* ---- command lines ---- */

void mcpgw_upstdio_argv_free(char **argv)
{
    for (size_t i = 0; argv && argv[i]; i++)
        free(argv[i]);
    free(argv);
}

char **mcpgw_upstdio_split(const char *p, char *err, size_t errlen)
{
    char **argv = NULL, *w = xmalloc(strlen(p) + 1);
    size_t n = 0, wl = 0;
    int inword = 0;
    for (;; p++) {
        char c = *p;
        if (c == '\0' || c == ' ' || c == '\t' || c == '\n') {
            if (inword) {
                argv = xrealloc(argv, (n + 2) * sizeof(*argv));
                argv[n++] = xstrndup(w, wl);
                argv[n] = NULL;
                wl = 0;
                inword = 0;
            }
            if (c == '\0')
                break;
            continue;
        }
        inword = 1;
        if (c == '\'') {
            const char *e = strchr(p + 1, '\'');
            if (!e) {
                snprintf(err, errlen, "unterminated ' in the command line");
                goto fail;
            }
            memcpy(w + wl, p + 1, (size_t)(e - p - 1));
            wl += (size_t)(e - p - 1);
            p = e;
        } else if (c == '"') {
            for (p++; *p && *p != '"'; p++) {
                if (*p == '\\' && p[1] && strchr("\"\\$`", p[1]))
                    p++;
                w[wl++] = *p;
            }
            if (!*p) {
                snprintf(err, errlen, "unterminated \" in the command line");
                goto fail;
            }
        } else if (c == '\\') {
            if (!p[1]) {
                snprintf(err, errlen, "the command line ends with a lone backslash");
                goto fail;
            }
            w[wl++] = *++p;
        } else {
            w[wl++] = c;
        }
    }
    free(w);
    if (!argv)
        snprintf(err, errlen, "empty command line");
    return argv;
fail:
    free(w);
    mcpgw_upstdio_argv_free(argv);
    return NULL;
}

/* ---- lifetime guard: callbacks may free s ---- */

static void really_free(struct mcpgw_upstdio *s);

static void enter(struct mcpgw_upstdio *s)
{
    s->busy++;
}

static int leave(struct mcpgw_upstdio *s)
{
    if (--s->busy == 0 && s->dying) {
        really_free(s);
        return 1;
    }
    return s->dying;
}

/* ---- calls ---- */

static void call_unlink_free(struct mcpgw_upstdio_call *c)
{
    struct mcpgw_upstdio *s = c->s;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->timer)
        event_free(c->timer);
    free(c->method);
    free(c);
}

/* Ends c with this outcome: unlinked first, so the reply may start or cancel other calls. */
static void call_end(struct mcpgw_upstdio_call *c, enum mcpgw_upstdio_err err,
                     const struct mcpgw_jsonrpc_msg *m, const char *fmt, ...)
{
    char why[512] = "ok";
    struct mcpgw_upstdio *s = c->s;
    mcpgw_upstdio_reply_fn reply = c->reply;
    void *arg = c->arg;
    if (fmt) {
        va_list ap;
        int n = snprintf(why, sizeof(why), "upstream %s: ", s->name);
        va_start(ap, fmt);
        vsnprintf(why + n, sizeof(why) - (size_t)n, fmt, ap);
        va_end(ap);
    }
    call_unlink_free(c);
    if (reply)
        reply(arg, err, why, m);
}

static void on_call_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_upstdio_call *c = arg;
    struct mcpgw_upstdio *s = c->s;
    long waited = (long)(mcpgw_now_ms() - c->sent_ms);
    enter(s);
    log_warn("upstream %s: no answer to %s within %ld ms", s->name, c->method, waited);
    if (s->cbs.on_hang)
        s->cbs.on_hang(s->arg, c->method, waited);
    if (!s->dying) {
        /* the hook may have restarted the child, which already failed c: look it up again */
        for (struct mcpgw_upstdio_call *k = s->calls; k; k = k->next)
            if (k == c) {
                call_end(c, MCPGW_UPSTDIO_E_TIMEOUT, NULL, "no answer to %s within %ld ms",
                         c->method, waited);
                break;
            }
    }
    leave(s);
}

static void fail_all(struct mcpgw_upstdio *s, const char *how)
{
    while (s->calls && !s->dying)
        call_end(s->calls, MCPGW_UPSTDIO_E_EXITED, NULL, "%s before answering %s", how,
                 s->calls->method);
}

/* ---- output from the child ---- */

/* Whether line is the plain answer to a pending call that takes it unparsed (raw): the checks
 * of node/upmcp.c's pass_through, with the call found by the integer id as written. Anything
 * else takes the full parse below, with today's handling. */
static int pass_through(struct mcpgw_upstdio *s, const char *line, size_t len)
{
    struct mcpgw_jscan_top t;
    const struct mcpgw_jscan_member *jr, *id, *res;
    struct mcpgw_upstdio_call *c = s->calls;
    mcpgw_upstdio_raw_fn raw;
    void *arg;
    long long v = 0;
    while (c && !c->raw)
        c = c->next;
    if (!c || mcpgw_jscan_object(line, len, &t) != MCPGW_JSCAN_OK || t.n != 3 || t.more)
        return 0;
    jr = mcpgw_jscan_get(&t, "jsonrpc");
    id = mcpgw_jscan_get(&t, "id");
    res = mcpgw_jscan_get(&t, "result");
    /* our ids are positive and below 10^18: digits only, no sign, fraction or exponent */
    if (!jr || !id || !res || jr->val_len != 5 || memcmp(jr->val, "\"2.0\"", 5) != 0 ||
        res->val[0] != '{' || id->val_len > 18 || id->val[0] == '0')
        return 0;
    for (size_t i = 0; i < id->val_len; i++) {
        if (id->val[i] < '0' || id->val[i] > '9')
            return 0;
        v = v * 10 + (id->val[i] - '0');
    }
    for (c = s->calls; c && c->id != v; c = c->next)
        ;
    if (!c || !c->raw)
        return 0;
    raw = c->raw;
    arg = c->arg;
    call_unlink_free(c); /* as call_end: the callback may start or cancel other calls */
    raw(arg, res->val, res->val_len);
    return 1;
}

static void on_line(struct mcpgw_upstdio *s, const char *line, size_t len)
{
    struct mcpgw_jsonrpc_msg m;
    const char *why = NULL;
    json_object *bad = NULL;
    if (len && line[len - 1] == '\r')
        len--;
    if (len == 0 || pass_through(s, line, len))
        return;
    if (mcpgw_jsonrpc_parse(line, len, &m, &bad, &why) != 0) {
        json_object_put(bad);
        log_warn("upstream %s: dropped output that is not JSON-RPC (%s): %.*s", s->name, why,
                 (int)(len > 200 ? 200 : len), line);
        return;
    }
    if (m.kind == MCPGW_JSONRPC_RESULT || m.kind == MCPGW_JSONRPC_ERROR) {
        struct mcpgw_upstdio_call *c = s->calls;
        if (json_object_is_type(m.id, json_type_int))
            while (c && c->id != json_object_get_int64(m.id))
                c = c->next;
        else
            c = NULL;
        if (c)
            call_end(c, MCPGW_UPSTDIO_OK, &m, NULL);
        else
            log_warn("upstream %s: dropped an answer to no pending request (id %s)", s->name,
                     json_object_to_json_string(m.id));
    } else if (s->cbs.on_message) {
        s->cbs.on_message(s->arg, &m);
    }
    mcpgw_jsonrpc_msg_deinit(&m);
}

struct take_ctx {
    struct mcpgw_upstdio *s;
    void (*fn)(struct mcpgw_upstdio *s, const char *line, size_t len);
};

static int take_one(void *arg, const char *line, size_t len)
{
    struct take_ctx *c = arg;
    c->fn(c->s, line, len);
    return c->s->dying;
}

/* Takes whole lines out of b (common/lines.h); a line over max is dropped, with a log line. */
static void take_lines(struct mcpgw_upstdio *s, struct evbuffer *b, size_t max, int *discard,
                       void (*fn)(struct mcpgw_upstdio *s, const char *line, size_t len))
{
    struct take_ctx c = {s, fn};
    if (!s->dying && mcpgw_lines_take(b, max, discard, take_one, &c))
        log_warn("upstream %s: dropped a line over the %zu-byte cap", s->name, max);
}

static void on_out_read(struct bufferevent *bev, void *arg)
{
    struct mcpgw_upstdio *s = arg;
    enter(s);
    take_lines(s, bufferevent_get_input(bev), s->cfg.max_msg, &s->out_discard, on_line);
    leave(s);
}

static void on_err_line(struct mcpgw_upstdio *s, const char *line, size_t len)
{
    if (len && line[len - 1] == '\r')
        len--;
    log_info("upstream %s stderr: %.*s", s->name, (int)len, line);
}

static void on_err_read(struct bufferevent *bev, void *arg)
{
    struct mcpgw_upstdio *s = arg;
    struct evbuffer *b = bufferevent_get_input(bev);
    take_lines(s, b, STDERR_LINE_MAX, &s->err_discard, on_err_line);
}

/* EOF or error on a pipe: nothing to do, the pidfd tells when the child is gone. */
static void on_pipe_event(struct bufferevent *bev, short what, void *arg)
{
    bufferevent_disable(bev, EV_READ | EV_WRITE);
}

/* ---- spawning, exit, restart ---- */

static void close_pipes(struct mcpgw_upstdio *s)
{
    if (s->in)
        bufferevent_free(s->in);
    if (s->out)
        bufferevent_free(s->out);
    if (s->err)
        bufferevent_free(s->err);
    s->in = s->out = s->err = NULL;
}

static void describe_status(int status, char *buf, size_t len)
{
    if (WIFEXITED(status))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "was killed by signal %d", WTERMSIG(status));
    else
        snprintf(buf, len, "ended (status 0x%x)", (unsigned)status);
}

static void on_restart(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_upstdio *s = arg;
    char err[256];
    s->restarts++;
    if (mcpgw_upstdio_start(s, err, sizeof(err)) < 0)
        log_warn("upstream %s: %s", s->name, err);
}

/* The next restart delay, or -1 when none follows. */
static long schedule_restart(struct mcpgw_upstdio *s)
{
    long d;
    struct timeval tv;
    if (s->stopping || s->dying)
        return -1;
    if (s->started_ms && mcpgw_now_ms() - s->started_ms >= (uint64_t)s->cfg.stable_ms)
        s->quick_exits = 0;
    d = s->cfg.restart_min_ms;
    for (unsigned i = 0; i < s->quick_exits && d < s->cfg.restart_max_ms; i++)
        d *= 2;
    if (d > s->cfg.restart_max_ms)
        d = s->cfg.restart_max_ms;
    s->quick_exits++;
    tv.tv_sec = d / 1000;
    tv.tv_usec = (d % 1000) * 1000;
    evtimer_add(s->restart_ev, &tv);
    return d;
}

static void on_child_exit(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_upstdio *s = arg;
    int status = 0;
    char how[96];
    long next;
    if (waitpid(s->pid, &status, WNOHANG) != s->pid)
        return;
    enter(s);
    /* what the child wrote before it died is still in the pipe: read it before failing calls */
    if (s->out) {
        struct evbuffer *b = bufferevent_get_input(s->out);
        int fdo = bufferevent_getfd(s->out);
        while (evbuffer_read(b, fdo, 65536) > 0)
            ;
        take_lines(s, b, s->cfg.max_msg, &s->out_discard, on_line);
    }
    kill(-s->pid, SIGKILL); /* whatever it left behind in its group */
    event_free(s->exit_ev);
    s->exit_ev = NULL;
    close(s->pidfd);
    s->pidfd = -1;
    close_pipes(s);
    evtimer_del(s->kill_ev);
    describe_status(status, how, sizeof(how));
    log_warn("upstream %s: child %d %s", s->name, (int)s->pid, how);
    s->pid = 0;
    fail_all(s, s->stopping ? "the child was stopped" : "the child exited");
    if (s->dying) {
        leave(s);
        return;
    }
    next = schedule_restart(s);
    if (s->cbs.on_exit)
        s->cbs.on_exit(s->arg, status, next);
    if (s->stopping && !s->dying && s->stop_done) {
        void (*done)(void *) = s->stop_done;
        s->stop_done = NULL;
        done(s->stop_arg);
    }
    leave(s);
}

/* bufferevent_socket works on pipes: it reads and writes with read/readv/writev. */
static struct bufferevent *pipe_bev(struct mcpgw_upstdio *s, int fd, bufferevent_data_cb on_read)
{
    struct bufferevent *b;
    evutil_make_socket_nonblocking(fd);
    b = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(b, on_read, NULL, on_pipe_event, s);
    bufferevent_enable(b, on_read ? EV_READ : EV_WRITE);
    return b;
}

int mcpgw_upstdio_start(struct mcpgw_upstdio *s, char *err, size_t errlen)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1}, er[2] = {-1, -1}, rc = -1, e;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, dfl;
    pid_t pid;
    if (s->pid) {
        snprintf(err, errlen, "upstream %s is already running (pid %d)", s->name, (int)s->pid);
        return -1;
    }
    s->stopping = 0;
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(er, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "upstream %s: pipe: %s", s->name, strerror(errno));
        goto out;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, er[1], 2);
    posix_spawnattr_init(&at);
    sigemptyset(&none);
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGPIPE);
    sigaddset(&dfl, SIGTERM);
    sigaddset(&dfl, SIGINT);
    sigaddset(&dfl, SIGHUP);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &dfl);
    /* its own process group, so that stop and restart reach what it spawns (npx -> node) */
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
    e = posix_spawnp(&pid, s->argv[0], &fa, &at, s->argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (e != 0) {
        snprintf(err, errlen, "upstream %s: cannot run '%s': %s", s->name, s->argv[0], strerror(e));
        goto out;
    }
    s->pid = pid;
    s->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (s->pidfd < 0) { /* cannot supervise it: do not leave it running */
        snprintf(err, errlen, "upstream %s: pidfd_open: %s", s->name, strerror(errno));
        kill(-pid, SIGKILL);
        waitpid(pid, NULL, 0);
        s->pid = 0;
        goto out;
    }
    s->exit_ev = event_new(s->base, s->pidfd, EV_READ | EV_PERSIST, on_child_exit, s);
    event_add(s->exit_ev, NULL);
    s->in = pipe_bev(s, in[1], NULL);
    s->out = pipe_bev(s, out[0], on_out_read);
    s->err = pipe_bev(s, er[0], on_err_read);
    in[1] = out[0] = er[0] = -1; /* owned by the bufferevents now */
    s->out_discard = s->err_discard = 0;
    s->started_ms = mcpgw_now_ms();
    log_info("upstream %s: started child %d (%s)", s->name, (int)pid, s->argv[0]);
    rc = 0;
out:
    for (int i = 0; i < 2; i++) {
        if (in[i] >= 0)
            close(in[i]);
        if (out[i] >= 0)
            close(out[i]);
        if (er[i] >= 0)
            close(er[i]);
    }
    if (rc < 0) {
        s->started_ms = 0;
        schedule_restart(s);
        return -1;
    }
    if (s->cbs.on_start)
        s->cbs.on_start(s->arg, pid);
    return 0;
}

static void on_kill(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_upstdio *s = arg;
    if (s->pid) {
        log_warn("upstream %s: child %d did not stop within %ld ms: SIGKILL", s->name, (int)s->pid,
                 s->cfg.stop_grace_ms);
        kill(-s->pid, SIGKILL);
    }
}

void mcpgw_upstdio_stop(struct mcpgw_upstdio *s, void (*done)(void *arg), void *arg)
{
    struct timeval tv = {s->cfg.stop_grace_ms / 1000, (s->cfg.stop_grace_ms % 1000) * 1000};
    s->stopping = 1;
    evtimer_del(s->restart_ev);
    if (!s->pid) {
        if (done)
            done(arg);
        return;
    }
    s->stop_done = done;
    s->stop_arg = arg;
    if (s->in) { /* EOF on stdin: many stdio servers exit on it alone */
        bufferevent_free(s->in);
        s->in = NULL;
    }
    kill(-s->pid, SIGTERM);
    evtimer_add(s->kill_ev, &tv);
}

void mcpgw_upstdio_restart(struct mcpgw_upstdio *s)
{
    if (s->pid)
        kill(-s->pid, SIGKILL);
}

/* ---- requests ---- */

static int write_line(struct mcpgw_upstdio *s, const char *msg, size_t len)
{
    struct evbuffer *o;
    if (!s->pid || !s->in || s->stopping || s->dying)
        return -1;
    o = bufferevent_get_output(s->in);
    if (evbuffer_get_length(o) + len > WRITE_QUEUE_MAX) {
        log_warn("upstream %s: its stdin is %u bytes behind: refusing more", s->name,
                 WRITE_QUEUE_MAX);
        return -1;
    }
    evbuffer_add(o, msg, len);
    evbuffer_add(o, "\n", 1);
    return 0;
}

struct mcpgw_upstdio_call *mcpgw_upstdio_request(struct mcpgw_upstdio *s, const char *method,
                                                 json_object *params, mcpgw_upstdio_reply_fn reply,
                                                 void *arg)
{
    struct mcpgw_upstdio_call *c;
    json_object *id = json_object_new_int64(s->next_id + 1);
    size_t len;
    char *msg = mcpgw_jsonrpc_request(id, method, params, &len); /* compact: no newline inside */
    json_object_put(id);
    if (write_line(s, msg, len) < 0) {
        free(msg);
        return NULL;
    }
    free(msg);
    c = xcalloc(1, sizeof(*c));
    c->s = s;
    c->id = ++s->next_id;
    c->method = xstrdup(method);
    c->reply = reply;
    c->arg = arg;
    c->sent_ms = mcpgw_now_ms();
    if (s->cfg.timeout_ms > 0) {
        struct timeval tv = {s->cfg.timeout_ms / 1000, (s->cfg.timeout_ms % 1000) * 1000};
        c->timer = evtimer_new(s->base, on_call_timeout, c);
        evtimer_add(c->timer, &tv);
    }
    c->next = s->calls;
    if (s->calls)
        s->calls->prev = c;
    s->calls = c;
    return c;
}

void mcpgw_upstdio_call_set_raw(struct mcpgw_upstdio_call *c, mcpgw_upstdio_raw_fn raw)
{
    c->raw = raw;
}

long long mcpgw_upstdio_call_id(const struct mcpgw_upstdio_call *c)
{
    return c->id;
}

void mcpgw_upstdio_call_cancel(struct mcpgw_upstdio_call *c)
{
    call_unlink_free(c);
}

int mcpgw_upstdio_send(struct mcpgw_upstdio *s, const char *msg, size_t len)
{
    if (memchr(msg, '\n', len))
        return -1;
    return write_line(s, msg, len);
}

pid_t mcpgw_upstdio_pid(const struct mcpgw_upstdio *s)
{
    return s->pid;
}

int mcpgw_upstdio_running(const struct mcpgw_upstdio *s)
{
    return s->pid != 0 && !s->stopping;
}

unsigned mcpgw_upstdio_restarts(const struct mcpgw_upstdio *s)
{
    return s->restarts;
}

/* ---- lifetime ---- */

struct mcpgw_upstdio *mcpgw_upstdio_new(struct event_base *base,
                                        const struct mcpgw_upstdio_cfg *cfg,
                                        const struct mcpgw_upstdio_cbs *cbs, void *arg)
{
    struct mcpgw_upstdio *s = xcalloc(1, sizeof(*s));
    size_t n = 0;
    s->base = base;
    s->cfg = *cfg;
    s->name = xstrdup(cfg->name ? cfg->name : "?");
    while (cfg->argv[n])
        n++;
    s->argv = xcalloc(n + 1, sizeof(*s->argv));
    for (size_t i = 0; i < n; i++)
        s->argv[i] = xstrdup(cfg->argv[i]);
    s->cfg.argv = NULL;
    s->cfg.name = NULL;
    if (s->cfg.restart_min_ms <= 0)
        s->cfg.restart_min_ms = 100;
    if (s->cfg.restart_max_ms <= 0)
        s->cfg.restart_max_ms = 30000;
    if (s->cfg.stable_ms <= 0)
        s->cfg.stable_ms = 10000;
    if (s->cfg.stop_grace_ms <= 0)
        s->cfg.stop_grace_ms = 5000;
    if (!s->cfg.max_msg)
        s->cfg.max_msg = MCPGW_UPSTDIO_MAX_MSG;
    if (cbs)
        s->cbs = *cbs;
    s->arg = arg;
    s->pidfd = -1;
    s->restart_ev = evtimer_new(base, on_restart, s);
    s->kill_ev = evtimer_new(base, on_kill, s);
    return s;
}

static void really_free(struct mcpgw_upstdio *s)
{
    while (s->calls)
        call_unlink_free(s->calls);
    if (s->pid) {
        kill(-s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
    }
    if (s->exit_ev)
        event_free(s->exit_ev);
    if (s->pidfd >= 0)
        close(s->pidfd);
    close_pipes(s);
    event_free(s->restart_ev);
    event_free(s->kill_ev);
    mcpgw_upstdio_argv_free(s->argv);
    free(s->name);
    free(s);
}

void mcpgw_upstdio_free(struct mcpgw_upstdio *s)
{
    if (!s || s->dying)
        return;
    s->dying = 1;
    if (!s->busy)
        really_free(s);
}
