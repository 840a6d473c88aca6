/* sse.c - SSE event writer and incremental parser. */
#include "common/sse.h"

#include "common/util.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

void mcpgw_sse_format(struct evbuffer *out, const char *id, const char *event, long retry_ms,
                      const char *data, size_t len)
{
    if (id)
        evbuffer_add_printf(out, "id: %s\n", id);
    if (event)
        evbuffer_add_printf(out, "event: %s\n", event);
    if (retry_ms > 0)
        evbuffer_add_printf(out, "retry: %ld\n", retry_ms);
    if (data) {
        size_t i = 0;
        for (;;) {
            size_t j = i;
            while (j < len && data[j] != '\n' && data[j] != '\r')
                j++;
            evbuffer_add(out, "data: ", 6);
            evbuffer_add(out, data + i, j - i);
            evbuffer_add(out, "\n", 1);
            if (j >= len)
                break;
            if (data[j] == '\r' && j + 1 < len && data[j + 1] == '\n')
                j++;
            i = j + 1;
        }
    }
    evbuffer_add(out, "\n", 1);
}

struct mcpgw_sse_parser {
    size_t max_line;
    mcpgw_sse_event_fn cb;
    mcpgw_sse_comment_fn comment;
    void *arg;
    char *line;
    size_t line_len, line_cap;
    char *data;
    size_t data_len, data_cap;
    char *id, *event;
    int have_data, skip_lf;
};

struct mcpgw_sse_parser *mcpgw_sse_parser_new(size_t max_line, mcpgw_sse_event_fn cb, void *arg)
{
    struct mcpgw_sse_parser *p = xcalloc(1, sizeof(*p));
    p->max_line = max_line;
    p->cb = cb;
    p->arg = arg;
    return p;
}

void mcpgw_sse_parser_on_comment(struct mcpgw_sse_parser *p, mcpgw_sse_comment_fn cb)
{
    p->comment = cb;
}

void mcpgw_sse_parser_free(struct mcpgw_sse_parser *p)
{
    if (!p)
        return;
    free(p->line);
    free(p->data);
    free(p->id);
    free(p->event);
    free(p);
}

static void append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        *cap = (*len + n + 1) * 2;
        *buf = xrealloc(*buf, *cap);
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
}

static void on_line(struct mcpgw_sse_parser *p)
{
    char *l = p->line ? p->line : "";
    size_t n = p->line_len;
    const char *colon, *v;
    size_t fl, vl;

    if (n == 0) {
        if (p->have_data) {
            p->cb(p->arg, p->id, p->event, p->data ? p->data : "", p->data_len);
        }
        p->have_data = 0;
        p->data_len = 0;
        free(p->event);
        p->event = NULL;
        return;
    }
    if (l[0] == ':') {
        if (p->comment)
            p->comment(p->arg, l + 1 + (n > 1 && l[1] == ' '), n - 1 - (n > 1 && l[1] == ' '));
        return;
    }
    colon = memchr(l, ':', n);
    fl = colon ? (size_t)(colon - l) : n;
    v = colon ? colon + 1 : l + n;
    if (colon && *v == ' ')
        v++;
    vl = (size_t)(l + n - v);
    if (fl == 4 && memcmp(l, "data", 4) == 0) {
        if (p->have_data)
            append(&p->data, &p->data_len, &p->data_cap, "\n", 1);
        append(&p->data, &p->data_len, &p->data_cap, v, vl);
        p->have_data = 1;
    } else if (fl == 2 && memcmp(l, "id", 2) == 0) {
        free(p->id);
        p->id = xstrndup(v, vl); /* the id persists across events, per the SSE spec */
    } else if (fl == 5 && memcmp(l, "event", 5) == 0) {
        free(p->event);
        p->event = xstrndup(v, vl);
    }
}

int mcpgw_sse_parser_feed(struct mcpgw_sse_parser *p, const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (p->skip_lf) {
            p->skip_lf = 0;
            if (c == '\n')
                continue;
        }
        if (c == '\r' || c == '\n') {
            on_line(p);
            p->line_len = 0;
            p->skip_lf = c == '\r';
            continue;
        }
        if (p->line_len >= p->max_line)
            return -1;
        append(&p->line, &p->line_len, &p->line_cap, &c, 1);
    }
    return 0;
}
