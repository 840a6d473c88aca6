/* agent.c - mcpgw-gossip-agent: one gossip member from flags, printing membership changes. */
#include "gossip/swim.h"

#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
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

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mcpgw-gossip-agent --node-id ID --gossip-bind HOST:PORT [options]\n"
            "\n"
            "Runs one gossip (SWIM) member and prints one line per membership change:\n"
            "  <wall-clock ms> <member id> <state> gen=<generation> inc=<incarnation> "
            "sessions=<n> http=<addr>\n"
            "States: alive suspect dead draining left. The first line describes this member:\n"
            "  <ms> <id> self gossip=<addr> gen=<generation>\n"
            "\n"
            "options:\n"
            "  --node-id ID              member id (required)\n"
            "  --gossip-bind HOST:PORT   UDP address to bind (required)\n"
            "  --gossip-advertise H:P    UDP address others reach us at (default: the bound one)\n"
            "  --gossip-seeds A,B,...    seed addresses (host:port, comma-separated)\n"
            "  --gossip-keyring FILE     seal and check every datagram with this key ring\n"
            "                            (32-byte keys, hex or base64, one a line; first sends)\n"
            "  --max-skew-ms N           refuse sealed datagrams sent longer ago (default 30000)\n"
            "  --http-addr HOST:PORT     advertised HTTP address (metadata only)\n"
            "  --non-serving             join as a non-serving member (like a balancer)\n"
            "  --period-ms N             protocol period (default 150)\n"
            "  --probe-timeout-ms N      direct probe timeout (default 60)\n"
            "  --indirect-k N            indirect probes (default 3)\n"
            "  --suspicion-ms N          suspicion timeout (default 800)\n"
            "  --fanout N                immediate forwards of urgent updates (default 3)\n"
            "  --sync-ms N               push-pull interval (default 5000)\n"
            "  --reap-ms N               forget dead members after (default 30000)\n"
            "  --sessions N              initial session count metadata\n"
            "  --sessions-every-ms N     change the session count every N ms (load simulation)\n"
            "  --log-level LEVEL         debug|info|warn|error (default warn)\n"
            "  --help                    this text\n"
            "\n"
            "Signals: SIGUSR1 announces draining, SIGUSR2 prints the member view and a line\n"
            "  <ms> stats received=N sent=N forged=N replayed=N stale=N wrong_version=N\n"
            "  no_key=N malformed=N keys=N reloads=N reload_failures=N\n"
            "SIGHUP re-reads the key ring file; SIGTERM/SIGINT leave gracefully and exit.\n");
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

static int parse_u32(const char *flag, const char *s, uint32_t *out)
{
    char *end;
    unsigned long v;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || *end || end == s || v > 0xffffffffUL) {
        fprintf(stderr, "mcpgw-gossip-agent: %s needs a non-negative integer, got '%s'\n", flag, s);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

/* Split "a,b,c" in place into argv-style pointers; returns the count. */
static int split_seeds(char *s, const char ***out)
{
    int n = 0;
    const char **v = xcalloc(strlen(s) / 2 + 2, sizeof(char *));
    for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ","))
        if (*tok)
            v[n++] = tok;
    *out = v;
    return n;
}

int main(int argc, char **argv)
{
    enum {
        O_ID = 1,
        O_BIND,
        O_ADV,
        O_SEEDS,
        O_HTTP,
        O_NONSERVING,
        O_PERIOD,
        O_PTIMEOUT,
        O_K,
        O_SUSP,
        O_FANOUT,
        O_SYNC,
        O_REAP,
        O_SESSIONS,
        O_CHURN,
        O_LOG,
        O_KEYRING,
        O_SKEW,
        O_HELP
    };
    static const struct option opts[] = {{"node-id", required_argument, NULL, O_ID},
                                         {"gossip-bind", required_argument, NULL, O_BIND},
                                         {"gossip-advertise", required_argument, NULL, O_ADV},
                                         {"gossip-seeds", required_argument, NULL, O_SEEDS},
                                         {"http-addr", required_argument, NULL, O_HTTP},
                                         {"non-serving", no_argument, NULL, O_NONSERVING},
                                         {"period-ms", required_argument, NULL, O_PERIOD},
                                         {"probe-timeout-ms", required_argument, NULL, O_PTIMEOUT},
                                         {"indirect-k", required_argument, NULL, O_K},
                                         {"suspicion-ms", required_argument, NULL, O_SUSP},
                                         {"fanout", required_argument, NULL, O_FANOUT},
                                         {"sync-ms", required_argument, NULL, O_SYNC},
                                         {"reap-ms", required_argument, NULL, O_REAP},
                                         {"sessions", required_argument, NULL, O_SESSIONS},
                                         {"sessions-every-ms", required_argument, NULL, O_CHURN},
                                         {"log-level", required_argument, NULL, O_LOG},
                                         {"gossip-keyring", required_argument, NULL, O_KEYRING},
                                         {"max-skew-ms", required_argument, NULL, O_SKEW},
                                         {"help", no_argument, NULL, O_HELP},
                                         {NULL, 0, NULL, 0}};
    struct mcpgw_gossip_config cfg;
    struct agent a;
    struct event *sigs[5] = {NULL};
    const int signums[5] = {SIGINT, SIGTERM, SIGUSR1, SIGUSR2, SIGHUP};
    const char **seeds = NULL;
    char *seeds_arg = NULL, err[256];
    uint32_t v, churn_ms = 0;
    int c, rc = 1, level;

    memset(&a, 0, sizeof(a));
    mcpgw_gossip_config_defaults(&cfg);
    mcpgw_log_set_level(MCPGW_LOG_WARN);
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_ID:
            cfg.node_id = optarg;
            break;
        case O_BIND:
            cfg.bind_addr = optarg;
            break;
        case O_ADV:
            cfg.advertise_addr = optarg;
            break;
        case O_SEEDS:
            free(seeds_arg);
            free(seeds);
            seeds_arg = xstrdup(optarg);
            cfg.nseeds = split_seeds(seeds_arg, &seeds);
            cfg.seeds = seeds;
            break;
        case O_HTTP:
            cfg.http_addr = optarg;
            break;
        case O_KEYRING:
            cfg.keyring_path = optarg;
            break;
        case O_NONSERVING:
            cfg.serving = 0;
            break;
        case O_LOG:
            if ((level = mcpgw_log_level_parse(optarg)) < 0) {
                fprintf(stderr, "mcpgw-gossip-agent: unknown log level '%s'\n", optarg);
                goto out;
            }
            mcpgw_log_set_level((enum mcpgw_log_level)level);
            break;
        case O_HELP:
            usage(stdout);
            rc = 0;
            goto out;
        case '?':
            usage(stderr);
            goto out;
        default:
            if (parse_u32(opts[c - 1].name, optarg, &v) < 0)
                goto out;
            if (c == O_PERIOD)
                cfg.period_ms = v;
            else if (c == O_PTIMEOUT)
                cfg.probe_timeout_ms = v;
            else if (c == O_K)
                cfg.indirect_k = (int)v;
            else if (c == O_SUSP)
                cfg.suspicion_ms = v;
            else if (c == O_FANOUT)
                cfg.fanout = (int)v;
            else if (c == O_SYNC)
                cfg.sync_ms = v;
            else if (c == O_REAP)
                cfg.reap_ms = v;
            else if (c == O_SESSIONS)
                a.sessions = v;
            else if (c == O_CHURN)
                churn_ms = v;
            else if (c == O_SKEW)
                cfg.max_clock_skew_ms = v;
            break;
        }
    }
    if (optind < argc || !cfg.node_id || !cfg.bind_addr) {
        fprintf(stderr, "mcpgw-gossip-agent: --node-id and --gossip-bind are required\n");
        usage(stderr);
        goto out;
    }
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
    free(seeds);
    free(seeds_arg);
    return rc;
}
