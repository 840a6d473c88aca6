/* http.h - strict HTTP/1.1 message-head parser and incremental chunked-body decoder.
 *
 * Shared by the node (requests), the balancer (requests and responses) and the load generator
 * (responses). The parser works on one contiguous buffer holding the whole head; it does not
 * allocate, and the parsed fields point into that buffer. It rejects the shapes used for
 * request smuggling: Content-Length together with Transfer-Encoding, duplicate or invalid
 * Content-Length, obsolete line folding, bare CR/LF or NUL in header lines, and transfer
 * codings other than a final "chunked". */
#ifndef MCPGW_COMMON_HTTP_H
#define MCPGW_COMMON_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MCPGW_HTTP_MAX_HEADERS 64

enum mcpgw_http_method {
    MCPGW_HTTP_GET,
    MCPGW_HTTP_POST,
    MCPGW_HTTP_DELETE,
    MCPGW_HTTP_HEAD,
    MCPGW_HTTP_PUT,
    MCPGW_HTTP_OPTIONS,
    MCPGW_HTTP_PATCH,
    MCPGW_HTTP_OTHER,
    MCPGW_HTTP_METHOD_COUNT
};
const char *mcpgw_http_method_str(enum mcpgw_http_method m);

struct mcpgw_http_header {
    const char *name;
    const char *value; /* leading/trailing whitespace trimmed */
    unsigned short name_len;
    unsigned int value_len;
};

struct mcpgw_http_head {
    /* Request line (requests only). */
    enum mcpgw_http_method method;
    const char *method_str;
    size_t method_len;
    const char *target;
    size_t target_len;
    /* Status line (responses only). */
    int status;
    int minor_version; /* HTTP/1.<minor_version>; 0 or 1 */
    struct mcpgw_http_header headers[MCPGW_HTTP_MAX_HEADERS];
    int nheaders;
    /* Framing derived from the headers. */
    int64_t content_length; /* -1 when absent */
    unsigned chunked : 1;
    unsigned keep_alive : 1; /* after Connection and the version default */
    unsigned upgrade : 1;    /* Connection: upgrade with an Upgrade header */
    unsigned expect_continue : 1;
    size_t head_len; /* bytes of the head including the blank line */
};

enum mcpgw_http_status {
    MCPGW_HTTP_OK = 0,
    MCPGW_HTTP_INCOMPLETE = -1,  /* need more bytes */
    MCPGW_HTTP_BAD = -2,         /* malformed: answer 400 and close */
    MCPGW_HTTP_TOO_MANY = -3,    /* too many header fields: answer 431 */
    MCPGW_HTTP_UNSUPPORTED = -4, /* unknown transfer coding: answer 501 */
    MCPGW_HTTP_BAD_VERSION = -5, /* not HTTP/1.x: answer 505 */
};

/* Find the end of a head ("\r\n\r\n") in buf. Returns the head length including the blank line,
 * or 0 when not found yet. A bare "\n\n" is not accepted as an end. */
size_t mcpgw_http_head_end(const char *buf, size_t len);

/* Parse the head occupying buf[0..len) (len as returned by mcpgw_http_head_end). is_response
 * selects a status line instead of a request line. On failure *why (if non-NULL) gets a short
 * static reason. */
int mcpgw_http_parse_head(const char *buf, size_t len, int is_response, struct mcpgw_http_head *h,
                          const char **why);

/* First header with this (case-insensitive) name, or NULL. */
const struct mcpgw_http_header *mcpgw_http_find(const struct mcpgw_http_head *h, const char *name);

/* Whether a comma-separated header value contains token (case-insensitive; parameters after ';'
 * are ignored, so "text/event-stream;q=0.9" matches "text/event-stream"). */
int mcpgw_http_list_has(const char *value, size_t len, const char *token);

/* True for hop-by-hop header names (RFC 9110 7.6.1), which a proxy must not forward. */
int mcpgw_http_is_hop_by_hop(const char *name, size_t len);

const char *mcpgw_http_reason(int status);

/* Incremental decoder for a chunked body. Zero-initialise before use. */
struct mcpgw_chunked {
    uint64_t remaining; /* bytes left in the current chunk's data */
    uint32_t line_len;  /* bytes of the current size/trailer line seen so far */
    uint8_t state;
    uint8_t done; /* set once the final CRLF after the last chunk and trailers is consumed */
};

/* Feed n bytes. Decoded data is passed to on_data (may be NULL to only track framing). Returns
 * the number of bytes consumed (less than n only when the message ended inside the buffer), or
 * -1 on a malformed encoding (invalid hex, missing CRLF, size overflow, oversized line). */
typedef void (*mcpgw_chunk_data_fn)(void *arg, const char *data, size_t len);
ssize_t mcpgw_chunked_feed(struct mcpgw_chunked *d, const char *p, size_t n,
                           mcpgw_chunk_data_fn on_data, void *arg);

/* 1 when d stands between two chunks (the next byte would start a size line), 0 otherwise:
 * bytes relayed so far are whole chunks and others may follow them. */
int mcpgw_chunked_between(const struct mcpgw_chunked *d);

#endif
