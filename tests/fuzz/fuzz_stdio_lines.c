/* fuzz_stdio_lines.c - libFuzzer driver for the stdio framing (common/lines.h) that turns a
 * child's stdout into JSON-RPC messages.
 *
 * Input: byte 0 picks the line cap (1..256, small so over-long lines are common), byte 1 seeds
 * how the rest is cut into reads and when the consumer asks to stop; the rest is the child's
 * output. Besides "no crash, no sanitizer report" it checks the framing's promise against a
 * reference written differently (memchr over the whole output at once): the lines delivered
 * are exactly the newline-terminated lines of at most cap bytes, in order, whatever the cuts
 * and stops; what stays buffered is only the unterminated tail, and never more than cap
 * bytes. Each delivered line then goes through the JSON-RPC decoder, as the upstream does. */
#include "common/jsonrpc.h"
#include "common/lines.h"

#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct got {
    const char *ref;          /* the whole output */
    size_t ref_len, max, pos; /* pos: where the reference's next expected line is sought */
    uint32_t rng;
    unsigned lines;
};

static uint32_t next(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

/* The next line the reference expects: a newline-terminated run of at most max bytes. */
static int ref_next(struct got *g, const char **line, size_t *len)
{
    while (g->pos < g->ref_len) {
        const char *s = g->ref + g->pos;
        const char *nl = memchr(s, '\n', g->ref_len - g->pos);
        if (!nl)
            return 0;
        g->pos = (size_t)(nl - g->ref) + 1;
        if ((size_t)(nl - s) <= g->max) {
            *line = s;
            *len = (size_t)(nl - s);
            return 1;
        }
    }
    return 0;
}

static int on_line(void *arg, const char *line, size_t len)
{
    struct got *g = arg;
    const char *want;
    size_t want_len;
    struct mcpgw_jsonrpc_msg m;
    json_object *bad = NULL;
    const char *why = NULL;
    if (!ref_next(g, &want, &want_len) || want_len != len || memcmp(want, line, len) != 0)
        abort(); /* a line the reference does not have, or out of order */
    if (memchr(line, '\n', len) || len > g->max)
        abort();
    g->lines++;
    if (len && line[len - 1] == '\r')
        len--;
    if (mcpgw_jsonrpc_parse(line, len, &m, &bad, &why) == 0)
        mcpgw_jsonrpc_msg_deinit(&m);
    else if (!why)
        abort(); /* a refusal always says why (it goes to the log) */
    json_object_put(bad);
    return (next(&g->rng) & 7) == 0; /* stop now and then: the rest must wait intact */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct got g;
    struct evbuffer *b;
    const char *out, *want;
    size_t n, off = 0, want_len, tail;
    int discard = 0;
    if (size < 2)
        return 0;
    memset(&g, 0, sizeof(g));
    g.max = (size_t)data[0] + 1;
    g.rng = 0x9e3779b9u ^ data[1];
    out = (const char *)data + 2;
    n = size - 2;
    g.ref = out;
    g.ref_len = n;
    b = evbuffer_new();
    while (off < n) {
        size_t cut = 1 + next(&g.rng) % 64;
        if (cut > n - off)
            cut = n - off;
        evbuffer_add(b, out + off, cut);
        off += cut;
        /* a stop leaves lines behind: take again until nothing moves, as the next read would */
        for (;;) {
            size_t before = evbuffer_get_length(b);
            mcpgw_lines_take(b, g.max, &discard, on_line, &g);
            if (evbuffer_get_length(b) == before)
                break;
        }
        if (evbuffer_get_length(b) > g.max)
            abort(); /* never buffers past the cap */
    }
    if (ref_next(&g, &want, &want_len))
        abort(); /* a line the reference has was never delivered */
    /* what is left is the unterminated tail, unless it outgrew the cap and was dropped */
    want = memrchr(out, '\n', n);
    tail = want ? n - (size_t)(want - out) - 1 : n;
    if (evbuffer_get_length(b) != (tail <= g.max && !discard ? tail : 0))
        abort();
    evbuffer_free(b);
    return 0;
}
