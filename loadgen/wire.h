/* wire.h - messages between the load generator's parent and its worker processes.
 *
 * A socketpair per worker carries length-prefixed frames: a 16-byte header (magic "LGW1",
 * version, type, worker index, payload length) and a payload of fixed-width integers in host
 * byte order (both ends are the same binary on the same machine). docs/loadgen.md describes
 * every message. Decoders check every length and refuse unknown versions. */
#ifndef MCPGW_LOADGEN_WIRE_H
#define MCPGW_LOADGEN_WIRE_H

#include "loadgen/stats.h"

#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct mcpgw_lathist;

#define MCPGW_WIRE_MAGIC      0x3157474cu /* "LGW1" in memory order */
#define MCPGW_WIRE_VERSION    1
#define MCPGW_WIRE_HDR        16
#define MCPGW_WIRE_MAX        (4u << 20) /* largest payload accepted */
#define MCPGW_WIRE_MAX_NODES  64
#define MCPGW_WIRE_MAX_DRILLS 16

enum mcpgw_wire_type {
    /* worker -> parent */
    MCPGW_WIRE_TICK,  /* one second's counter deltas, gauges and histogram deltas */
    MCPGW_WIRE_READY, /* every session of the worker is set up (or failed) */
    MCPGW_WIRE_FINAL, /* notification accounting, sessions per node, drill outcomes */
    MCPGW_WIRE_DONE,  /* the worker is about to exit */
    /* parent -> worker */
    MCPGW_WIRE_GO,     /* start the load at the given monotonic time */
    MCPGW_WIRE_STOP,   /* stop sending load */
    MCPGW_WIRE_FAULT,  /* a drill acted now: attribute later failures to it */
    MCPGW_WIRE_FINISH, /* account notifications against the writer's versions, then end */
    MCPGW_WIRE_TYPE_COUNT
};
const char *mcpgw_wire_type_str(enum mcpgw_wire_type t);

struct mcpgw_wire_tick {
    uint32_t sec; /* whole seconds since the run's start */
    uint64_t c[LG_C_COUNT];
    uint64_t g[LG_G_COUNT];
    uint64_t writer_first, writer_last; /* acknowledged note versions; 0 when none */
};

struct mcpgw_wire_node {
    char name[32];
    uint64_t established, alive;
};

struct mcpgw_wire_drill {
    uint64_t affected, recovered, lost;
    uint64_t first_err_us, last_err_us; /* monotonic; 0 when no error was seen */
};

struct mcpgw_wire_final {
    uint64_t subscribers, expected, received, duplicated, lost;
    uint32_t nnodes;
    struct mcpgw_wire_node nodes[MCPGW_WIRE_MAX_NODES];
    uint32_t ndrills;
    struct mcpgw_wire_drill drills[MCPGW_WIRE_MAX_DRILLS];
};

/* Parent -> worker commands: GO (a = start time), FAULT (a = drill index, b = time), FINISH
 * (a = first, b = last note version written). */
struct mcpgw_wire_cmd {
    uint64_t a, b;
};

/* Append a frame header for a payload of len bytes. */
void mcpgw_wire_header(struct evbuffer *out, enum mcpgw_wire_type t, uint32_t worker, uint32_t len);

/* Take one frame from in when complete: fills *type, *worker and a malloc'd payload (free it).
 * Returns 1 with a frame, 0 when more bytes are needed, -1 on a bad header. */
int mcpgw_wire_take(struct evbuffer *in, int *type, uint32_t *worker, unsigned char **payload,
                    uint32_t *len);

/* Whole frames, ready to send. Histograms are added with mcpgw_lathist_encode. */
void mcpgw_wire_put_tick(struct evbuffer *out, uint32_t worker, const struct mcpgw_wire_tick *t,
                         const struct mcpgw_lathist *lat, const struct mcpgw_lathist *setup);
void mcpgw_wire_put_final(struct evbuffer *out, uint32_t worker, const struct mcpgw_wire_final *f,
                          struct mcpgw_lathist *const *recovery);
void mcpgw_wire_put_cmd(struct evbuffer *out, enum mcpgw_wire_type t, uint32_t worker,
                        const struct mcpgw_wire_cmd *c);

/* Decoders: 0, or -1 on a malformed payload. Histograms are added to lat/setup/recovery[i]. */
int mcpgw_wire_get_tick(const unsigned char *p, uint32_t len, struct mcpgw_wire_tick *t,
                        struct mcpgw_lathist *lat, struct mcpgw_lathist *setup);
int mcpgw_wire_get_final(const unsigned char *p, uint32_t len, struct mcpgw_wire_final *f,
                         struct mcpgw_lathist *const *recovery, uint32_t nrecovery);
int mcpgw_wire_get_cmd(const unsigned char *p, uint32_t len, struct mcpgw_wire_cmd *c);

#endif
