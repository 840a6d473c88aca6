/* io.h - the worker's socket I/O on bufferevents: one readv per read, writes sent at once.
 *
 * Plain sockets are read with our own event and one readv of up to 16 KiB (libevent 2.1 reads
 * at most 4096 bytes and asks FIONREAD first), and written through the bufferevent's output
 * with push(), which writes at once and arms EPOLLOUT only when bytes are left over. */
#ifndef MCPGW_BALANCER_IO_H
#define MCPGW_BALANCER_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>
#include <sys/types.h>

struct bufferevent;
struct evbuffer;

#define MCPGW_BAL_IO_READ_CHUNK 16384 /* one readv takes up to this much */

/* Send what is queued on a plain socket's bufferevent now instead of after another trip
 * through epoll. EV_WRITE stays disabled while nothing is queued (the write callbacks disable
 * it again with mcpgw_bal_io_write_idle); leftovers enable it and libevent sends them when the
 * socket is writable. Returns 0, or -1 with errno when the write failed (the peer is gone; the
 * bufferevent's event callback also reports it later). */
int mcpgw_bal_io_push(struct bufferevent *bev);
/* The write callback's half of push(): once the output is empty, stop watching writability. */
void mcpgw_bal_io_write_idle(struct bufferevent *bev);
/* Read up to max bytes (at most MCPGW_BAL_IO_READ_CHUNK) from fd into in with one readv.
 * Returns what readv returned (errno set on -1). */
ssize_t mcpgw_bal_io_read(struct evbuffer *in, int fd, size_t max);
/* Whether errno value e only means "not now". */
int mcpgw_bal_io_would_block(int e);
struct timeval mcpgw_bal_io_tv(uint32_t ms);

#endif
