/* listener.h - a worker's listening socket: accepts in batches, goes first for a while, and
 * pauses when out of descriptors. */
#ifndef MCPGW_BALANCER_LISTENER_H
#define MCPGW_BALANCER_LISTENER_H

#include <sys/socket.h>

struct event_base;
struct mcpgw_bal_listener;

/* A connection was accepted: fd (non-blocking, close-on-exec) is the callee's. */
typedef void (*mcpgw_bal_listener_accept_fn)(void *arg, int fd, const struct sockaddr *sa);

/* Accept on fd (a listening socket, taken over: closed by mcpgw_bal_listener_free), calling
 * accept(arg, ...) for each connection. New connections go first (the loop's first priority,
 * when base has more than one) for a budget of accepts that mcpgw_bal_listener_rearm restores;
 * past it they wait their turn, so a flood of connections cannot starve the relaying of
 * answers. NULL when libevent cannot allocate (fd is left open then). */
struct mcpgw_bal_listener *mcpgw_bal_listener_new(struct event_base *base, int fd,
                                                  mcpgw_bal_listener_accept_fn accept, void *arg);
/* A new period: the budget of first-priority accepts is full again. */
void mcpgw_bal_listener_rearm(struct mcpgw_bal_listener *l);
/* Stop accepting, close the socket and free. */
void mcpgw_bal_listener_free(struct mcpgw_bal_listener *l);

#endif
