/* opts.h - the load generator's configuration and its command-line flags. */
#ifndef MCPGW_LOADGEN_OPTS_H
#define MCPGW_LOADGEN_OPTS_H

#include "loadgen/drill.h"
#include "loadgen/wire.h"

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#define MCPGW_LG_MAX_SRC 256

/* Read by every worker after fork; never changed once parsed. */
struct mcpgw_lg_config {
    char config_path[512]; /* --config FILE, or "" */
    char url[512];
    char host[256];      /* as in the URL, for the Host header */
    char authority[300]; /* host[:port] as sent in Host */
    char path[256];
    int port;
    struct sockaddr_storage dst;
    socklen_t dstlen;

    uint32_t sessions;
    double ramp_per_s;    /* sessions opened per second (all workers together) */
    uint64_t duration_ms; /* load phase */
    double rate_per_s;    /* echo calls per second; 0 with closed_loop */
    int closed_loop;      /* --rate max */
    uint32_t concurrency; /* request connections (all workers); in-flight calls when closed */
    size_t payload;       /* bytes of echo text */
    uint32_t get_streams;
    char subscribe[65]; /* note name, or empty */
    double notes_rate;  /* notes_write per second by worker 0; 0 for none */

    uint32_t workers;
    struct sockaddr_in src[MCPGW_LG_MAX_SRC];
    uint32_t nsrc;

    uint64_t timeout_ms;      /* per request */
    uint32_t retries;         /* re-sends after a connection failure */
    uint64_t reconnect_ms;    /* how long a broken GET stream is retried */
    uint64_t setup_window_ms; /* how long after the ramp's planned end setups may take */
    uint64_t grace_ms;        /* wait for notifications after the load */
    uint32_t keep_sessions;   /* no DELETE at the end */
    uint32_t quiet;           /* no progress line */
    uint32_t check;           /* exit 3 when anything failed or was lost */
    char protocol_version[32];
    uint32_t era26;     /* 2026-07-28: stateless calls, listen streams instead of GET streams */
    char headers[2048]; /* --header lines, each "Name: value\r\n", sent with every request */

    char report_json[512]; /* "" for none */
    char report_html[512];
    struct mcpgw_drill drills[MCPGW_WIRE_MAX_DRILLS];
    uint32_t ndrills;
    char pidfile_dir[512]; /* "" for none */
    int redis_port;
    char redis_cmd[1024]; /* "" for the default */
};

/* Fill cfg from argv (and the file named by --config: the flags' names are its keys).
 * Returns 0, 1 when --help was printed, or -1 after printing why to stderr. */
int mcpgw_lg_opts_parse(int argc, char **argv, struct mcpgw_lg_config *cfg);
void mcpgw_lg_opts_usage(FILE *f);

#endif
