/* rdecode.h - what the Redis store reads back, decoded apart from the connection: a session
 * record from the claim script, an event replay, a resource update off the pub/sub channel.
 * Everything here trusts nothing in the reply (a Redis shared with others, a record written by
 * another version): a reply of the wrong shape is refused, never read out of bounds. */
#ifndef MCPGW_NODE_RDECODE_H
#define MCPGW_NODE_RDECODE_H

#include "node/session.h"
#include "node/store.h"

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

/* hiredis 0.14 (Debian 12's) allocates an array reply at the size it declares, before any of
 * it arrives: "*888888882\r\n" asks for 7 GB, and one such line from a Redis that is not ours
 * (or a corrupted stream) would take the node down. The largest array this node reads is a
 * catch-up of events (three entries each); arrays declared longer are refused, which fails the
 * reader and so the connection: the store then treats Redis as unavailable and reconnects. */
#define MCPGW_RDECODE_MAX_ELEMENTS (1 << 22)

/* Makes reader r refuse arrays longer than MCPGW_RDECODE_MAX_ELEMENTS. */
void mcpgw_rdecode_cap_reader(redisReader *r);

/* The record format this node writes and reads (docs/replication.md). */
#define MCPGW_RDECODE_RECORD_V "3"

/* A claim script's reply for session sid: MCPGW_STORE_OK with a new session in *out (the
 * caller owns it), or MCPGW_STORE_GONE (no record, or one of an unknown format),
 * MCPGW_STORE_FOREIGN (another principal's), MCPGW_STORE_UNAVAILABLE (a reply of the wrong
 * shape; *why says which). */
int mcpgw_rdecode_claim(const redisReply *reply, const char *sid, struct mcpgw_session **out,
                        const char **why);

/* A replay script's reply: the event counter at the read in *at, and each well-formed event
 * handed to visit in order (malformed ones are skipped). Returns MCPGW_STORE_OK, or
 * MCPGW_STORE_UNAVAILABLE for a reply of the wrong shape. */
int mcpgw_rdecode_replay(const redisReply *reply, uint64_t *at, mcpgw_store_event_fn visit,
                         void *arg);

/* A task record as the task-get script answers it ([status, owner, lease left, rec, version]):
 * MCPGW_STORE_OK with t's strings pointing into reply, MCPGW_STORE_GONE when the record has no
 * status or owner (none, or expired), MCPGW_STORE_UNAVAILABLE for a reply of the wrong shape. */
int mcpgw_rdecode_task(const redisReply *reply, struct mcpgw_store_task *t);

/* "<id> <version> <uri>", a resource update as published (after its tag): 0 with ev filled and
 * ev->uri pointing into uri, -1 when malformed. */
int mcpgw_rdecode_uri_event(const char *p, size_t len, struct mcpgw_store_event *ev,
                            char uri[MCPGW_URI_MAX + 1]);

/* "<id> <kind>", a list change as published (after its tag): 0 with ev filled (version 0) and
 * ev->uri pointing into name, MCPGW_STORE_LIST_PREFIX followed by the kind; -1 when
 * malformed. */
#define MCPGW_RDECODE_LIST_NAME_MAX 32
int mcpgw_rdecode_list_event(const char *p, size_t len, struct mcpgw_store_event *ev,
                             char name[MCPGW_RDECODE_LIST_NAME_MAX]);

#endif
