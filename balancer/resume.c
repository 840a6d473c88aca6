/* resume.c - the request head and last event id of a held SSE stream (see resume.h). */
#include "balancer/resume.h"

#include "common/util.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HEAD_MAX (64 * 1024)

/* Scanner states, after the WHATWG event-stream grammar: only the "id" field matters here, so
 * every other line is skipped to its end. */
enum {
    S_BOL,      /* at the start of a line */
    S_I,        /* "i" */
    S_ID,       /* "id" */
    S_ID_SPACE, /* "id:": one leading space is not part of the value */
    S_ID_VALUE, /* in the value */
    S_SKIP,     /* in a line that is not an id field */
    S_CR        /* after a CR: a LF must follow (the node never ends lines with a lone CR) */
};

struct mcpgw_bal_resume {
    uint32_t headlen; /* of the head; the body follows it up to len */
    uint32_t len;
    uint8_t state;
    uint8_t after_cr; /* the state a CR interrupted (where the line it ends belongs) */
    uint8_t idlen;    /* of id: the last whole event's, or the last one set before it */
    uint8_t pendlen;  /* of pend: the event being received set this id */
    uint8_t has_id : 1, has_pend : 1, in_event : 1, broken : 1;
    char id[MCPGW_BAL_RESUME_ID_MAX + 1];
    char pend[MCPGW_BAL_RESUME_ID_MAX + 1];
    char head[];
};

struct mcpgw_bal_resume *mcpgw_bal_resume_new(const char *head, size_t len)
{
    struct mcpgw_bal_resume *r;
    size_t hl = 0;
    if (len > HEAD_MAX || len < 4)
        return NULL;
    for (size_t i = 3; i < len && !hl; i++)
        if (head[i] == '\n' && head[i - 1] == '\r' && head[i - 2] == '\n' && head[i - 3] == '\r')
            hl = i + 1;
    if (!hl)
        return NULL;
    r = xcalloc(1, sizeof(*r) + len);
    memcpy(r->head, head, len);
    r->headlen = (uint32_t)hl;
    r->len = (uint32_t)len;
    return r;
}

void mcpgw_bal_resume_free(struct mcpgw_bal_resume *r)
{
    free(r);
}

/* A line ended: a blank one dispatches the event, and its id (if it set one) becomes the
 * stream's last event id, as a client's EventSource would record it. */
static void line_end(struct mcpgw_bal_resume *r, uint8_t in)
{
    if (in == S_BOL) {
        if (r->has_pend) {
            memcpy(r->id, r->pend, r->pendlen);
            r->idlen = r->pendlen;
            r->id[r->idlen] = '\0';
            r->has_id = r->idlen > 0; /* an empty id resets it: nothing to resume from */
            r->has_pend = 0;
        }
        r->in_event = 0;
        return;
    }
    if (in == S_ID || in == S_ID_SPACE || in == S_ID_VALUE) {
        r->has_pend = 1;
        if (in != S_ID_VALUE)
            r->pendlen = 0;
    }
    r->in_event = 1;
}

void mcpgw_bal_resume_feed(struct mcpgw_bal_resume *r, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        char c = p[i];
        if (r->state == S_CR) {
            r->state = S_BOL;
            if (c != '\n')
                r->broken = 1; /* a lone CR ends a line too; we do not follow that far */
            else
                i++;
            continue;
        }
        if (c == '\n' || c == '\r') {
            uint8_t in = r->state;
            line_end(r, in);
            r->state = c == '\r' ? S_CR : S_BOL;
            i++;
            continue;
        }
        switch (r->state) {
        case S_BOL:
            r->in_event = 1;
            r->state = c == 'i' ? S_I : S_SKIP;
            i++;
            break;
        case S_I:
            r->state = c == 'd' ? S_ID : S_SKIP;
            i++;
            break;
        case S_ID:
            if (c == ':') {
                r->state = S_ID_SPACE;
                r->pendlen = 0;
            } else {
                r->state = S_SKIP;
            }
            i++;
            break;
        case S_ID_SPACE:
            r->state = S_ID_VALUE;
            r->pendlen = 0;
            if (c == ' ') {
                i++;
                break;
            }
            /* fall through */
        case S_ID_VALUE:
            if (c == '\0' || r->pendlen >= MCPGW_BAL_RESUME_ID_MAX)
                r->broken = 1; /* an id we would have to cut or that clients ignore */
            else
                r->pend[r->pendlen++] = c;
            i++;
            break;
        default: { /* S_SKIP: to the end of the line (a CR before its LF ends it too) */
            const char *nl = memchr(p + i, '\n', n - i);
            size_t end = nl ? (size_t)(nl - p) : n;
            const char *cr = memchr(p + i, '\r', end - i);
            i = cr ? (size_t)(cr - p) : end;
            break;
        }
        }
    }
}

int mcpgw_bal_resume_ready(const struct mcpgw_bal_resume *r)
{
    return r->state == S_BOL && !r->in_event && !r->broken && r->has_id;
}

const char *mcpgw_bal_resume_last_id(const struct mcpgw_bal_resume *r)
{
    return r->id;
}

void mcpgw_bal_resume_seam(struct mcpgw_bal_resume *r)
{
    r->state = S_BOL;
    r->in_event = 0;
    r->has_pend = 0;
}

void mcpgw_bal_resume_head(const struct mcpgw_bal_resume *r, struct evbuffer *out)
{
    const char *p = r->head, *end = r->head + r->headlen - 2; /* before the blank line */
    const char *line = memchr(p, '\n', (size_t)(end - p));
    if (!line)
        return;
    line++;
    evbuffer_add(out, p, (size_t)(line - p)); /* the request line */
    while (line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        const char *next = nl ? nl + 1 : end;
        if (!((size_t)(next - line) > 14 && strncasecmp(line, "last-event-id:", 14) == 0))
            evbuffer_add(out, line, (size_t)(next - line));
        line = next;
    }
    evbuffer_add_printf(out, "Last-Event-ID: %s\r\n\r\n", r->id);
    evbuffer_add(out, r->head + r->headlen, r->len - r->headlen);
}
