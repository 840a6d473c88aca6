/* health.h - active health checks: GET <health-path> on every node, with rise/fall counts.
 *
 * Runs in the master. Each period it sends one check to every slot in use of the shared node
 * table (Connection: close, no session is created) and writes the verdicts back into the table:
 * a node goes down after health-fall consecutive failures and up after health-rise consecutive
 * passes; a node that is down or failing is checked every quarter period, so both take about
 * one period. A passing check records when it started in the slot's pass_ms: a worker's
 * passive mark clears on a check that started after it, never on one already in flight. */
#ifndef MCPGW_BALANCER_HEALTH_H
#define MCPGW_BALANCER_HEALTH_H

#include "balancer/config.h"
#include "balancer/shared.h"

struct event_base;
struct mcpgw_bal_health;

/* Start checking; sh and base are borrowed for the checker's life. Returns NULL only on
 * libevent failure. Free with mcpgw_bal_health_free. */
struct mcpgw_bal_health *mcpgw_bal_health_new(struct event_base *base, struct mcpgw_bal_shared *sh,
                                              const struct mcpgw_bal_config *cfg);
/* Take new interval, timeout, rise, fall and path (after a reload). */
void mcpgw_bal_health_configure(struct mcpgw_bal_health *h, const struct mcpgw_bal_config *cfg);
/* Check every node now (outside the period), e.g. right after the table changed. */
void mcpgw_bal_health_kick(struct mcpgw_bal_health *h);
/* Cancel checks in flight and free. */
void mcpgw_bal_health_free(struct mcpgw_bal_health *h);

#endif
