/* main.c - mcpgw-balancer: configuration, the master process (workers, signals, membership,
 * admin listener) and the worker entry point. */
#include "balancer/admin.h"
#include "balancer/config.h"
#include "balancer/membership.h"
#include "balancer/proxy.h"
#include "balancer/shared.h"
#include "balancer/tls.h"
#include "common/log.h"
#include "common/net.h"
#include "common/util.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define EXIT_SETUP      3    /* a worker could not start: respawning will not help */
#define FAST_DEATH_MS   1000 /* a worker that dies sooner than this counts as crash-looping */
#define MAX_FAST_DEATHS 5
#define KILL_GRACE_MS   2000 /* after drain-timeout, stragglers get SIGKILL */

struct worker_slot {
    pid_t pid;
    uint64_t started_ms;
    int fast_deaths;
    struct event *respawn;
};

static struct {
    struct mcpgw_bal_config cfg;
    int argc;
    char **argv;
    pid_t pid;
    struct event_base *base;
    struct mcpgw_bal_shared *sh;
    struct ssl_ctx_st *tls;
    int listen_fds[MCPGW_BAL_MAX_WORKERS];
    struct worker_slot workers[MCPGW_BAL_MAX_WORKERS];
    struct mcpgw_bal_membership *mem;
    struct mcpgw_bal_admin *admin;
    struct event *ev_kill;
    int draining;
    int exit_code;
} M;

/* ---- worker process ---- */

static struct {
    struct event_base *base;
    struct mcpgw_bal_proxy *px;
    struct event *deadline;
    int draining;
} W;

static void on_worker_drained(void *arg)
{
    event_base_loopbreak(W.base);
}

static void on_worker_deadline(evutil_socket_t fd, short what, void *arg)
{
    log_warn("drain deadline reached with %u client connections open; closing them",
             mcpgw_bal_proxy_clients(W.px));
    event_base_loopbreak(W.base);
}

static void on_worker_term(evutil_socket_t sig, short what, void *arg)
{
    struct timeval tv = {M.cfg.drain_timeout_ms / 1000, (M.cfg.drain_timeout_ms % 1000) * 1000};
    if (W.draining) {
        event_base_loopbreak(W.base);
        return;
    }
    W.draining = 1;
    log_info("draining: %u client connections open", mcpgw_bal_proxy_clients(W.px));
    W.deadline = evtimer_new(W.base, on_worker_deadline, NULL);
    event_add(W.deadline, &tv);
    mcpgw_bal_proxy_drain(W.px, on_worker_drained, NULL);
}

/* libevent complains about descriptors closed under it while the master's loop is freed. */
static void quiet_libevent(int severity, const char *msg)
{
}

static void close_other_fds(int keep)
{
    /* The child must not hold the master's sockets, event loop or other workers' listeners. */
    if (keep > 3)
        close_range(3, (unsigned)keep - 1, 0);
    close_range((unsigned)keep + 1, ~0u, 0);
}

static void worker_main(int idx, const sigset_t *mask)
{
    int fd = M.listen_fds[idx];
    char comp[32], err[256];
    struct event *ev_term, *ev_int;

    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != M.pid)
        _exit(0);
    close_other_fds(fd);
    /* The master's loop is dead weight here; freeing it also releases libevent's signal
     * handling for this process (its descriptors are closed already, so nothing reaches the
     * master's epoll set). */
    event_set_log_callback(quiet_libevent);
    event_base_free(M.base);
    event_set_log_callback(NULL);
    M.base = NULL;
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGCHLD, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    sigprocmask(SIG_SETMASK, mask, NULL);
    snprintf(comp, sizeof(comp), "balancer w%d", idx);
    mcpgw_log_set_component(comp);

    {
        /* Two priorities. 0: the control path, which must not wait behind the relaying of
         * notifications: the node-table watch, accepting (with the request read at once), and
         * writing frames to the nodes (proxy.c, mux.c). 1 (the default): everything else. And a
         * bounded turn: after 16 callbacks or 2 ms at priority 1 the loop polls again and runs
         * what became due at 0. Without the bound a turn relays up to 64 KiB from every node,
         * which on a saturated machine lasts hundreds of milliseconds (docs/balancer.md). */
        struct event_config *ec = event_config_new();
        struct timeval turn = {0, 2000};
        if (ec)
            event_config_set_max_dispatch_interval(ec, &turn, 16, 1);
        W.base = ec ? event_base_new_with_config(ec) : NULL;
        if (ec)
            event_config_free(ec);
    }
    if (W.base && event_base_priority_init(W.base, 2) < 0) {
        event_base_free(W.base);
        W.base = NULL;
    }
    if (!W.base) {
        log_error("cannot create the event loop");
        _exit(EXIT_SETUP);
    }
    MCPGW_STORE(&M.sh->workers[idx].pid, (int64_t)getpid());
    W.px = mcpgw_bal_proxy_new(W.base, &M.cfg, M.sh, idx, fd, M.tls, err, sizeof(err));
    if (!W.px) {
        log_error("%s", err);
        _exit(EXIT_SETUP);
    }
    ev_term = evsignal_new(W.base, SIGTERM, on_worker_term, NULL);
    ev_int = evsignal_new(W.base, SIGINT, on_worker_term, NULL);
    event_add(ev_term, NULL);
    event_add(ev_int, NULL);
    log_debug("worker %d serving (pid %d)", idx, (int)getpid());
    event_base_dispatch(W.base);
    mcpgw_bal_proxy_free(W.px);
    event_free(ev_term);
    event_free(ev_int);
    if (W.deadline)
        event_free(W.deadline);
    /* exit, not _exit: sanitizer builds check the worker for leaks here. */
    exit(0);
}

/* ---- master process ---- */

static int spawn(int idx)
{
    sigset_t all, old;
    pid_t pid;
    /* No signal may run the master's handlers in the child before it resets them. */
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid = fork();
    if (pid == 0) {
        worker_main(idx, &old); /* never returns */
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        log_error("cannot fork worker %d: %s", idx, strerror(errno));
        return -1;
    }
    M.workers[idx].pid = pid;
    M.workers[idx].started_ms = mcpgw_now_ms();
    return 0;
}

static int workers_alive(void)
{
    int n = 0;
    for (int i = 0; i < M.cfg.workers; i++)
        n += M.workers[i].pid > 0;
    return n;
}

static void signal_workers(int sig)
{
    for (int i = 0; i < M.cfg.workers; i++)
        if (M.workers[i].pid > 0)
            kill(M.workers[i].pid, sig);
}

static void on_kill_stragglers(evutil_socket_t fd, short what, void *arg)
{
    log_warn("%d workers still running after the drain deadline: killing them", workers_alive());
    signal_workers(SIGKILL);
}

static void begin_shutdown(int code)
{
    struct timeval tv;
    uint32_t ms = M.cfg.drain_timeout_ms + KILL_GRACE_MS;
    if (M.draining)
        return;
    M.draining = 1;
    M.exit_code = code;
    mcpgw_bal_admin_set_draining(M.admin, 1);
    /* Our copies of the listeners must go too, or the kernel keeps queueing connections. */
    for (int i = 0; i < M.cfg.workers; i++)
        if (M.listen_fds[i] >= 0) {
            close(M.listen_fds[i]);
            M.listen_fds[i] = -1;
        }
    signal_workers(SIGTERM);
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    M.ev_kill = evtimer_new(M.base, on_kill_stragglers, NULL);
    event_add(M.ev_kill, &tv);
    if (!workers_alive())
        event_base_loopbreak(M.base);
}

static void on_term(evutil_socket_t sig, short what, void *arg)
{
    if (M.draining) {
        log_warn("second signal: stopping workers now");
        signal_workers(SIGKILL);
        return;
    }
    log_info("%s: draining (deadline %u ms)", sig == SIGINT ? "SIGINT" : "SIGTERM",
             M.cfg.drain_timeout_ms);
    begin_shutdown(0);
}

static void on_respawn(evutil_socket_t fd, short what, void *arg)
{
    int idx = (int)(intptr_t)arg;
    if (!M.draining && M.workers[idx].pid == 0 && spawn(idx) == 0)
        log_info("worker %d restarted (pid %d)", idx, (int)M.workers[idx].pid);
}

static void clear_worker_gauges(int idx)
{
    struct mcpgw_bal_worker_stats *ws = &M.sh->workers[idx];
    MCPGW_STORE(&ws->pid, 0);
    MCPGW_STORE(&ws->clients, 0);
    for (int n = 0; n < MCPGW_BAL_MAX_NODES; n++) {
        MCPGW_STORE(&ws->nodes[n].active, 0);
        MCPGW_STORE(&ws->nodes[n].idle, 0);
        MCPGW_STORE(&ws->nodes[n].passive_down, 0);
    }
}

static void on_child(evutil_socket_t sig, short what, void *arg)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        int idx = -1;
        uint64_t lived;
        for (int i = 0; i < M.cfg.workers; i++)
            if (M.workers[i].pid == pid)
                idx = i;
        if (idx < 0)
            continue;
        M.workers[idx].pid = 0;
        clear_worker_gauges(idx);
        if (M.draining)
            continue;
        lived = mcpgw_now_ms() - M.workers[idx].started_ms;
        if (WIFEXITED(status))
            log_error("worker %d (pid %d) exited with status %d", idx, (int)pid,
                      WEXITSTATUS(status));
        else
            log_error("worker %d (pid %d) killed by signal %d", idx, (int)pid,
                      WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        if (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_SETUP) {
            log_error("worker %d cannot start; shutting down", idx);
            begin_shutdown(1);
            continue;
        }
        M.workers[idx].fast_deaths = lived < FAST_DEATH_MS ? M.workers[idx].fast_deaths + 1 : 0;
        if (M.workers[idx].fast_deaths >= MAX_FAST_DEATHS) {
            log_error("worker %d keeps dying; shutting down", idx);
            begin_shutdown(1);
            continue;
        }
        {
            struct timeval tv = {M.workers[idx].fast_deaths ? 1 : 0, 0};
            event_add(M.workers[idx].respawn, &tv);
        }
    }
    if (M.draining && !workers_alive())
        event_base_loopbreak(M.base);
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    struct mcpgw_bal_config *n;
    int check, help;
    char err[512];
    if (M.draining)
        return;
    if (!M.cfg.config_path[0]) {
        /* no file to re-read, but the gossip key ring is one: rotating keys needs no --config */
        if (!M.cfg.gossip_keyring[0])
            log_warn("SIGHUP: started without --config, nothing to reload");
        else if (M.mem->ops->reload(M.mem, &M.cfg, err, sizeof(err)) < 0)
            log_error("SIGHUP: keeping the current gossip key ring: %s", err);
        return;
    }
    n = xmalloc(sizeof(*n));
    if (mcpgw_bal_config_load(n, M.argc, M.argv, &check, &help, err, sizeof(err)) < 0) {
        log_error("reload failed, keeping the current configuration: %s", err);
        goto out;
    }
    if (M.mem->ops->reload(M.mem, n, err, sizeof(err)) < 0) {
        log_error("reload failed, keeping the current configuration: %s", err);
        goto out;
    }
    if (strcmp(n->listen, M.cfg.listen) || n->workers != M.cfg.workers ||
        strcmp(n->admin, M.cfg.admin) || strcmp(n->tls_cert, M.cfg.tls_cert) ||
        strcmp(n->tls_key, M.cfg.tls_key) || n->max_clients != M.cfg.max_clients ||
        n->max_header_size != M.cfg.max_header_size || n->max_body_size != M.cfg.max_body_size ||
        strcmp(n->source_addrs, M.cfg.source_addrs))
        log_warn("reload: listen, workers, admin, TLS, client limits and source-addrs change only "
                 "on restart");
    /* What a reload changes: the node list and the health checks. */
    memcpy(M.cfg.nodes, n->nodes, sizeof(M.cfg.nodes));
    M.cfg.nnodes = n->nnodes;
    memcpy(M.cfg.drain_ids, n->drain_ids, sizeof(M.cfg.drain_ids));
    M.cfg.health_interval_ms = n->health_interval_ms;
    M.cfg.health_timeout_ms = n->health_timeout_ms;
    M.cfg.health_rise = n->health_rise;
    M.cfg.health_fall = n->health_fall;
    memcpy(M.cfg.health_path, n->health_path, sizeof(M.cfg.health_path));
    memcpy(M.cfg.gossip_keyring, n->gossip_keyring, sizeof(M.cfg.gossip_keyring));
    log_info("reloaded %s: %d nodes", M.cfg.config_path, M.cfg.nnodes);
out:
    free(n);
}

/* One SO_REUSEPORT listener per worker, so the kernel spreads connections over them. */
static int open_listener(const char *addr, char *err, size_t errlen)
{
    int fd, one = 1;
    struct addrinfo *res = mcpgw_resolve_listen(addr, err, errlen);

    if (!res)
        return -1;
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 4096) < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", addr, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    } else {
        /* HTTP clients speak first: hand a connection over once its first bytes are in, so the
         * worker reads the request in the same turn as the accept (proxy.c). Best effort. */
        int secs = 5;
        setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs, sizeof(secs));
    }
    freeaddrinfo(res);
    return fd;
}

static void raise_nofile(const struct mcpgw_bal_config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    /* An active client holds two descriptors (client + upstream); an idle one holds one. */
    if ((uint64_t)cfg->max_clients + 256 > rl.rlim_cur)
        log_warn("max-clients %u per worker is above the open-file limit %llu: accepts will fail "
                 "before the cap answers 503",
                 cfg->max_clients, (unsigned long long)rl.rlim_cur);
}

static int check_config(void)
{
    char err[512];
    struct mcpgw_bal_shared *sh = mcpgw_bal_shared_new(err, sizeof(err));
    int rc = 1;
    if (!sh)
        goto out;
    if (mcpgw_bal_membership_publish(sh, M.cfg.nodes, M.cfg.nnodes, err, sizeof(err)) < 0)
        goto out;
    printf("configuration OK: listen %s%s, %d nodes (", M.cfg.listen, M.tls ? " (TLS)" : "",
           M.cfg.nnodes);
    for (int i = 0; i < M.cfg.nnodes; i++)
        printf("%s%s=%s%s", i ? ", " : "", M.cfg.nodes[i].id, M.cfg.nodes[i].addr,
               M.cfg.nodes[i].draining ? " draining" : "");
    printf("), %d workers, admin %s%s%s\n", M.cfg.workers, M.cfg.admin[0] ? M.cfg.admin : "off",
           M.cfg.gossip_bind[0] ? ", gossip on " : "", M.cfg.gossip_bind);
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "mcpgw-balancer: %s\n", err);
    mcpgw_bal_shared_free(sh);
    return rc;
}

int main(int argc, char **argv)
{
    char err[512];
    int check = 0, help = 0;
    struct event *ev_term, *ev_int, *ev_hup, *ev_chld;

    M.argc = argc;
    M.argv = argv;
    M.pid = getpid();
    for (int i = 0; i < MCPGW_BAL_MAX_WORKERS; i++)
        M.listen_fds[i] = -1;
    if (mcpgw_bal_config_load(&M.cfg, argc, argv, &check, &help, err, sizeof(err)) < 0) {
        fprintf(stderr, "mcpgw-balancer: %s\n", err);
        return 2;
    }
    if (help) {
        mcpgw_bal_config_usage(stdout, "mcpgw-balancer");
        return 0;
    }
    mcpgw_log_set_level((enum mcpgw_log_level)M.cfg.log_level);
    mcpgw_log_set_component("balancer");
    if (M.cfg.tls_cert[0]) {
        M.tls = mcpgw_bal_tls_new(M.cfg.tls_cert, M.cfg.tls_key, err, sizeof(err));
        if (!M.tls) {
            fprintf(stderr, "mcpgw-balancer: %s\n", err);
            return 2;
        }
    }
    if (check)
        return check_config();

    signal(SIGPIPE, SIG_IGN);
    raise_nofile(&M.cfg);
    if (mcpgw_check_sources(M.cfg.sources, M.cfg.nsources, err, sizeof(err)) < 0) {
        log_error("source-addrs: %s", err);
        return 2;
    }
    M.sh = mcpgw_bal_shared_new(err, sizeof(err));
    if (!M.sh) {
        log_error("%s", err);
        return 2;
    }
    for (int i = 0; i < M.cfg.workers; i++) {
        M.listen_fds[i] = open_listener(M.cfg.listen, err, sizeof(err));
        if (M.listen_fds[i] < 0) {
            log_error("%s", err);
            return 2;
        }
    }
    M.base = event_base_new();
    if (!M.base) {
        log_error("cannot create the event loop");
        return 2;
    }
    M.mem = (M.cfg.gossip_bind[0] ? &mcpgw_bal_membership_gossip : &mcpgw_bal_membership_static)
                ->start(M.base, M.sh, &M.cfg, err, sizeof(err));
    if (!M.mem) {
        log_error("%s", err);
        return 2;
    }
    if (M.cfg.admin[0]) {
        M.admin = mcpgw_bal_admin_new(M.base, M.cfg.admin, M.sh, err, sizeof(err));
        if (!M.admin) {
            log_error("%s", err);
            return 2;
        }
    }
    ev_term = evsignal_new(M.base, SIGTERM, on_term, NULL);
    ev_int = evsignal_new(M.base, SIGINT, on_term, NULL);
    ev_hup = evsignal_new(M.base, SIGHUP, on_hup, NULL);
    ev_chld = evsignal_new(M.base, SIGCHLD, on_child, NULL);
    event_add(ev_term, NULL);
    event_add(ev_int, NULL);
    event_add(ev_hup, NULL);
    event_add(ev_chld, NULL);
    for (int i = 0; i < M.cfg.workers; i++) {
        M.workers[i].respawn = evtimer_new(M.base, on_respawn, (void *)(intptr_t)i);
        if (spawn(i) < 0)
            return 2;
    }
    log_info("listening on %s%s with %d workers, %d nodes, admin %s", M.cfg.listen,
             M.tls ? " (TLS)" : "", M.cfg.workers, M.cfg.nnodes,
             M.cfg.admin[0] ? M.cfg.admin : "off");
    event_base_dispatch(M.base);

    log_info("stopped");
    M.mem->ops->stop(M.mem);
    mcpgw_bal_admin_free(M.admin);
    for (int i = 0; i < M.cfg.workers; i++)
        event_free(M.workers[i].respawn);
    event_free(ev_term);
    event_free(ev_int);
    event_free(ev_hup);
    event_free(ev_chld);
    if (M.ev_kill)
        event_free(M.ev_kill);
    event_base_free(M.base);
    mcpgw_bal_shared_free(M.sh);
    mcpgw_bal_tls_free(M.tls);
    return M.exit_code;
}
