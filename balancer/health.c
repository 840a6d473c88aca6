/* health.c - periodic GET checks of every node, verdicts written to the shared table. */
#include "balancer/health.h"

#include "common/http.h"
#include "common/log.h"
#include "common/net.h"
#include "common/util.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CHECK_HEAD 8192
#define TICK_MS        50 /* scheduling granularity */

struct probe {
    struct mcpgw_bal_health *h;
    struct bufferevent *bev;       /* non-NULL while a check is in flight */
    char addr[MCPGW_BAL_ADDR_MAX]; /* address the counters below belong to */
    char id[MCPGW_BAL_ID_MAX];
    uint32_t fails, passes; /* consecutive */
    uint64_t due_ms;        /* next check */
    uint64_t started_ms;    /* of the check in flight */
    char last_error[96];
    int slot;
};

struct mcpgw_bal_health {
    struct event_base *base;
    struct mcpgw_bal_shared *sh;
    struct event *tick;
    uint32_t interval_ms, timeout_ms, rise, fall;
    char path[128];
    struct sockaddr_in sources[MCPGW_BAL_MAX_SOURCES]; /* --source-addrs, used in turn */
    uint32_t nsources, next_src;
    struct probe probes[MCPGW_BAL_MAX_NODES];
};

static void probe_close(struct probe *p)
{
    if (p->bev) {
        bufferevent_free(p->bev);
        p->bev = NULL;
    }
}

/* A node that is down, or whose state is changing (a failure while up), is checked four times
 * as often: a restarted node is back, and a failing one out, in about one period. */
static void schedule(struct probe *p)
{
    struct mcpgw_bal_health *h = p->h;
    uint32_t up = MCPGW_LOAD(&h->sh->slots[p->slot].up);
    int moving = !up || p->fails > 0;
    uint32_t every = moving ? h->interval_ms / 4 : h->interval_ms;
    p->due_ms = mcpgw_now_ms() + (every < TICK_MS ? TICK_MS : every);
}

static void verdict(struct probe *p, int pass, const char *why)
{
    struct mcpgw_bal_health *h = p->h;
    struct mcpgw_bal_slot *s = &h->sh->slots[p->slot];
    uint32_t up = MCPGW_LOAD(&s->up);

    probe_close(p);
    MCPGW_BUMP(&h->sh->checks[p->slot][pass ? 1 : 0], 1);
    if (pass) {
        p->fails = 0;
        p->passes++;
        if (p->started_ms > MCPGW_LOAD(&s->pass_ms))
            MCPGW_STORE(&s->pass_ms, p->started_ms);
        if (!up && p->passes >= h->rise) {
            MCPGW_STORE(&s->up, 1);
            log_info("node %s (%s) is up: %u passing checks", p->id, p->addr, p->passes);
        }
        schedule(p);
        return;
    }
    p->passes = 0;
    p->fails++;
    if (strcmp(p->last_error, why) != 0 || p->fails == 1)
        log_debug("check of node %s (%s) failed: %s", p->id, p->addr, why);
    snprintf(p->last_error, sizeof(p->last_error), "%s", why);
    if (up && p->fails >= h->fall) {
        MCPGW_STORE(&s->up, 0);
        log_warn("node %s (%s) is down: %s (%u failed checks)", p->id, p->addr, why, p->fails);
    }
    schedule(p);
}

static void on_probe_read(struct bufferevent *bev, void *arg)
{
    struct probe *p = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t avail = evbuffer_get_length(in), n = avail < MAX_CHECK_HEAD ? avail : MAX_CHECK_HEAD;
    const char *data = (const char *)evbuffer_pullup(in, (ssize_t)n);
    size_t end = mcpgw_http_head_end(data, n);
    struct mcpgw_http_head head;
    char why[64];

    if (!end) {
        if (avail >= MAX_CHECK_HEAD)
            verdict(p, 0, "response head too large");
        return;
    }
    if (mcpgw_http_parse_head(data, end, 1, &head, NULL) != MCPGW_HTTP_OK) {
        verdict(p, 0, "malformed response");
        return;
    }
    if (head.status >= 200 && head.status < 300) {
        verdict(p, 1, "");
        return;
    }
    snprintf(why, sizeof(why), "HTTP %d", head.status);
    verdict(p, 0, why);
}

static void on_probe_event(struct bufferevent *bev, short what, void *arg)
{
    struct probe *p = arg;
    char why[96];
    if (what & BEV_EVENT_CONNECTED)
        return;
    if (what & BEV_EVENT_TIMEOUT)
        snprintf(why, sizeof(why), "no answer within %u ms", p->h->timeout_ms);
    else if (what & BEV_EVENT_EOF)
        snprintf(why, sizeof(why), "connection closed before a response");
    else
        snprintf(why, sizeof(why), "%s", strerror(errno ? errno : ECONNREFUSED));
    verdict(p, 0, why);
}

static void probe_start(struct probe *p, const struct mcpgw_bal_slot *s)
{
    struct mcpgw_bal_health *h = p->h;
    struct timeval tv = {h->timeout_ms / 1000, (h->timeout_ms % 1000) * 1000};
    const struct sockaddr_in *src = h->nsources ? &h->sources[h->next_src++ % h->nsources] : NULL;
    int pending;
    int fd;

    p->started_ms = mcpgw_now_ms();
    fd = mcpgw_tcp_connect((const struct sockaddr *)&s->sa, s->salen, (const struct sockaddr *)src,
                           src ? sizeof(*src) : 0, &pending);

    if (fd < 0) {
        verdict(p, 0, strerror(errno));
        return;
    }
    p->bev = bufferevent_socket_new(h->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!p->bev) {
        close(fd);
        verdict(p, 0, "out of memory");
        return;
    }
    bufferevent_setcb(p->bev, on_probe_read, NULL, on_probe_event, p);
    bufferevent_set_timeouts(p->bev, &tv, &tv);
    if (pending)
        bufferevent_socket_connect(p->bev, NULL, 0);
    evbuffer_add_printf(bufferevent_get_output(p->bev),
                        "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: mcpgw-balancer-check\r\n"
                        "Connection: close\r\n\r\n",
                        h->path, s->addr);
    bufferevent_enable(p->bev, EV_READ | EV_WRITE);
}

/* Start the checks that are due (all of them when force). */
static void check_due(struct mcpgw_bal_health *h, int force)
{
    static struct mcpgw_bal_slot table[MCPGW_BAL_MAX_NODES];
    uint32_t n;
    uint64_t now = mcpgw_now_ms();
    mcpgw_bal_shared_read(h->sh, table, &n);
    for (uint32_t i = 0; i < MCPGW_BAL_MAX_NODES; i++) {
        struct probe *p = &h->probes[i];
        if (i >= n || !table[i].in_use) {
            probe_close(p);
            p->addr[0] = '\0';
            continue;
        }
        if (strcmp(p->addr, table[i].addr) != 0 || strcmp(p->id, table[i].id) != 0) {
            /* A new node (or a new address) in this slot: its history starts over. */
            probe_close(p);
            snprintf(p->addr, sizeof(p->addr), "%s", table[i].addr);
            snprintf(p->id, sizeof(p->id), "%s", table[i].id);
            p->fails = p->passes = 0;
            p->last_error[0] = '\0';
        }
        if (p->bev) /* the previous check is still running (timeout >= interval) */
            continue;
        if (!force && p->due_ms > now)
            continue;
        probe_start(p, &table[i]);
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    check_due(arg, 0);
}

struct mcpgw_bal_health *mcpgw_bal_health_new(struct event_base *base, struct mcpgw_bal_shared *sh,
                                              const struct mcpgw_bal_config *cfg)
{
    struct mcpgw_bal_health *h = xcalloc(1, sizeof(*h));
    h->base = base;
    h->sh = sh;
    for (int i = 0; i < MCPGW_BAL_MAX_NODES; i++) {
        h->probes[i].h = h;
        h->probes[i].slot = i;
    }
    h->tick = event_new(base, -1, EV_PERSIST, on_tick, h);
    if (!h->tick) {
        free(h);
        return NULL;
    }
    mcpgw_bal_health_configure(h, cfg);
    return h;
}

void mcpgw_bal_health_configure(struct mcpgw_bal_health *h, const struct mcpgw_bal_config *cfg)
{
    struct timeval tv = {0, TICK_MS * 1000};
    h->interval_ms = cfg->health_interval_ms;
    h->timeout_ms = cfg->health_timeout_ms;
    h->rise = cfg->health_rise;
    h->fall = cfg->health_fall;
    snprintf(h->path, sizeof(h->path), "%s", cfg->health_path);
    memcpy(h->sources, cfg->sources, sizeof(h->sources));
    h->nsources = cfg->nsources;
    event_add(h->tick, &tv);
}

void mcpgw_bal_health_kick(struct mcpgw_bal_health *h)
{
    check_due(h, 1);
}

void mcpgw_bal_health_free(struct mcpgw_bal_health *h)
{
    if (!h)
        return;
    for (int i = 0; i < MCPGW_BAL_MAX_NODES; i++)
        probe_close(&h->probes[i]);
    event_free(h->tick);
    free(h);
}
