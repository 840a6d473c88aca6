/* fuzz_http.c - libFuzzer driver for the shared HTTP/1.1 parser (requests and responses), the
 * chunked decoder, and the balancer's head rewriting.
 *
 * The first byte picks the mode; the rest is the input. Besides "no crash, no sanitizer
 * report", it checks invariants: a head the balancer forwards after rewriting parses again with
 * the same framing, and the chunked decoder consumes the same bytes and decodes the same data
 * however the input is split. */
#include "balancer/rewrite.h"
#include "common/http.h"

#include <event2/buffer.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_rewrite(const struct mcpgw_http_head *h, const char *head, int is_response)
{
    static const struct mcpgw_bal_peer peer = {"192.0.2.1", 0, 0};
    struct evbuffer *out = evbuffer_new();
    struct mcpgw_http_head again;
    size_t len;
    const char *p;
    if (is_response)
        mcpgw_bal_rewrite_response(h, head, 0, out);
    else
        mcpgw_bal_rewrite_request(h, &peer, out);
    len = evbuffer_get_length(out);
    p = (const char *)evbuffer_pullup(out, -1);
    if (mcpgw_http_head_end(p, len) != len)
        abort(); /* the rewritten head must end exactly at its blank line */
    if (mcpgw_http_parse_head(p, len, is_response, &again, NULL) != MCPGW_HTTP_OK)
        abort(); /* we would send a head the next hop rejects */
    if (again.chunked != h->chunked || again.content_length != h->content_length)
        abort(); /* framing changed on the way through: a smuggling bug */
    if (!is_response && again.upgrade != h->upgrade)
        abort();
    evbuffer_free(out);
}

static void fuzz_head(const char *buf, size_t len, int is_response)
{
    struct mcpgw_http_head h;
    const char *why = NULL;
    size_t end = mcpgw_http_head_end(buf, len);
    /* The whole input as a head (usually incomplete or malformed), then the part up to the
     * first blank line, which is what the proxy hands the parser. */
    (void)mcpgw_http_parse_head(buf, len, is_response, &h, &why);
    if (!end)
        return;
    if (mcpgw_http_parse_head(buf, end, is_response, &h, &why) != MCPGW_HTTP_OK)
        return;
    if (h.head_len != end || h.nheaders > MCPGW_HTTP_MAX_HEADERS)
        abort();
    for (int i = 0; i < h.nheaders; i++) {
        const struct mcpgw_http_header *hd = &h.headers[i];
        if (hd->name < buf || hd->name + hd->name_len > buf + end || hd->value < buf ||
            hd->value + hd->value_len > buf + end)
            abort();
        (void)mcpgw_http_is_hop_by_hop(hd->name, hd->name_len);
        (void)mcpgw_http_list_has(hd->value, hd->value_len, "close");
    }
    (void)mcpgw_http_find(&h, "mcp-session-id");
    /* The proxy refuses heads with more fields than leave room for the ones it adds. */
    if (h.nheaders <=
        MCPGW_HTTP_MAX_HEADERS - (is_response ? MCPGW_BAL_RESP_ADDED : MCPGW_BAL_REQ_ADDED))
        check_rewrite(&h, buf, is_response);
}

struct sink {
    uint64_t sum;
    size_t n;
};

static void on_data(void *arg, const char *d, size_t len)
{
    struct sink *s = arg;
    for (size_t i = 0; i < len; i++)
        s->sum = s->sum * 31 + (unsigned char)d[i];
    s->n += len;
}

/* Feed in pieces of `step` bytes; returns bytes consumed, or -1. */
static ssize_t feed_split(const char *buf, size_t len, size_t step, struct mcpgw_chunked *d,
                          struct sink *s)
{
    size_t off = 0;
    memset(d, 0, sizeof(*d));
    memset(s, 0, sizeof(*s));
    while (off < len && !d->done) {
        size_t n = len - off < step ? len - off : step;
        ssize_t k = mcpgw_chunked_feed(d, buf + off, n, on_data, s);
        if (k < 0)
            return -1;
        if ((size_t)k > n)
            abort();
        off += (size_t)k;
        if ((size_t)k < n && !d->done)
            abort(); /* only the end of the message may stop it early */
    }
    return (ssize_t)off;
}

static void fuzz_chunked(const char *buf, size_t len, size_t step)
{
    struct mcpgw_chunked d1, d2;
    struct sink s1, s2;
    ssize_t a = feed_split(buf, len, len ? len : 1, &d1, &s1);
    ssize_t b = feed_split(buf, len, step, &d2, &s2);
    if (a != b)
        abort();
    if (a >= 0 && (d1.done != d2.done || s1.n != s2.n || s1.sum != s2.sum))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf;
    size_t len;
    if (size < 1)
        return 0;
    buf = (const char *)data + 1;
    len = size - 1;
    switch (data[0] % 3) {
    case 0:
        fuzz_head(buf, len, 0);
        break;
    case 1:
        fuzz_head(buf, len, 1);
        break;
    default:
        fuzz_chunked(buf, len, (size_t)(data[0] / 3 % 7) + 1);
        break;
    }
    return 0;
}
