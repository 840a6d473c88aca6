/* drill.h - faults the load generator performs on a local cluster during a run: kill -9 a node,
 * SIGSTOP/SIGCONT it, ask it to drain, restart Redis. */
#ifndef MCPGW_LOADGEN_DRILL_H
#define MCPGW_LOADGEN_DRILL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum mcpgw_drill_kind {
    MCPGW_DRILL_KILL,          /* kill:NODE@T          SIGKILL */
    MCPGW_DRILL_STOP,          /* stop:NODE@T+D        SIGSTOP, SIGCONT D later */
    MCPGW_DRILL_DRAIN,         /* drain:NODE@T         SIGTERM: the node drains (refused if the
                                  process does not catch SIGTERM) */
    MCPGW_DRILL_REDIS_RESTART, /* redis-restart@T[+D]  SIGKILL Redis, start it again D later */
    MCPGW_DRILL_KIND_COUNT
};
const char *mcpgw_drill_kind_str(enum mcpgw_drill_kind k);

struct mcpgw_drill {
    enum mcpgw_drill_kind kind;
    char spec[96];   /* as given */
    char target[32]; /* node id; empty for Redis */
    uint64_t at_ms;  /* after the load phase starts */
    uint64_t for_ms; /* stop: time until SIGCONT; redis-restart: time down (default 0) */
    /* redis-restart: how to start Redis again, captured by mcpgw_drill_act for
     * mcpgw_drill_resume (Redis's process title is "redis-server ADDR:PORT"; its argv is gone,
     * so the command comes from --redis-cmd or is rebuilt from the title). */
    char redis_cmd[1024], redis_cwd[512];
};

/* Where to find the processes. Strings are borrowed. */
struct mcpgw_drill_env {
    const char *pidfile_dir; /* DIR/NODE.pid and DIR/redis.pid, or NULL to scan /proc */
    int redis_port;
    const char *redis_cmd; /* shell command restarting Redis, or NULL: rebuilt from its title */
};

/* Parse "kill:n2@30s", "stop:n2@30s+10s", "drain:n2@30s", "redis-restart@30s[+2s]".
 * Returns 0, or -1 with a sentence in err. */
int mcpgw_drill_parse(const char *s, struct mcpgw_drill *d, char *err, size_t errlen);

/* Perform the fault now. *pid gets the process acted on. Returns 0, or -1 with a sentence in
 * err (process not found, signal not handled, ...). */
int mcpgw_drill_act(struct mcpgw_drill *d, const struct mcpgw_drill_env *env, pid_t *pid, char *err,
                    size_t errlen);

/* The second half of stop (SIGCONT to pid) and redis-restart (start Redis again with the command
 * captured by mcpgw_drill_act). Returns 0 or -1 with err. */
int mcpgw_drill_resume(const struct mcpgw_drill *d, const struct mcpgw_drill_env *env, pid_t pid,
                       char *err, size_t errlen);

/* Whether the drill has a second action. */
int mcpgw_drill_has_resume(const struct mcpgw_drill *d);

#endif
