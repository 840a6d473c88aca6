/* agent.c - mcpgw-gossip-agent: one gossip member from flags, printing membership changes. */
#include "gossip/swim.h"

#include "common/log.h"
#include "common/opts.h"
#include "common/util.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct agent {
    struct event_base *base;
    struct mcpgw_gossip *g;
    struct event *churn_ev, *exit_ev;
    uint32_t sessions;
    uint32_t period_ms;
};

/* The agent's settings, one row each (common/opts.h). */
struct agent_opts {
    char config[512];
    char node_id[65];
    char bind[128], advertise[128], http_addr[128], keyring[512];
    struct mcpgw_opts_list seeds;
    uint32_t non_serving;
    uint32_t period_ms, probe_timeout_ms, indirect_k, suspicion_ms, fanout, sync_ms, reap_ms;
    uint32_t sessions, churn_ms, max_skew_ms;
    int log_level;
};

#define F(f) offsetof(struct agent_opts, f), sizeof(((struct agent_opts *)0)->f)
static const struct mcpgw_opts_row rows[] = {
    {"config", MCPGW_OPTS_CONFIG, F(config), NULL, "FILE", "read settings from FILE"},
    {"node-id", MCPGW_OPTS_STR, F(node_id), NULL, "ID", "member id (required)"},
    {"gossip-bind", MCPGW_OPTS_STR, F(bind), NULL, "HOST:PORT", "UDP address to bind (required)"},
    {"gossip-advertise", MCPGW_OPTS_STR, F(advertise), NULL, "HOST:PORT",
     "UDP address others reach us at (default: the bound one)"},
    {"gossip-seeds", MCPGW_OPTS_LIST, F(seeds), NULL, "A,B,...",
     "seed addresses (host:port, comma-separated)"},
    {"gossip-keyring", MCPGW_OPTS_STR, F(keyring), NULL, "FILE",
     "seal and check every datagram with this key ring (32-byte keys, hex or base64, one a "
     "line; the first sends)"},
    {"max-skew-ms", MCPGW_OPTS_UINT, F(max_skew_ms), NULL, "N",
     "refuse sealed datagrams sent longer ago (or later) than this"},
    {"http-addr", MCPGW_OPTS_STR, F(http_addr), NULL, "HOST:PORT",
     "advertised HTTP address (metadata only)"},
    {"non-serving", MCPGW_OPTS_BOOL, F(non_serving), NULL, NULL,
     "join as a non-serving member (like a balancer)"},
    {"period-ms", MCPGW_OPTS_UINT, F(period_ms), NULL, "N", "protocol period"},
    {"probe-timeout-ms", MCPGW_OPTS_UINT, F(probe_timeout_ms), NULL, "N", "direct probe timeout"},
    {"indirect-k", MCPGW_OPTS_UINT, F(indirect_k), NULL, "N", "indirect probes"},
    {"suspicion-ms", MCPGW_OPTS_UINT, F(suspicion_ms), NULL, "N", "suspicion timeout"},
    {"fanout", MCPGW_OPTS_UINT, F(fanout), NULL, "N", "immediate forwards of urgent updates"},
    {"sync-ms", MCPGW_OPTS_UINT, F(sync_ms), NULL, "N", "push-pull interval"},
    {"reap-ms", MCPGW_OPTS_UINT, F(reap_ms), NULL, "N", "forget dead members after"},
    {"sessions", MCPGW_OPTS_UINT, F(sessions), NULL, "N", "initial session count metadata"},
    {"sessions-every-ms", MCPGW_OPTS_UINT, F(churn_ms), NULL, "N",
     "change the session count every N ms (load simulation)"},
    {"log-level", MCPGW_OPTS_LEVEL, F(log_level), "warn", "LEVEL", "debug|info|warn|error"},
};

static const struct mcpgw_opts_spec spec = {
    .prog = "mcpgw-gossip-agent",
    .rows = rows,
    .nrows = MCPGW_ARRAY_LEN(rows),
    .cfg_size = sizeof(struct agent_opts),
    .synopsis = "usage: mcpgw-gossip-agent --node-id ID --gossip-bind HOST:PORT [options]\n"
                "\n"
                "Runs one gossip (SWIM) member and prints one line per membership change:\n"
                "  <wall-clock ms> <member id> <state> gen=<generation> inc=<incarnation> "
                "sessions=<n> http=<addr>\n"
                "States: alive suspect dead draining left. The first line describes this member:\n"
                "  <ms> <id> self gossip=<addr> gen=<generation>\n",
    .epilogue = "Signals: SIGUSR1 announces draining, SIGUSR2 prints the member view and a line\n"
                "  <ms> stats received=N sent=N forged=N replayed=N stale=N wrong_version=N\n"
                "  no_key=N malformed=N keys=N reloads=N reload_failures=N\n"
                "SIGHUP re-reads the key ring file; SIGTERM/SIGINT leave gracefully and exit.\n",
};

/* The table's defaults, with the gossip library's own for the protocol settings. */
static void agent_defaults(struct agent_opts *o)
{
    struct mcpgw_gossip_config d;
    mcpgw_opts_defaults(&spec, o);
    mcpgw_gossip_config_defaults(&d);
    o->period_ms = d.period_ms;
    o->probe_timeout_ms = d.probe_timeout_ms;
    o->indirect_k = (uint32_t)d.indirect_k;
    o->suspicion_ms = d.suspicion_ms;
    o->fanout = (uint32_t)d.fanout;
    o->sync_ms = d.sync_ms;
    o->reap_ms = d.reap_ms;
    o->max_skew_ms = d.max_clock_skew_ms;
}

static void on_change(void *arg, const struct mcpgw_member *m, enum mcpgw_member_state old)
{
    printf("%llu %s %s gen=%llu inc=%u sessions=%u http=%s%s\n",
           (unsigned long long)mcpgw_wall_ms(), m->id, mcpgw_member_state_str(m->state),
           (unsigned long long)m->generation, m->incarnation, m->sessions,
           m->http_addr[0] ? m->http_addr : "-", m->serving ? "" : " non-serving");
}

static void on_churn(evutil_socket_t fd, short what, void *arg)
{
    struct agent *a = arg;
    a->sessions = (uint32_t)((a->sessions * 1103515245u + 12345u) % 1000u);
    mcpgw_gossip_set_sessions(a->g, a->sessions);
}

static void on_exit_timer(evutil_socket_t fd, short what, void *arg)
{
    struct agent *a = arg;
    event_base_loopexit(a->base, NULL);
}

static void print_view(struct agent *a)
{
    unsigned long long now = (unsigned long long)mcpgw_wall_ms();
    const struct mcpgw_gossip_stats *st = mcpgw_gossip_stats(a->g);

    for (int i = 0; i < mcpgw_gossip_member_count(a->g); i++) {
        const struct mcpgw_member *m = mcpgw_gossip_member_get(a->g, i);
        printf("%llu view %s %s gen=%llu inc=%u sessions=%u\n", now, m->id,
               mcpgw_member_state_str(m->state), (unsigned long long)m->generation, m->incarnation,
               m->sessions);
    }
    printf("%llu stats received=%llu sent=%llu", now, (unsigned long long)st->received,
           (unsigned long long)st->sent);
    for (int r = 0; r < MCPGW_GOSSIP_REFUSED_COUNT; r++)
        printf(" %s=%llu", mcpgw_gossip_refusal_str(r), (unsigned long long)st->refused[r]);
    printf(" keys=%d reloads=%llu reload_failures=%llu\n", st->keys,
           (unsigned long long)st->key_reloads, (unsigned long long)st->key_reload_failures);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct agent *a = arg;
    log_warn("received signal %d (%s)", (int)sig, strsignal((int)sig));
    if (sig == SIGUSR1) {
        mcpgw_gossip_set_draining(a->g);
    } else if (sig == SIGUSR2) {
        print_view(a);
    } else if (sig == SIGHUP) {
        char err[256];
        if (mcpgw_gossip_reload_keyring(a->g, NULL, err, sizeof(err)) < 0)
            log_error("SIGHUP: keeping the current key ring: %s", err);
    } else {
        /* leave, then let a couple of periods carry the news before exiting */
        struct timeval tv = {0, (suseconds_t)a->period_ms * 2000};
        mcpgw_gossip_leave(a->g);
        evtimer_add(a->exit_ev, &tv);
    }
}

int main(int argc, char **argv)
{
    struct agent_opts o;
    struct mcpgw_gossip_config cfg;
    struct agent a;
    struct event *sigs[5] = {NULL};
    const int signums[5] = {SIGINT, SIGTERM, SIGUSR1, SIGUSR2, SIGHUP};
    char err[512];
    int rc = 1, check = 0, help = 0;
    uint32_t churn_ms;

    memset(&a, 0, sizeof(a));
    agent_defaults(&o);
    if (mcpgw_opts_parse_argv(&spec, &o, argc, argv, &check, &help, err, sizeof(err)) < 0) {
        fprintf(stderr, "mcpgw-gossip-agent: %s\n", err);
        rc = 2;
        goto out;
    }
    if (help) {
        struct agent_opts d;
        agent_defaults(&d);
        mcpgw_opts_usage(stdout, &spec, &d);
        mcpgw_opts_free(&spec, &d);
        rc = 0;
        goto out;
    }
    if (!o.node_id[0] || !o.bind[0]) {
        fprintf(stderr, "mcpgw-gossip-agent: --node-id and --gossip-bind are required (see "
                        "--help)\n");
        rc = 2;
        goto out;
    }
    if (check) {
        printf("config ok\n");
        rc = 0;
        goto out;
    }
    mcpgw_log_set_level((enum mcpgw_log_level)o.log_level);
    mcpgw_gossip_config_defaults(&cfg);
    cfg.node_id = o.node_id;
    cfg.bind_addr = o.bind;
    cfg.advertise_addr = o.advertise[0] ? o.advertise : NULL;
    cfg.seeds = (const char *const *)o.seeds.v;
    cfg.nseeds = o.seeds.n;
    cfg.http_addr = o.http_addr[0] ? o.http_addr : NULL;
    cfg.serving = !o.non_serving;
    cfg.period_ms = o.period_ms;
    cfg.probe_timeout_ms = o.probe_timeout_ms;
    cfg.indirect_k = (int)o.indirect_k;
    cfg.suspicion_ms = o.suspicion_ms;
    cfg.fanout = (int)o.fanout;
    cfg.sync_ms = o.sync_ms;
    cfg.reap_ms = o.reap_ms;
    cfg.keyring_path = o.keyring[0] ? o.keyring : NULL;
    cfg.max_clock_skew_ms = o.max_skew_ms;
    a.sessions = o.sessions;
    churn_ms = o.churn_ms;
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    {
        char comp[96];
        snprintf(comp, sizeof(comp), "gossip-agent %s", cfg.node_id);
        mcpgw_log_set_component(comp);
    }
    cfg.on_change = on_change;
    cfg.arg = &a;
    a.period_ms = cfg.period_ms;
    a.base = event_base_new();
    if (!a.base) {
        fprintf(stderr, "mcpgw-gossip-agent: cannot create the event loop\n");
        goto out;
    }
    a.g = mcpgw_gossip_new(a.base, &cfg, err, sizeof(err));
    if (!a.g) {
        fprintf(stderr, "mcpgw-gossip-agent: %s\n", err);
        goto out;
    }
    mcpgw_gossip_set_sessions(a.g, a.sessions);
    printf("%llu %s self gossip=%s gen=%llu\n", (unsigned long long)mcpgw_wall_ms(), cfg.node_id,
           mcpgw_gossip_self(a.g)->gossip_addr,
           (unsigned long long)mcpgw_gossip_self(a.g)->generation);
    for (int i = 0; i < 5; i++) {
        sigs[i] = evsignal_new(a.base, signums[i], on_signal, &a);
        evsignal_add(sigs[i], NULL);
    }
    a.exit_ev = evtimer_new(a.base, on_exit_timer, &a);
    if (churn_ms > 0) {
        struct timeval tv = {churn_ms / 1000, (suseconds_t)(churn_ms % 1000) * 1000};
        a.churn_ev = event_new(a.base, -1, EV_PERSIST, on_churn, &a);
        event_add(a.churn_ev, &tv);
    }
    if (mcpgw_gossip_start(a.g) < 0) {
        fprintf(stderr, "mcpgw-gossip-agent: cannot start gossip\n");
        goto out;
    }
    event_base_dispatch(a.base);
    rc = 0;
out:
    for (int i = 0; i < 5; i++)
        if (sigs[i])
            event_free(sigs[i]);
    if (a.churn_ev)
        event_free(a.churn_ev);
    if (a.exit_ev)
        event_free(a.exit_ev);
    mcpgw_gossip_free(a.g);
    if (a.base)
        event_base_free(a.base);
    mcpgw_opts_free(&spec, &o);
    return rc;
}
