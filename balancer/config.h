/* config.h - mcpgw-balancer settings: defaults, command-line flags, config file, validation. */
#ifndef MCPGW_BALANCER_CONFIG_H
#define MCPGW_BALANCER_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <stdio.h>

#define MCPGW_BAL_MAX_NODES   64 /* node slots; routing bitmaps are 64 bits wide */
#define MCPGW_BAL_MAX_WORKERS 32
#define MCPGW_BAL_ID_MAX      48 /* node id, NUL included */
#define MCPGW_BAL_ADDR_MAX    128
#define MCPGW_BAL_PATH_MAX    512
#define MCPGW_BAL_MAX_SOURCES 64 /* --source-addrs */

struct mcpgw_bal_node_spec {
    char id[MCPGW_BAL_ID_MAX];
    char addr[MCPGW_BAL_ADDR_MAX]; /* host:port */
    unsigned draining : 2;         /* 1: up, serves its sessions, takes no new ones;
                                      2: leaving (from gossip): gets nothing new */
};

struct mcpgw_bal_config {
    char config_path[MCPGW_BAL_PATH_MAX]; /* "" when no --config */
    char listen[MCPGW_BAL_ADDR_MAX];
    char admin[MCPGW_BAL_ADDR_MAX]; /* "" = no admin listener */
    int workers;
    struct mcpgw_bal_node_spec nodes[MCPGW_BAL_MAX_NODES];
    int nnodes;
    char tls_cert[MCPGW_BAL_PATH_MAX];
    char tls_key[MCPGW_BAL_PATH_MAX];
    /* Client limits (per worker). */
    uint32_t max_clients;
    uint64_t max_header_size;
    uint64_t max_body_size;
    uint32_t header_timeout_ms;
    uint32_t body_timeout_ms;
    uint32_t idle_timeout_ms;
    uint32_t send_timeout_ms;
    /* --tcp-keepalive: idle time before TCP keep-alive probes on client sockets (0 = off), so a
     * client gone behind a NAT does not hold its stream forever (common/net.h). */
    uint32_t tcp_keepalive_ms;
    uint64_t buffer_size; /* high watermark of queued bytes per direction */
    /* Upstream. */
    uint32_t connect_timeout_ms;
    uint32_t response_timeout_ms;
    uint32_t pool_size;
    /* --stream-mux: carry session GET streams to a node as HTTP/2 streams over one connection
     * per node and worker (h2c) instead of one HTTP/1.1 connection each. */
    uint32_t stream_mux;
    /* --stream-resume: when a node fails, re-open each of its multiplexed SSE streams on another
     * node with Last-Event-ID set to the last whole event relayed (resume.h), instead of ending
     * it for the client to resume. */
    uint32_t stream_resume;
    /* --mux-window: the receive window of each multiplexed connection (HTTP/2, connection
     * level), returned as bytes arrive. It bounds what a node has in flight to the worker, so
     * a stream opened during a fan-out has its head queued behind at most this much. */
    uint64_t mux_window;
    uint32_t pool_idle_timeout_ms;
    /* --source-addrs: local IPv4 addresses upstream connections are made from, in turn (empty:
     * the kernel's choice). The kernel's search for a free port slows down as one source
     * address's connections to one node fill the port range; more sources keep it short. */
    char source_addrs[512];
    struct sockaddr_in sources[MCPGW_BAL_MAX_SOURCES]; /* parsed by validation */
    uint32_t nsources;
    /* Active health checks. */
    uint32_t health_interval_ms;
    uint32_t health_timeout_ms;
    uint32_t health_rise;
    uint32_t health_fall;
    char health_path[128];
    /* --balancer-secret: sent to the nodes on every request (rewrite.h), so nodes started with
     * the same secret serve only requests that came through a balancer. */
    char balancer_secret[256];
    /* Process. */
    uint32_t drain_timeout_ms;
    int log_level;
    char drain_ids[512]; /* --drain: comma-separated node ids marked draining */
    /* Gossip membership (SWIM): when gossip_bind is set, nodes come from the cluster's gossip
     * (a non-serving member), --nodes only seeds the table until gossip converges. */
    char gossip_bind[MCPGW_BAL_ADDR_MAX];
    char gossip_advertise[MCPGW_BAL_ADDR_MAX];
    char gossip_seeds[1024];
    char gossip_keyring[MCPGW_BAL_PATH_MAX]; /* key ring file; "": unauthenticated gossip */
};

/* Fill every field with its default. */
void mcpgw_bal_config_defaults(struct mcpgw_bal_config *cfg);

/* Build the effective configuration: defaults, then the file named by --config (if any), then
 * the other command-line flags, then validation. *check and *help report --check and --help
 * (help is not an error: the caller prints usage). Returns 0, or -1 with a sentence in err. */
int mcpgw_bal_config_load(struct mcpgw_bal_config *cfg, int argc, char **argv, int *check,
                          int *help, char *err, size_t errlen);

/* Apply one config-file text (the format of a --config file) over cfg, without validation.
 * origin names the text in errors ("balancer.conf"). Returns 0, or -1 with a sentence in err. */
int mcpgw_bal_config_parse_text(struct mcpgw_bal_config *cfg, const char *text, const char *origin,
                                char *err, size_t errlen);

/* Parse "id=host:port,id=host:port,..." replacing cfg's node list. Returns 0 or -1 (err). */
int mcpgw_bal_config_parse_nodes(struct mcpgw_bal_config *cfg, const char *list, char *err,
                                 size_t errlen);

/* Check the settings together: addresses parse, node ids are unique and well formed, limits
 * are sane, TLS files come in pairs; fills the parsed source-address list. Does not touch the
 * network. Returns 0 or -1 (err). */
int mcpgw_bal_config_validate(struct mcpgw_bal_config *cfg, char *err, size_t errlen);

/* Print every flag with its default (the --help text). */
void mcpgw_bal_config_usage(FILE *out, const char *prog);

#endif
