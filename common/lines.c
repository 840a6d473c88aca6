/* lines.c - newline-delimited framing; see lines.h. */
#include "common/lines.h"

unsigned mcpgw_lines_take(struct evbuffer *b, size_t max, int *discard, mcpgw_lines_fn fn,
                          void *arg)
{
    unsigned dropped = 0;
    for (;;) {
        size_t eol_len = 0, have = evbuffer_get_length(b);
        struct evbuffer_ptr eol = evbuffer_search_eol(b, NULL, &eol_len, EVBUFFER_EOL_LF);
        int stop;
        if (eol.pos < 0) {
            /* No newline yet: a partial line over the cap can never become a valid one, so
             * it is dropped now rather than buffered up to an unbounded size; so is the rest
             * of a line already being dropped. */
            if (have > max || (*discard && have)) {
                dropped += !*discard;
                *discard = 1;
                evbuffer_drain(b, have);
            }
            return dropped;
        }
        if (*discard || (size_t)eol.pos > max) {
            dropped += !*discard;
            *discard = 0;
            evbuffer_drain(b, (size_t)eol.pos + 1);
            continue;
        }
        stop = fn(arg, (const char *)evbuffer_pullup(b, eol.pos + 1), (size_t)eol.pos);
        evbuffer_drain(b, (size_t)eol.pos + 1);
        if (stop)
            return dropped;
    }
}
