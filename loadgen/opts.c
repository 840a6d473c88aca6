/* opts.c - mcpgw-loadgen's settings: option rows (common/opts.h) and their checks. */
#include "loadgen/opts.h"

#include "common/net.h"
#include "common/opts.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* "1000/s", "1000", "2.5/s". */
static int parse_rate(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || !(v > 0 && v < 1e12))
        return -1;
    if (*end && strcmp(end, "/s") != 0)
        return -1;
    *out = v;
    return 0;
}

/* "http://host:port/path" into cfg (host resolved to an IPv4/IPv6 address). */
static int set_url(void *c, int nwords, char **words, int first, char *err, size_t errlen)
{
    struct mcpgw_lg_config *cfg = c;
    const char *url = words[0], *p, *slash;
    char hostport[300], e[160], portstr[16];
    struct addrinfo hints, *res = NULL;
    size_t hl;
    int rc;
    if (strncmp(url, "http://", 7) != 0) {
        snprintf(err, errlen, "the URL must start with http:// (TLS is not supported)");
        return -1;
    }
    if (strlen(url) >= sizeof(cfg->url)) {
        snprintf(err, errlen, "the URL is too long");
        return -1;
    }
    snprintf(cfg->url, sizeof(cfg->url), "%s", url);
    p = url + 7;
    slash = strchr(p, '/');
    hl = slash ? (size_t)(slash - p) : strlen(p);
    if (hl >= sizeof(hostport) - 3 || strlen(slash ? slash : "/") >= sizeof(cfg->path)) {
        snprintf(err, errlen, "the URL's host or path is too long");
        return -1;
    }
    snprintf(hostport, sizeof(hostport), "%.*s", (int)hl, p);
    snprintf(cfg->path, sizeof(cfg->path), "%s", slash ? slash : "/");
    snprintf(cfg->authority, sizeof(cfg->authority), "%s", hostport);
    if (!strchr(hostport, ':') || (hostport[0] == '[' && !strstr(hostport, "]:")))
        strncat(hostport, ":80", sizeof(hostport) - strlen(hostport) - 1);
    if (mcpgw_parse_hostport(hostport, cfg->host, sizeof(cfg->host), &cfg->port, e, sizeof(e)) <
        0) {
        snprintf(err, errlen, "%s", e);
        return -1;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    snprintf(portstr, sizeof(portstr), "%d", cfg->port);
    rc = getaddrinfo(cfg->host, portstr, &hints, &res);
    if (rc != 0 || !res) {
        snprintf(err, errlen, "cannot resolve %s: %s", cfg->host, gai_strerror(rc));
        return -1;
    }
    memcpy(&cfg->dst, res->ai_addr, res->ai_addrlen);
    cfg->dstlen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static int set_ramp(void *c, int nwords, char **words, int first, char *err, size_t errlen)
{
    struct mcpgw_lg_config *cfg = c;
    if (parse_rate(words[0], &cfg->ramp_per_s) < 0) {
        snprintf(err, errlen, "'%s' is not a rate such as 1000/s", words[0]);
        return -1;
    }
    return 0;
}

/* R/s: open loop; max: closed loop; 0: sessions only, no calls. */
static int set_rate(void *c, int nwords, char **words, int first, char *err, size_t errlen)
{
    struct mcpgw_lg_config *cfg = c;
    const char *v = words[0];
    cfg->rate_per_s = 0;
    if (strcmp(v, "max") == 0) {
        cfg->closed_loop = 1;
    } else if (strcmp(v, "0") == 0 || strcmp(v, "0/s") == 0) {
        cfg->closed_loop = 0;
    } else if (parse_rate(v, &cfg->rate_per_s) == 0) {
        cfg->closed_loop = 0;
    } else {
        snprintf(err, errlen, "'%s' is not a rate such as 500/s, max or 0", v);
        return -1;
    }
    return 0;
}

static int set_writer(void *c, int nwords, char **words, int first, char *err, size_t errlen)
{
    struct mcpgw_lg_config *cfg = c;
    if (parse_rate(words[0], &cfg->notes_rate) < 0) {
        snprintf(err, errlen, "'%s' is not a rate such as 10/s", words[0]);
        return -1;
    }
    return 0;
}

static int set_subscribe(void *c, int nwords, char **words, int first, char *err, size_t errlen)
{
    struct mcpgw_lg_config *cfg = c;
    const char *s = words[0];
    size_t n = strlen(s);
    int ok = n >= 1 && n <= 64;
    for (size_t i = 0; ok && i < n; i++)
        ok = isalnum((unsigned char)s[i]) || s[i] == '.' || s[i] == '_' || s[i] == '-';
    if (!ok) {
        snprintf(err, errlen, "a note name is 1-64 characters of [A-Za-z0-9._-]");
        return -1;
    }
    snprintf(cfg->subscribe, sizeof(cfg->subscribe), "%s", s);
    return 0;
}

/* "127.0.0.2-127.0.0.9" or "a,b,c" (each item may be a range). */
static int set_sources(void *c, int nwords, char **words, int first, char *err, size_t errlen)
{
    struct mcpgw_lg_config *cfg = c;
    return mcpgw_parse_ipv4_list(words[0], cfg->src, MCPGW_LG_MAX_SRC, &cfg->nsrc, err, errlen);
}

/* --drill accumulates: each occurrence adds one drill (the first of a source starts afresh). */
static int set_drill(void *c, int nwords, char **words, int first, char *err, size_t errlen)
{
    struct mcpgw_lg_config *cfg = c;
    if (first)
        cfg->ndrills = 0;
    if (cfg->ndrills == MCPGW_WIRE_MAX_DRILLS) {
        snprintf(err, errlen, "at most %d drills", MCPGW_WIRE_MAX_DRILLS);
        return -1;
    }
    if (mcpgw_drill_parse(words[0], &cfg->drills[cfg->ndrills], err, errlen) < 0)
        return -1;
    cfg->ndrills++;
    return 0;
}

/* --header "Name: value" accumulates (the first of a source starts afresh). Headers that frame
 * the request or that the load generator sets itself are refused: a run must measure what it
 * says it measures. */
static int set_header(void *c, int nwords, char **words, int first, char *err, size_t errlen)
{
    static const char *const own[] = {"host",           "content-length",       "transfer-encoding",
                                      "connection",     "content-type",         "accept",
                                      "mcp-session-id", "mcp-protocol-version", "mcp-method",
                                      "mcp-name",       "last-event-id"};
    struct mcpgw_lg_config *cfg = c;
    const char *h = words[0], *colon = strchr(h, ':'), *v;
    size_t used, nlen;
    if (first)
        cfg->headers[0] = '\0';
    if (!colon || colon == h) {
        snprintf(err, errlen, "a header is \"Name: value\"");
        return -1;
    }
    nlen = (size_t)(colon - h);
    for (const char *p = h; p < colon; p++)
        if (!isalnum((unsigned char)*p) && !strchr("!#$%&'*+-.^_`|~", *p)) {
            snprintf(err, errlen, "the header name '%.*s' has a character a name cannot have",
                     (int)nlen, h);
            return -1;
        }
    for (size_t i = 0; i < MCPGW_ARRAY_LEN(own); i++)
        if (strlen(own[i]) == nlen && strncasecmp(h, own[i], nlen) == 0) {
            snprintf(err, errlen, "%.*s is set by the load generator itself", (int)nlen, h);
            return -1;
        }
    for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
        ;
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p < 0x20 && *p != '\t') {
            snprintf(err, errlen, "the value of header %.*s has a control character", (int)nlen, h);
            return -1;
        }
    used = strlen(cfg->headers);
    if (used + nlen + strlen(v) + 5 > sizeof(cfg->headers)) {
        snprintf(err, errlen, "the headers together are over %zu bytes", sizeof(cfg->headers) - 1);
        return -1;
    }
    snprintf(cfg->headers + used, sizeof(cfg->headers) - used, "%.*s: %s\r\n", (int)nlen, h, v);
    return 0;
}

#define F(f) offsetof(struct mcpgw_lg_config, f), sizeof(((struct mcpgw_lg_config *)0)->f)
#define SECS .flags = MCPGW_OPTS_SECONDS

static const struct mcpgw_opts_row rows[] = {
    {"config", MCPGW_OPTS_CONFIG, F(config_path), NULL, "FILE",
     "read settings from FILE (keys as the flags; 'drill' lines add drills)"},
    /* Load */
    {"url", MCPGW_OPTS_CUSTOM, 0, 0, NULL, "URL",
     "MCP endpoint (http only), e.g. http://127.0.0.1:8801/mcp (required)", .set = set_url},
    {"sessions", MCPGW_OPTS_UINT, F(sessions), "1", "N", "sessions to open", .min = 1,
     .max = 10000000},
    {"ramp", MCPGW_OPTS_CUSTOM, 0, 0, "1000/s", "RATE/s", "sessions opened per second",
     .set = set_ramp},
    {"duration", MCPGW_OPTS_DURATION, F(duration_ms), "10s", "D", "length of the load phase", SECS},
    {"rate", MCPGW_OPTS_CUSTOM, 0, 0, "max", "R/s|max",
     "echo calls per second, open loop, scheduled by intended send time; or max: closed loop "
     "with --concurrency calls in flight; 0: sessions only, no calls",
     .set = set_rate},
    {"concurrency", MCPGW_OPTS_UINT, F(concurrency), "64", "C",
     "request connections over all workers; in-flight calls with --rate max", .min = 1,
     .max = 1000000},
    {"payload", MCPGW_OPTS_SIZE, F(payload), "256", "SIZE", "bytes of echo text",
     .max = (16u << 20) - 1024},
    {"get-streams", MCPGW_OPTS_BOOL, F(get_streams), NULL, NULL,
     "hold each session's GET SSE stream open (1 socket each)"},
    {"subscribe", MCPGW_OPTS_CUSTOM, 0, 0, NULL, "NAME",
     "subscribe every session to mcpgw://notes/NAME (needs --get-streams)", .set = set_subscribe},
    {"notes-writer", MCPGW_OPTS_CUSTOM, 0, 0, NULL, "RATE/s",
     "worker 0 calls notes_write on NAME at this rate during the load; every subscriber must "
     "get each version once",
     .set = set_writer},
    /* Scale */
    {"workers", MCPGW_OPTS_UINT, F(workers), "1", "K",
     "worker processes; sessions, rate and connections are split evenly", .min = 1, .max = 256},
    {"source-addrs", MCPGW_OPTS_CUSTOM, 0, 0, NULL, "LIST",
     "local addresses to connect from: 127.0.0.2-127.0.0.9 or a comma list; spread over "
     "workers and sockets",
     .set = set_sources},
    /* Robustness */
    {"header", MCPGW_OPTS_CUSTOM, 0, 0, NULL, "\"NAME: VALUE\"",
     "send this header with every request (e.g. Authorization); give several", .set = set_header},
    {"timeout", MCPGW_OPTS_DURATION, F(timeout_ms), "10s", "D", "per-request deadline", SECS},
    {"retries", MCPGW_OPTS_UINT, F(retries), "2", "N",
     "re-sends after a connection failure, or a 502/503/504 to a request that may be repeated",
     .max = 100},
    {"reconnect-window", MCPGW_OPTS_DURATION, F(reconnect_ms), "30s", "D",
     "how long a broken GET stream is retried", SECS},
    {"setup-window", MCPGW_OPTS_DURATION, F(setup_window_ms), "30s", "D",
     "extra time allowed for setups after the ramp", SECS},
    {"grace", MCPGW_OPTS_DURATION, F(grace_ms), "2s", "D",
     "wait for notifications after the load (longer while they still arrive, up to 30s)", SECS},
    {"keep-sessions", MCPGW_OPTS_BOOL, F(keep_sessions), NULL, NULL,
     "do not DELETE the sessions at the end"},
    /* Drills */
    {"drill", MCPGW_OPTS_CUSTOM, 0, 0, NULL, "KIND:NODE@T[+D]",
     "a failover drill (see below); give several", .set = set_drill},
    {"pidfile-dir", MCPGW_OPTS_STR, F(pidfile_dir), NULL, "DIR",
     "find NODE in DIR/NODE.pid (and DIR/redis.pid) before scanning /proc for --node-id NODE"},
    {"redis-port", MCPGW_OPTS_UINT, F(redis_port), "6379", "P", "Redis to restart", .min = 1,
     .max = 65535},
    {"redis-cmd", MCPGW_OPTS_STR, F(redis_cmd), NULL, "CMD",
     "shell command that starts Redis again (default: rebuilt from its process title)"},
    /* Output */
    {"report-json", MCPGW_OPTS_STR, F(report_json), NULL, "FILE",
     "JSON report (fields in docs/loadgen.md)"},
    {"report-html", MCPGW_OPTS_STR, F(report_html), NULL, "FILE",
     "self-contained HTML report with plots"},
    {"quiet", MCPGW_OPTS_BOOL, F(quiet), NULL, NULL, "no progress line"},
    {"check", MCPGW_OPTS_BOOL, F(check), NULL, NULL,
     "exit 3 when a session failed or was lost, a request failed or a notification was lost or "
     "duplicated"},
    {"protocol", MCPGW_OPTS_STR, F(protocol_version), NULL, "V",
     "MCP revision: 2026-07-28 makes every call stateless and holds subscriptions/listen "
     "streams instead of GET streams (docs/listen.md); others initialize sessions (the same "
     "setting as --protocol-version)"},
    {"protocol-version", MCPGW_OPTS_STR, F(protocol_version), "2025-11-25", "V",
     "MCP revision to initialize with"},
};

static const struct mcpgw_opts_spec spec = {
    .prog = "mcpgw-loadgen",
    .rows = rows,
    .nrows = MCPGW_ARRAY_LEN(rows),
    .cfg_size = sizeof(struct mcpgw_lg_config),
    .synopsis = "usage: mcpgw-loadgen --url http://HOST:PORT/mcp [options]\n"
                "Opens MCP sessions (initialize, initialized, optionally a held GET stream and a\n"
                "resource subscription) at a ramp rate, then drives echo tool calls for a "
                "duration,\nand reports latency, throughput, sessions, streams and "
                "notifications.\n",
    .epilogue = "Drills (local cluster; times are after the load phase starts):\n"
                "  --drill kill:NODE@30s         SIGKILL the node\n"
                "  --drill stop:NODE@30s+10s     SIGSTOP, then SIGCONT 10s later\n"
                "  --drill drain:NODE@30s        SIGTERM: the node drains (stops taking sessions,\n"
                "                                ends its streams, exits when its calls are done)\n"
                "  --drill redis-restart@30s[+D] SIGKILL Redis, start it again D later\n"
                "Durations here take a plain number as seconds; rates take an optional /s.\n"
                "Exit status: 0 done, 1 usage or setup error, 2 aborted, 3 --check found a "
                "problem.\n",
};

void mcpgw_lg_opts_usage(FILE *f)
{
    static struct mcpgw_lg_config d; /* large (source addresses): not on the stack */
    mcpgw_opts_defaults(&spec, &d);
    mcpgw_opts_usage(f, &spec, &d);
}

/* The settings together. */
static int validate(struct mcpgw_lg_config *cfg, char *err, size_t errlen)
{
    if (!cfg->url[0]) {
        snprintf(err, errlen, "--url is required (see --help)");
        return -1;
    }
    cfg->era26 = strcmp(cfg->protocol_version, "2026-07-28") == 0;
    if (cfg->subscribe[0] && !cfg->get_streams) {
        snprintf(err, errlen,
                 "--subscribe needs --get-streams: notifications arrive on the GET stream");
        return -1;
    }
    if (cfg->notes_rate > 0 && !cfg->subscribe[0]) {
        snprintf(err, errlen, "--notes-writer needs --subscribe NAME (the note to write)");
        return -1;
    }
    if (cfg->workers > cfg->sessions) {
        snprintf(err, errlen, "--workers %u is more than --sessions %u", cfg->workers,
                 cfg->sessions);
        return -1;
    }
    if (cfg->concurrency < cfg->workers)
        cfg->concurrency = cfg->workers;
    if (cfg->timeout_ms == 0)
        cfg->timeout_ms = 1;
    if (cfg->nsrc && cfg->dst.ss_family != AF_INET) {
        snprintf(err, errlen, "--source-addrs are IPv4; the --url host is not");
        return -1;
    }
    return 0;
}

int mcpgw_lg_opts_parse(int argc, char **argv, struct mcpgw_lg_config *cfg)
{
    char err[600];
    int help = 0;
    mcpgw_opts_defaults(&spec, cfg);
    if (mcpgw_opts_parse_argv(&spec, cfg, argc, argv, NULL, &help, err, sizeof(err)) < 0 ||
        (!help && validate(cfg, err, sizeof(err)) < 0)) {
        fprintf(stderr, "mcpgw-loadgen: %s\n", err);
        return -1;
    }
    if (help) {
        mcpgw_lg_opts_usage(stdout);
        return 1;
    }
    return 0;
}
