/* opts.c - command-line flags of mcpgw-loadgen. */
#include "loadgen/opts.h"

#include "common/net.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <getopt.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

void mcpgw_lg_opts_usage(FILE *f)
{
    fprintf(
        f,
        "usage: mcpgw-loadgen --url http://HOST:PORT/mcp [options]\n"
        "Opens MCP sessions (initialize, initialized, optionally a held GET stream and a\n"
        "resource subscription) at a ramp rate, then drives echo tool calls for a duration,\n"
        "and reports latency, throughput, sessions, streams and notifications.\n"
        "\n"
        "Load:\n"
        "  --url URL                 MCP endpoint (http only), e.g. http://127.0.0.1:8801/mcp\n"
        "  --sessions N              sessions to open (default 1)\n"
        "  --ramp RATE/s             sessions opened per second (default 1000/s)\n"
        "  --duration D              length of the load phase (default 10s)\n"
        "  --rate R/s|max            echo calls per second, open loop, scheduled by intended\n"
        "                            send time; or max: closed loop with --concurrency calls in\n"
        "                            flight (default max); 0: sessions only, no calls\n"
        "  --concurrency C           request connections over all workers; in-flight calls\n"
        "                            with --rate max (default 64)\n"
        "  --payload SIZE            bytes of echo text (default 256; k suffix ok)\n"
        "  --get-streams             hold each session's GET SSE stream open (1 socket each)\n"
        "  --subscribe NAME          subscribe every session to mcpgw://notes/NAME (needs\n"
        "                            --get-streams)\n"
        "  --notes-writer RATE/s     worker 0 calls notes_write on NAME at this rate during the\n"
        "                            load; every subscriber must get each version once\n"
        "Scale:\n"
        "  --workers K               worker processes (default 1); sessions, rate and\n"
        "                            connections are split evenly\n"
        "  --source-addrs LIST       local addresses to connect from: 127.0.0.2-127.0.0.9 or\n"
        "                            a comma list; spread over workers and sockets\n"
        "Robustness:\n"
        "  --timeout D               per-request deadline (default 10s)\n"
        "  --retries N               re-sends after a connection failure, or a 502/503/504\n"
        "                            to a request that may be repeated (default 2)\n"
        "  --reconnect-window D      how long a broken GET stream is retried (default 30s)\n"
        "  --setup-window D          extra time allowed for setups after the ramp (default 30s)\n"
        "  --grace D                 wait for notifications after the load (default 2s; longer\n"
        "                            while they still arrive, up to 30s)\n"
        "  --keep-sessions           do not DELETE the sessions at the end\n"
        "Drills (local cluster; times are after the load phase starts):\n"
        "  --drill kill:NODE@30s         SIGKILL the node\n"
        "  --drill stop:NODE@30s+10s     SIGSTOP, then SIGCONT 10s later\n"
        "  --drill drain:NODE@30s        SIGTERM: the node drains (stops taking sessions,\n"
        "                                ends its streams, exits when its calls are done)\n"
        "  --drill redis-restart@30s[+D] SIGKILL Redis, start it again D later\n"
        "  --pidfile-dir DIR         find NODE in DIR/NODE.pid (and DIR/redis.pid) before\n"
        "                            scanning /proc for --node-id NODE\n"
        "  --redis-port P            Redis to restart (default 6379)\n"
        "  --redis-cmd CMD           shell command that starts Redis again (default: rebuilt\n"
        "                            from its process title: redis-server --bind H --port P)\n"
        "Output:\n"
        "  --report-json FILE        JSON report (fields in docs/loadgen.md)\n"
        "  --report-html FILE        self-contained HTML report with plots\n"
        "  --quiet                   no progress line\n"
        "  --check                   exit 3 when a session failed or was lost, a request\n"
        "                            failed or a notification was lost or duplicated\n"
        "  --protocol-version V      MCP revision to initialize with (default 2025-11-25)\n"
        "  --help                    this text\n"
        "Durations take ms/s/m/h (a plain number is seconds); rates take an optional /s.\n"
        "Exit status: 0 done, 1 usage or setup error, 2 aborted, 3 --check found a problem.\n");
}

/* "30s", "500ms", or plain seconds. */
static int parse_duration(const char *s, uint64_t *ms)
{
    char *end;
    double v;
    if (!*s)
        return -1;
    v = strtod(s, &end);
    if (*end == '\0' && end != s && v >= 0) {
        *ms = (uint64_t)(v * 1000.0);
        return 0;
    }
    return mcpgw_parse_duration_ms(s, ms);
}

/* "1000/s", "1000", "2.5/s". */
static int parse_rate(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || v <= 0)
        return -1;
    if (*end && strcmp(end, "/s") != 0)
        return -1;
    *out = v;
    return 0;
}

static int parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
    uint64_t v;
    if (mcpgw_parse_size(s, &v) < 0 || v < lo || v > hi)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* "http://host:port/path" into cfg (host resolved to an IPv4/IPv6 address). */
static int parse_url(const char *url, struct mcpgw_lg_config *cfg)
{
    const char *p, *slash;
    char hostport[300], err[160];
    struct addrinfo hints, *res = NULL;
    char portstr[16];
    int rc;
    if (strncmp(url, "http://", 7) != 0) {
        fprintf(stderr, "mcpgw-loadgen: --url must start with http:// (TLS is not supported)\n");
        return -1;
    }
    snprintf(cfg->url, sizeof(cfg->url), "%s", url);
    p = url + 7;
    slash = strchr(p, '/');
    if ((size_t)(slash ? slash - p : (long)strlen(p)) >= sizeof(hostport)) {
        fprintf(stderr, "mcpgw-loadgen: --url host is too long\n");
        return -1;
    }
    snprintf(hostport, sizeof(hostport), "%.*s", (int)(slash ? slash - p : (long)strlen(p)), p);
    snprintf(cfg->path, sizeof(cfg->path), "%s", slash ? slash : "/");
    snprintf(cfg->authority, sizeof(cfg->authority), "%s", hostport);
    if (!strchr(hostport, ':') || (hostport[0] == '[' && !strstr(hostport, "]:")))
        strncat(hostport, ":80", sizeof(hostport) - strlen(hostport) - 1);
    if (mcpgw_parse_hostport(hostport, cfg->host, sizeof(cfg->host), &cfg->port, err, sizeof(err)) <
        0) {
        fprintf(stderr, "mcpgw-loadgen: --url: %s\n", err);
        return -1;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    snprintf(portstr, sizeof(portstr), "%d", cfg->port);
    rc = getaddrinfo(cfg->host, portstr, &hints, &res);
    if (rc != 0 || !res) {
        fprintf(stderr, "mcpgw-loadgen: --url: cannot resolve %s: %s\n", cfg->host,
                gai_strerror(rc));
        return -1;
    }
    memcpy(&cfg->dst, res->ai_addr, res->ai_addrlen);
    cfg->dstlen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* "127.0.0.2-127.0.0.9" or "a,b,c" (each item may be a range). */
static int parse_sources(const char *s, struct mcpgw_lg_config *cfg)
{
    char err[160];
    if (mcpgw_parse_ipv4_list(s, cfg->src, MCPGW_LG_MAX_SRC, &cfg->nsrc, err, sizeof(err)) < 0) {
        fprintf(stderr, "mcpgw-loadgen: --source-addrs: %s\n", err);
        return -1;
    }
    return 0;
}

static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return 0;
    return 1;
}

int mcpgw_lg_opts_parse(int argc, char **argv, struct mcpgw_lg_config *cfg)
{
    enum {
        O_URL = 1,
        O_SESSIONS,
        O_RAMP,
        O_DURATION,
        O_RATE,
        O_CONC,
        O_PAYLOAD,
        O_GET,
        O_SUB,
        O_WRITER,
        O_WORKERS,
        O_SRC,
        O_TIMEOUT,
        O_RETRIES,
        O_RECONNECT,
        O_SETUP,
        O_GRACE,
        O_KEEP,
        O_DRILL,
        O_PIDDIR,
        O_REDIS_PORT,
        O_REDIS_CMD,
        O_JSON,
        O_HTML,
        O_QUIET,
        O_CHECK,
        O_PROTO,
        O_HELP
    };
    static const struct option opts[] = {
        {"url", required_argument, 0, O_URL},
        {"sessions", required_argument, 0, O_SESSIONS},
        {"ramp", required_argument, 0, O_RAMP},
        {"duration", required_argument, 0, O_DURATION},
        {"rate", required_argument, 0, O_RATE},
        {"concurrency", required_argument, 0, O_CONC},
        {"payload", required_argument, 0, O_PAYLOAD},
        {"get-streams", no_argument, 0, O_GET},
        {"subscribe", required_argument, 0, O_SUB},
        {"notes-writer", required_argument, 0, O_WRITER},
        {"workers", required_argument, 0, O_WORKERS},
        {"source-addrs", required_argument, 0, O_SRC},
        {"timeout", required_argument, 0, O_TIMEOUT},
        {"retries", required_argument, 0, O_RETRIES},
        {"reconnect-window", required_argument, 0, O_RECONNECT},
        {"setup-window", required_argument, 0, O_SETUP},
        {"grace", required_argument, 0, O_GRACE},
        {"keep-sessions", no_argument, 0, O_KEEP},
        {"drill", required_argument, 0, O_DRILL},
        {"pidfile-dir", required_argument, 0, O_PIDDIR},
        {"redis-port", required_argument, 0, O_REDIS_PORT},
        {"redis-cmd", required_argument, 0, O_REDIS_CMD},
        {"report-json", required_argument, 0, O_JSON},
        {"report-html", required_argument, 0, O_HTML},
        {"quiet", no_argument, 0, O_QUIET},
        {"check", no_argument, 0, O_CHECK},
        {"protocol-version", required_argument, 0, O_PROTO},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    int o, have_url = 0;
    uint64_t v;
    char err[200];

    memset(cfg, 0, sizeof(*cfg));
    cfg->sessions = 1;
    cfg->ramp_per_s = 1000;
    cfg->duration_ms = 10000;
    cfg->closed_loop = 1;
    cfg->concurrency = 64;
    cfg->payload = 256;
    cfg->workers = 1;
    cfg->timeout_ms = 10000;
    cfg->retries = 2;
    cfg->reconnect_ms = 30000;
    cfg->setup_window_ms = 30000;
    cfg->grace_ms = 2000;
    cfg->redis_port = 6379;
    snprintf(cfg->protocol_version, sizeof(cfg->protocol_version), "2025-11-25");

    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case O_URL:
            if (parse_url(optarg, cfg) < 0)
                return -1;
            have_url = 1;
            break;
        case O_SESSIONS:
            if (parse_u32(optarg, 1, 10000000, &cfg->sessions) < 0)
                goto bad;
            break;
        case O_RAMP:
            if (parse_rate(optarg, &cfg->ramp_per_s) < 0)
                goto bad;
            break;
        case O_DURATION:
        case O_TIMEOUT:
        case O_RECONNECT:
        case O_SETUP:
        case O_GRACE:
            if (parse_duration(optarg, &v) < 0)
                goto bad;
            if (o == O_DURATION)
                cfg->duration_ms = v;
            else if (o == O_TIMEOUT)
                cfg->timeout_ms = v ? v : 1;
            else if (o == O_RECONNECT)
                cfg->reconnect_ms = v;
            else if (o == O_SETUP)
                cfg->setup_window_ms = v;
            else
                cfg->grace_ms = v;
            break;
        case O_RATE:
            if (strcmp(optarg, "max") == 0) {
                cfg->closed_loop = 1;
                cfg->rate_per_s = 0;
            } else if (strcmp(optarg, "0") == 0 || strcmp(optarg, "0/s") == 0) {
                cfg->closed_loop = 0; /* sessions only, no calls */
                cfg->rate_per_s = 0;
            } else if (parse_rate(optarg, &cfg->rate_per_s) == 0) {
                cfg->closed_loop = 0;
            } else {
                goto bad;
            }
            break;
        case O_CONC:
            if (parse_u32(optarg, 1, 1000000, &cfg->concurrency) < 0)
                goto bad;
            break;
        case O_PAYLOAD:
            if (mcpgw_parse_size(optarg, &v) < 0 || v > (16u << 20) - 1024)
                goto bad;
            cfg->payload = (size_t)v;
            break;
        case O_GET:
            cfg->get_streams = 1;
            break;
        case O_SUB:
            if (!name_ok(optarg)) {
                fprintf(stderr, "mcpgw-loadgen: --subscribe takes a note name: 1-64 characters "
                                "of [A-Za-z0-9._-]\n");
                return -1;
            }
            snprintf(cfg->subscribe, sizeof(cfg->subscribe), "%s", optarg);
            break;
        case O_WRITER:
            if (parse_rate(optarg, &cfg->notes_rate) < 0)
                goto bad;
            break;
        case O_WORKERS:
            if (parse_u32(optarg, 1, 256, &cfg->workers) < 0)
                goto bad;
            break;
        case O_SRC:
            if (parse_sources(optarg, cfg) < 0)
                return -1;
            break;
        case O_RETRIES:
            if (parse_u32(optarg, 0, 100, &cfg->retries) < 0)
                goto bad;
            break;
        case O_KEEP:
            cfg->keep_sessions = 1;
            break;
        case O_DRILL:
            if (cfg->ndrills == MCPGW_WIRE_MAX_DRILLS) {
                fprintf(stderr, "mcpgw-loadgen: at most %d drills\n", MCPGW_WIRE_MAX_DRILLS);
                return -1;
            }
            if (mcpgw_drill_parse(optarg, &cfg->drills[cfg->ndrills], err, sizeof(err)) < 0) {
                fprintf(stderr, "mcpgw-loadgen: %s\n", err);
                return -1;
            }
            cfg->ndrills++;
            break;
        case O_PIDDIR:
            cfg->pidfile_dir = optarg;
            break;
        case O_REDIS_PORT: {
            uint32_t port;
            if (parse_u32(optarg, 1, 65535, &port) < 0)
                goto bad;
            cfg->redis_port = (int)port;
            break;
        }
        case O_REDIS_CMD:
            cfg->redis_cmd = optarg;
            break;
        case O_JSON:
            cfg->report_json = optarg;
            break;
        case O_HTML:
            cfg->report_html = optarg;
            break;
        case O_QUIET:
            cfg->quiet = 1;
            break;
        case O_CHECK:
            cfg->check = 1;
            break;
        case O_PROTO:
            snprintf(cfg->protocol_version, sizeof(cfg->protocol_version), "%s", optarg);
            break;
        case O_HELP:
            mcpgw_lg_opts_usage(stdout);
            return 1;
        default:
            mcpgw_lg_opts_usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mcpgw-loadgen: unexpected argument '%s' (see --help)\n", argv[optind]);
        return -1;
    }
    if (!have_url) {
        fprintf(stderr, "mcpgw-loadgen: --url is required (see --help)\n");
        return -1;
    }
    if (cfg->subscribe[0] && !cfg->get_streams) {
        fprintf(stderr, "mcpgw-loadgen: --subscribe needs --get-streams: notifications arrive "
                        "on the GET stream\n");
        return -1;
    }
    if (cfg->notes_rate > 0 && !cfg->subscribe[0]) {
        fprintf(stderr, "mcpgw-loadgen: --notes-writer needs --subscribe NAME (the note to "
                        "write)\n");
        return -1;
    }
    if (cfg->workers > cfg->sessions) {
        fprintf(stderr, "mcpgw-loadgen: --workers %u is more than --sessions %u\n", cfg->workers,
                cfg->sessions);
        return -1;
    }
    if (cfg->concurrency < cfg->workers)
        cfg->concurrency = cfg->workers;
    if (cfg->nsrc && cfg->dst.ss_family != AF_INET) {
        fprintf(stderr, "mcpgw-loadgen: --source-addrs are IPv4; the --url host is not\n");
        return -1;
    }
    return 0;
bad:
    fprintf(stderr, "mcpgw-loadgen: invalid value '%s' for --%s (see --help)\n", optarg,
            opts[o - 1].name);
    return -1;
}
