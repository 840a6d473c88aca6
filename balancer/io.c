/* io.c - the worker's socket I/O on bufferevents (see io.h). */
#include "balancer/io.h"

#include "common/net.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

int mcpgw_bal_io_push(struct bufferevent *bev)
{
    struct evbuffer *out = bufferevent_get_output(bev);
    int rc = 0;
    if (!evbuffer_get_length(out) || (bufferevent_get_enabled(bev) & EV_WRITE))
        return 0;
    evbuffer_unfreeze(out, 1);
    if (evbuffer_write(out, bufferevent_getfd(bev)) < 0 && !mcpgw_bal_io_would_block(errno))
        rc = -1;
    evbuffer_freeze(out, 1);
    /* Leftovers, or an error libevent runs into again and reports through the event callback
     * (for callers that do not act on the result themselves). */
    if (evbuffer_get_length(out))
        bufferevent_enable(bev, EV_WRITE);
    return rc;
}

void mcpgw_bal_io_write_idle(struct bufferevent *bev)
{
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        bufferevent_disable(bev, EV_WRITE);
}

ssize_t mcpgw_bal_io_read(struct evbuffer *in, int fd, size_t max)
{
    return mcpgw_evbuffer_readv(in, fd,
                                max < MCPGW_BAL_IO_READ_CHUNK ? max : MCPGW_BAL_IO_READ_CHUNK);
}

int mcpgw_bal_io_would_block(int e)
{
    return e == EAGAIN || e == EWOULDBLOCK || e == EINTR;
}

struct timeval mcpgw_bal_io_tv(uint32_t ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}
