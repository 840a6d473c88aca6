/* drill.c - parsing and performing fault drills on local processes. */
#include "loadgen/drill.h"

#include "common/util.h"
#include "loadgen/procinfo.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const kind_names[MCPGW_DRILL_KIND_COUNT] = {"kill", "stop", "drain",
                                                               "redis-restart"};

const char *mcpgw_drill_kind_str(enum mcpgw_drill_kind k)
{
    return (unsigned)k < MCPGW_DRILL_KIND_COUNT ? kind_names[k] : "?";
}

int mcpgw_drill_has_resume(const struct mcpgw_drill *d)
{
    return d->kind == MCPGW_DRILL_STOP || d->kind == MCPGW_DRILL_REDIS_RESTART;
}

static int node_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 31)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
            return 0;
    return 1;
}

int mcpgw_drill_parse(const char *s, struct mcpgw_drill *d, char *err, size_t errlen)
{
    char buf[96], *at, *plus, *colon;
    int rc = -1;
    memset(d, 0, sizeof(*d));
    if (strlen(s) >= sizeof(buf)) {
        snprintf(err, errlen, "--drill '%s' is too long", s);
        goto out;
    }
    snprintf(d->spec, sizeof(d->spec), "%s", s);
    snprintf(buf, sizeof(buf), "%s", s);
    at = strchr(buf, '@');
    if (!at) {
        snprintf(err, errlen, "--drill '%s' needs a time: KIND:NODE@30s", s);
        goto out;
    }
    *at++ = '\0';
    plus = strchr(at, '+');
    if (plus)
        *plus++ = '\0';
    if (mcpgw_parse_duration_ms(at, &d->at_ms) < 0) {
        snprintf(err, errlen, "--drill '%s': '%s' is not a duration (e.g. 30s)", s, at);
        goto out;
    }
    if (plus && mcpgw_parse_duration_ms(plus, &d->for_ms) < 0) {
        snprintf(err, errlen, "--drill '%s': '%s' is not a duration (e.g. 10s)", s, plus);
        goto out;
    }
    colon = strchr(buf, ':');
    if (colon)
        *colon++ = '\0';
    if (strcmp(buf, "redis-restart") == 0) {
        d->kind = MCPGW_DRILL_REDIS_RESTART;
        if (colon) {
            snprintf(err, errlen, "--drill '%s': redis-restart takes no target", s);
            goto out;
        }
        rc = 0;
        goto out;
    }
    if (strcmp(buf, "kill") == 0)
        d->kind = MCPGW_DRILL_KILL;
    else if (strcmp(buf, "stop") == 0)
        d->kind = MCPGW_DRILL_STOP;
    else if (strcmp(buf, "drain") == 0)
        d->kind = MCPGW_DRILL_DRAIN;
    else {
        snprintf(err, errlen, "--drill '%s': unknown kind '%s' (kill, stop, drain, redis-restart)",
                 s, buf);
        goto out;
    }
    if (!colon || !node_id_ok(colon)) {
        snprintf(err, errlen, "--drill '%s' needs a node id: %s:NODE@30s", s, buf);
        goto out;
    }
    snprintf(d->target, sizeof(d->target), "%s", colon);
    if (d->kind == MCPGW_DRILL_STOP && !plus) {
        snprintf(err, errlen, "--drill '%s': stop needs how long, e.g. stop:%s@30s+10s", s,
                 d->target);
        goto out;
    }
    if (d->kind != MCPGW_DRILL_STOP && plus) {
        snprintf(err, errlen, "--drill '%s': only stop and redis-restart take +DURATION", s);
        goto out;
    }
    rc = 0;
out:
    return rc;
}

static pid_t pid_from_file(const char *dir, const char *name)
{
    char path[512], buf[32];
    FILE *f;
    long v = 0;
    snprintf(path, sizeof(path), "%s/%s.pid", dir, name);
    f = fopen(path, "r");
    if (!f)
        return 0;
    if (fgets(buf, sizeof(buf), f))
        v = strtol(buf, NULL, 10);
    fclose(f);
    return v > 0 && kill((pid_t)v, 0) == 0 ? (pid_t)v : 0;
}

static pid_t find_node(const struct mcpgw_drill *d, const struct mcpgw_drill_env *env, char *err,
                       size_t errlen)
{
    pid_t pid = env->pidfile_dir ? pid_from_file(env->pidfile_dir, d->target) : 0;
    if (pid > 0)
        return pid;
    pid = mcpgw_procinfo_find("mcpgw-node", "--node-id", d->target);
    if (pid == 0)
        snprintf(err, errlen, "no running mcpgw-node with --node-id %s", d->target);
    else if (pid < 0)
        snprintf(err, errlen, "several mcpgw-node processes have --node-id %s", d->target);
    return pid;
}

/* The redis-server listening on env->redis_port; its working directory into cwd. */
static pid_t find_redis(const struct mcpgw_drill_env *env, char *cwd, size_t cwdlen, char *err,
                        size_t errlen)
{
    char title[1024], want[32];
    pid_t pid = env->pidfile_dir ? pid_from_file(env->pidfile_dir, "redis") : 0;
    const char *colon;
    if (pid > 0)
        return pid;
    snprintf(want, sizeof(want), ":%d", env->redis_port);
    pid = 0;
    /* Several redis-servers may run (replicas): pick the one whose title ends with :PORT. */
    {
        struct mcpgw_proc_sample s[64];
        int n = mcpgw_procinfo_scan("redis-server", s, 64);
        for (int i = 0; i < n; i++) {
            if (mcpgw_procinfo_cmdline(s[i].pid, title, sizeof(title), cwd, cwdlen) < 0)
                continue;
            colon = strrchr(title, ':');
            if (colon && strncmp(colon, want, strlen(want)) == 0 &&
                (colon[strlen(want)] == '\0' || colon[strlen(want)] == ' ')) {
                pid = s[i].pid;
                break;
            }
        }
    }
    if (!pid)
        snprintf(err, errlen, "no redis-server listening on port %d found", env->redis_port);
    return pid;
}

int mcpgw_drill_act(struct mcpgw_drill *d, const struct mcpgw_drill_env *env, pid_t *pid, char *err,
                    size_t errlen)
{
    int rc = -1;
    *pid = 0;
    switch (d->kind) {
    case MCPGW_DRILL_KILL:
    case MCPGW_DRILL_STOP:
    case MCPGW_DRILL_DRAIN:
        *pid = find_node(d, env, err, errlen);
        if (*pid <= 0)
            goto out;
        if (d->kind == MCPGW_DRILL_DRAIN && !mcpgw_procinfo_catches(*pid, SIGTERM)) {
            /* A node drains on SIGTERM; a process that does not catch it would just die. */
            snprintf(err, errlen,
                     "mcpgw-node %s (pid %d) does not handle SIGTERM (drain); not sent", d->target,
                     (int)*pid);
            goto out;
        }
        if (kill(*pid, d->kind == MCPGW_DRILL_KILL   ? SIGKILL
                       : d->kind == MCPGW_DRILL_STOP ? SIGSTOP
                                                     : SIGTERM) < 0) {
            snprintf(err, errlen, "kill %d: %s", (int)*pid, strerror(errno));
            goto out;
        }
        rc = 0;
        break;
    case MCPGW_DRILL_REDIS_RESTART: {
        char title[1024];
        *pid = find_redis(env, d->redis_cwd, sizeof(d->redis_cwd), err, errlen);
        if (*pid <= 0)
            goto out;
        if (env->redis_cmd) {
            snprintf(d->redis_cmd, sizeof(d->redis_cmd), "%s", env->redis_cmd);
        } else {
            const char *colon;
            char host[256] = "127.0.0.1";
            mcpgw_procinfo_cmdline(*pid, title, sizeof(title), d->redis_cwd, sizeof(d->redis_cwd));
            colon = strrchr(title, ':');
            if (colon) {
                const char *sp = strchr(title, ' ');
                if (sp && sp < colon && (size_t)(colon - sp - 1) < sizeof(host)) {
                    memcpy(host, sp + 1, (size_t)(colon - sp - 1));
                    host[colon - sp - 1] = '\0';
                }
            }
            snprintf(d->redis_cmd, sizeof(d->redis_cmd), "exec redis-server --bind %s --port %d",
                     host, env->redis_port);
        }
        if (kill(*pid, SIGKILL) < 0) {
            snprintf(err, errlen, "kill redis-server %d: %s", (int)*pid, strerror(errno));
            goto out;
        }
        rc = 0;
        break;
    }
    default:
        snprintf(err, errlen, "unknown drill");
    }
out:
    return rc;
}

/* Start cmd in its own session, detached from the load generator (double fork). */
static int spawn_detached(const char *cmd, const char *cwd, char *err, size_t errlen)
{
    int status;
    pid_t p = fork();
    if (p < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        return -1;
    }
    if (p == 0) {
        int fd;
        setsid();
        if (fork() != 0)
            _exit(0);
        if (cwd && *cwd && chdir(cwd) < 0)
            _exit(127);
        fd = open("/dev/null", O_RDWR);
        if (fd >= 0) {
            dup2(fd, 0);
            dup2(fd, 1);
            dup2(fd, 2);
        }
        for (int i = 3; i < 1024; i++)
            close(i);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    waitpid(p, &status, 0);
    return 0;
}

int mcpgw_drill_resume(const struct mcpgw_drill *d, const struct mcpgw_drill_env *env, pid_t pid,
                       char *err, size_t errlen)
{
    if (d->kind == MCPGW_DRILL_STOP) {
        if (kill(pid, SIGCONT) < 0) {
            snprintf(err, errlen, "SIGCONT %d: %s", (int)pid, strerror(errno));
            return -1;
        }
        return 0;
    }
    if (d->kind == MCPGW_DRILL_REDIS_RESTART) {
        /* The killed server must be gone before a new one binds its port. */
        for (int i = 0; i < 100 && mcpgw_procinfo_rss_kb(pid) > 0; i++)
            usleep(10000);
        return spawn_detached(d->redis_cmd, d->redis_cwd, err, errlen);
    }
    snprintf(err, errlen, "%s has no second action", mcpgw_drill_kind_str(d->kind));
    return -1;
}
