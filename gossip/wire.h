/* wire.h - versioned binary codec for gossip (SWIM) datagrams; the spec is docs/gossip.md. */
#ifndef MCPGW_GOSSIP_WIRE_H
#define MCPGW_GOSSIP_WIRE_H

#include <stddef.h>
#include <stdint.h>

struct sockaddr;
struct sockaddr_storage;

#define MCPGW_GOSSIP_WIRE_VERSION 1
#define MCPGW_GOSSIP_MAX_PACKET   1400 /* bytes in one datagram, both directions */
#define MCPGW_GOSSIP_MAX_ID       64   /* member id length */
#define MCPGW_GOSSIP_MAX_HTTP     128  /* advertised HTTP address length */
#define MCPGW_GOSSIP_MAX_UPDATES  48   /* member records in one datagram (min record: 28 B) */

/* Member record flags (wire byte; other bits must be zero). */
#define MCPGW_GOSSIP_F_SERVING  0x01 /* takes client traffic (nodes); balancers do not */
#define MCPGW_GOSSIP_F_DRAINING 0x02 /* the member announced draining (kept while suspect) */
#define MCPGW_GOSSIP_F_ALL      0x03

/* A member's state as seen by the cluster; the numbers are the wire values. ALIVE, DRAINING
 * and LEFT are only ever asserted by the member itself, SUSPECT and DEAD by others. */
enum mcpgw_member_state {
    MCPGW_MEMBER_ALIVE = 0,
    MCPGW_MEMBER_SUSPECT = 1,
    MCPGW_MEMBER_DEAD = 2,
    MCPGW_MEMBER_DRAINING = 3,
    MCPGW_MEMBER_LEFT = 4,
    MCPGW_MEMBER_STATE_COUNT
};
const char *mcpgw_member_state_str(enum mcpgw_member_state s);

enum mcpgw_gossip_msg_type {
    MCPGW_GOSSIP_PING = 1,     /* probe; the target answers ACK with the same seq */
    MCPGW_GOSSIP_ACK = 2,      /* answer to PING, or relayed by a PING_REQ helper */
    MCPGW_GOSSIP_PING_REQ = 3, /* "probe target for me": indirect probe */
    MCPGW_GOSSIP_JOIN = 4,     /* push of the sender's member table; asks for a SYNC back */
    MCPGW_GOSSIP_SYNC = 5,     /* member table chunk (answer to JOIN, or JOIN continuation) */
    MCPGW_GOSSIP_GOSSIP = 6,   /* updates only: urgent dissemination, no answer */
    MCPGW_GOSSIP_MSG_TYPE_COUNT
};
const char *mcpgw_gossip_msg_type_str(int type);

/* A UDP address as carried on the wire: family 4 or 6, network-order address bytes. */
struct mcpgw_gossip_addr {
    uint8_t family; /* 4 or 6 */
    uint8_t ip[16]; /* IPv4 uses ip[0..3], the rest is zero */
    uint16_t port;  /* host order, never 0 */
};

/* One member record: the whole state of one member as the sender knows it. */
struct mcpgw_gossip_update {
    char id[MCPGW_GOSSIP_MAX_ID + 1];
    uint8_t state; /* enum mcpgw_member_state */
    uint8_t flags; /* MCPGW_GOSSIP_F_* */
    uint64_t generation;
    uint32_t incarnation;
    uint32_t sessions;
    struct mcpgw_gossip_addr addr;
    char http_addr[MCPGW_GOSSIP_MAX_HTTP + 1]; /* "" when none */
};

/* A datagram's header. target is meaningful for PING and PING_REQ, target_addr for PING_REQ. */
struct mcpgw_gossip_hdr {
    uint8_t version; /* decoder output; the encoder always writes MCPGW_GOSSIP_WIRE_VERSION */
    uint8_t type;    /* enum mcpgw_gossip_msg_type */
    uint32_t seq;
    uint64_t sender_generation;
    uint32_t sender_incarnation;
    char sender[MCPGW_GOSSIP_MAX_ID + 1];
    char target[MCPGW_GOSSIP_MAX_ID + 1];
    struct mcpgw_gossip_addr target_addr;
};

/* A decoded datagram: header, then the piggybacked member records. */
struct mcpgw_gossip_msg {
    struct mcpgw_gossip_hdr hdr;
    int nupdates;
    struct mcpgw_gossip_update updates[MCPGW_GOSSIP_MAX_UPDATES];
};

enum mcpgw_gossip_wire_err {
    MCPGW_GOSSIP_WIRE_OK = 0,
    MCPGW_GOSSIP_WIRE_TRUNCATED = -1, /* ends inside a field */
    MCPGW_GOSSIP_WIRE_OVERSIZE = -2,  /* longer than MCPGW_GOSSIP_MAX_PACKET */
    MCPGW_GOSSIP_WIRE_VERSION_ERR = -3,
    MCPGW_GOSSIP_WIRE_TYPE_ERR = -4,
    MCPGW_GOSSIP_WIRE_FIELD_ERR = -5, /* a length, state, flag, family or port out of range */
    MCPGW_GOSSIP_WIRE_TRAILING = -6,  /* bytes after the last record */
    MCPGW_GOSSIP_WIRE_NOSPACE = -7,   /* encoder: does not fit in the buffer */
    MCPGW_GOSSIP_WIRE_ERR_COUNT = -8  /* sentinel: one past the last code */
};
const char *mcpgw_gossip_wire_err_str(int err);

/* Decode one datagram of len bytes into *out (overwritten; nothing allocated). Safe on any
 * bytes: every length is checked against the end of buf and against the MAX_* limits, and the
 * datagram must end exactly after its last record. Returns 0 or a negative
 * enum mcpgw_gossip_wire_err. */
int mcpgw_gossip_wire_decode(const uint8_t *buf, size_t len, struct mcpgw_gossip_msg *out);

/* Incremental encoder into a caller buffer: begin writes the header, then add appends one record at
 * a time until it returns NOSPACE. w->len is the datagram length at every point. The writer borrows
 * buf until the datagram is sent. */
struct mcpgw_gossip_writer {
    uint8_t *buf;
    size_t cap;
    size_t len;
    size_t count_off; /* where the update count byte lives */
    int count;
};
int mcpgw_gossip_wire_begin(struct mcpgw_gossip_writer *w, uint8_t *buf, size_t cap,
                            const struct mcpgw_gossip_hdr *hdr);
int mcpgw_gossip_wire_add(struct mcpgw_gossip_writer *w, const struct mcpgw_gossip_update *u);

/* Encode a whole message (header and all its updates). Returns the length, or a negative
 * enum mcpgw_gossip_wire_err (NOSPACE if it does not fit in cap, FIELD_ERR if a field is
 * out of range: the encoder never writes what the decoder would reject). */
int mcpgw_gossip_wire_encode(const struct mcpgw_gossip_msg *m, uint8_t *buf, size_t cap);

/* Conversions between wire addresses and sockaddrs. from_sockaddr returns 0, or -1 for a
 * family other than AF_INET/AF_INET6; to_sockaddr fills ss and returns its length. */
int mcpgw_gossip_addr_from_sockaddr(struct mcpgw_gossip_addr *a, const struct sockaddr *sa);
unsigned mcpgw_gossip_addr_to_sockaddr(const struct mcpgw_gossip_addr *a,
                                       struct sockaddr_storage *ss);
/* "1.2.3.4:5" or "[::1]:5" into out (at least 56 bytes for any address). */
void mcpgw_gossip_addr_format(const struct mcpgw_gossip_addr *a, char *out, size_t outlen);
int mcpgw_gossip_addr_equal(const struct mcpgw_gossip_addr *a, const struct mcpgw_gossip_addr *b);

#endif
