/* rewrite.c - request and response heads for the other side of the proxy (see rewrite.h). */
#include "balancer/rewrite.h"

#include "common/util.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Whether a comma-separated value lists the (ptr,len) token, case-insensitively. */
static int list_has_n(const char *v, size_t n, const char *tok, size_t tlen)
{
    const char *p = v, *end = v + n;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p)), *e;
        if (!comma)
            comma = end;
        e = comma;
        while (p < e && (*p == ' ' || *p == '\t'))
            p++;
        while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if ((size_t)(e - p) == tlen && strncasecmp(p, tok, tlen) == 0)
            return 1;
        p = comma + 1;
    }
    return 0;
}

/* Whether header i must not cross the proxy: hop-by-hop by name, or named by a Connection.
 * Content-Length and Host always cross: "Connection: Content-Length" would otherwise make us
 * relay a body the next hop no longer knows the length of (request smuggling). */
static int is_hop(const struct mcpgw_http_head *h, const struct mcpgw_http_header *hd)
{
    if (mcpgw_http_is_hop_by_hop(hd->name, hd->name_len))
        return 1;
    if (mcpgw_strieq(hd->name, hd->name_len, "content-length") ||
        mcpgw_strieq(hd->name, hd->name_len, "host"))
        return 0;
    for (int i = 0; i < h->nheaders; i++) {
        const struct mcpgw_http_header *c = &h->headers[i];
        if (mcpgw_strieq(c->name, c->name_len, "connection") &&
            list_has_n(c->value, c->value_len, hd->name, hd->name_len))
            return 1;
    }
    return 0;
}

static void add_header(struct evbuffer *out, const struct mcpgw_http_header *hd)
{
    evbuffer_add(out, hd->name, hd->name_len);
    evbuffer_add(out, ": ", 2);
    evbuffer_add(out, hd->value, hd->value_len);
    evbuffer_add(out, "\r\n", 2);
}

#define ADD_LIT(out, s) evbuffer_add((out), (s), sizeof(s) - 1)

/* Emit "Name: v1, v2, ..., last" merging every earlier header of that name. */
static void add_merged(struct evbuffer *out, const struct mcpgw_http_head *h, const char *name,
                       const char *last)
{
    evbuffer_add(out, name, strlen(name));
    ADD_LIT(out, ": ");
    for (int i = 0; i < h->nheaders; i++) {
        const struct mcpgw_http_header *hd = &h->headers[i];
        if (!mcpgw_strieq(hd->name, hd->name_len, name) || hd->value_len == 0)
            continue;
        evbuffer_add(out, hd->value, hd->value_len);
        ADD_LIT(out, ", ");
    }
    evbuffer_add(out, last, strlen(last));
    ADD_LIT(out, "\r\n");
}

void mcpgw_bal_rewrite_request(const struct mcpgw_http_head *h, const struct mcpgw_bal_peer *peer,
                               struct evbuffer *out)
{
    char fwd[96];
    const struct mcpgw_http_header *up = NULL;

    evbuffer_add(out, h->method_str, h->method_len);
    ADD_LIT(out, " ");
    evbuffer_add(out, h->target, h->target_len);
    ADD_LIT(out, " HTTP/1.1\r\n");
    for (int i = 0; i < h->nheaders; i++) {
        const struct mcpgw_http_header *hd = &h->headers[i];
        if (mcpgw_strieq(hd->name, hd->name_len, "upgrade"))
            up = up ? up : hd;
        if (is_hop(h, hd) || mcpgw_strieq(hd->name, hd->name_len, "x-forwarded-for") ||
            mcpgw_strieq(hd->name, hd->name_len, "forwarded") ||
            mcpgw_strieq(hd->name, hd->name_len, "x-forwarded-proto") ||
            mcpgw_strieq(hd->name, hd->name_len, MCPGW_BAL_SECRET_HEADER))
            continue;
        add_header(out, hd);
    }
    if (peer->secret) {
        ADD_LIT(out, MCPGW_BAL_SECRET_HEADER ": ");
        evbuffer_add(out, peer->secret, strlen(peer->secret));
        ADD_LIT(out, "\r\n");
    }
    if (h->chunked)
        ADD_LIT(out, "Transfer-Encoding: chunked\r\n");
    if (h->upgrade && up) {
        ADD_LIT(out, "Connection: Upgrade\r\n");
        add_header(out, up);
    }
    add_merged(out, h, "X-Forwarded-For", peer->ip);
    snprintf(fwd, sizeof(fwd), peer->ipv6 ? "for=\"[%s]\";proto=%s" : "for=%s;proto=%s", peer->ip,
             peer->tls ? "https" : "http");
    add_merged(out, h, "Forwarded", fwd);
    if (peer->tls)
        ADD_LIT(out, "X-Forwarded-Proto: https\r\n\r\n");
    else
        ADD_LIT(out, "X-Forwarded-Proto: http\r\n\r\n");
}

void mcpgw_bal_rewrite_response(const struct mcpgw_http_head *h, const char *head, unsigned flags,
                                struct evbuffer *out)
{
    const char *p = head, *eol, *sp;
    const struct mcpgw_http_header *up = NULL;

    if (p[0] == '\r' && p[1] == '\n')
        p += 2;
    /* The parser accepted this head, so the status line ends in CRLF and has a space. */
    eol = memchr(p, '\r', h->head_len - (size_t)(p - head));
    sp = memchr(p, ' ', (size_t)(eol - p));
    ADD_LIT(out, "HTTP/1.1 ");
    evbuffer_add(out, sp + 1, (size_t)(eol - sp + 1)); /* "200 OK\r\n" */
    for (int i = 0; i < h->nheaders; i++) {
        const struct mcpgw_http_header *hd = &h->headers[i];
        if (mcpgw_strieq(hd->name, hd->name_len, "upgrade"))
            up = up ? up : hd;
        if (is_hop(h, hd))
            continue;
        add_header(out, hd);
    }
    if (h->chunked && !(flags & MCPGW_BAL_RESP_DECHUNK))
        ADD_LIT(out, "Transfer-Encoding: chunked\r\n");
    if (h->status == 101 && up) {
        ADD_LIT(out, "Connection: Upgrade\r\n");
        add_header(out, up);
    } else if (flags & MCPGW_BAL_RESP_CLOSE) {
        ADD_LIT(out, "Connection: close\r\n");
    } else if (flags & MCPGW_BAL_RESP_KEEPALIVE10) {
        ADD_LIT(out, "Connection: keep-alive\r\n");
    }
    ADD_LIT(out, "\r\n");
}
