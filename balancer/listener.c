/* listener.c - a worker's listening socket (see listener.h). */
#include "balancer/listener.h"

#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ACCEPT_BATCH 64  /* connections accepted per wakeup of the listener */
#define ACCEPT_FIRST 256 /* of them, per period (rearm), at the loop's first priority */

struct mcpgw_bal_listener {
    struct event_base *base;
    struct event *lev;   /* the listening socket */
    struct event *retry; /* out of descriptors: re-adds lev */
    mcpgw_bal_listener_accept_fn accept;
    void *arg;
    unsigned first; /* accepts left at first priority until the next rearm */
    uint64_t last_warn;
    uint8_t demoted : 1; /* runs at the default priority (budget spent) */
    uint8_t paused : 1;  /* out of descriptors */
};

static void set_priority(struct mcpgw_bal_listener *l, int demoted)
{
    if (l->demoted == demoted || event_base_get_npriorities(l->base) < 2)
        return;
    event_del(l->lev);
    event_priority_set(l->lev, demoted ? event_base_get_npriorities(l->base) / 2 : 0);
    if (!l->paused)
        event_add(l->lev, NULL);
    l->demoted = (uint8_t)demoted;
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_bal_listener *l = arg;
    (void)fd, (void)what;
    l->paused = 0;
    event_add(l->lev, NULL);
}

static void accept_failed(struct mcpgw_bal_listener *l, int err)
{
    uint64_t now = mcpgw_now_ms();
    if (now - l->last_warn > 1000) {
        l->last_warn = now;
        log_warn("accept failed: %s", strerror(err));
    }
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        /* Out of descriptors: pause accepting instead of spinning on a readable listener. */
        struct timeval tv = {0, 100000};
        event_del(l->lev);
        l->paused = 1;
        event_add(l->retry, &tv);
    }
}

/* New connections go first: a client that connects is one a cut stream or a failover sent
 * back, or a new request, and on a loop busy relaying notifications its accept (and, with the
 * listener's deferred accepts, its request) would otherwise wait a whole turn. */
static void on_listen(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_bal_listener *l = arg;
    (void)what;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int cfd = accept4((int)fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                accept_failed(l, errno);
            break;
        }
        l->accept(l->arg, cfd, (const struct sockaddr *)&ss);
        if (!l->demoted && l->first && --l->first == 0) {
            set_priority(l, 1);
            break;
        }
    }
}

void mcpgw_bal_listener_rearm(struct mcpgw_bal_listener *l)
{
    l->first = ACCEPT_FIRST;
    set_priority(l, 0);
}

struct mcpgw_bal_listener *mcpgw_bal_listener_new(struct event_base *base, int fd,
                                                  mcpgw_bal_listener_accept_fn accept, void *arg)
{
    struct mcpgw_bal_listener *l = xcalloc(1, sizeof(*l));
    l->base = base;
    l->accept = accept;
    l->arg = arg;
    l->first = ACCEPT_FIRST;
    l->lev = event_new(base, fd, EV_READ | EV_PERSIST, on_listen, l);
    l->retry = evtimer_new(base, on_retry, l);
    if (!l->lev || !l->retry) {
        if (l->lev)
            event_free(l->lev);
        if (l->retry)
            event_free(l->retry);
        free(l);
        return NULL;
    }
    if (event_base_get_npriorities(base) > 1)
        event_priority_set(l->lev, 0);
    event_add(l->lev, NULL);
    return l;
}

void mcpgw_bal_listener_free(struct mcpgw_bal_listener *l)
{
    evutil_socket_t fd;
    if (!l)
        return;
    fd = event_get_fd(l->lev);
    event_free(l->lev);
    event_free(l->retry);
    close(fd);
    free(l);
}
