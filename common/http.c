/* http.c - strict HTTP/1.1 head parser and chunked decoder (see http.h for the contract). */
#include "common/http.h"

#include "common/util.h"

#include <string.h>
#include <strings.h>

static const char *const method_names[MCPGW_HTTP_METHOD_COUNT] = {
    "GET", "POST", "DELETE", "HEAD", "PUT", "OPTIONS", "PATCH", "OTHER"};

const char *mcpgw_http_method_str(enum mcpgw_http_method m)
{
    return (unsigned)m < MCPGW_HTTP_METHOD_COUNT ? method_names[m] : "?";
}

size_t mcpgw_http_head_end(const char *buf, size_t len)
{
    const char *p = buf, *end = buf + len;
    while (p + 3 < end) {
        p = memchr(p, '\r', (size_t)(end - p - 3));
        if (!p)
            return 0;
        if (p[1] == '\n' && p[2] == '\r' && p[3] == '\n')
            return (size_t)(p + 4 - buf);
        p++;
    }
    return 0;
}

/* RFC 9110 token characters. */
static int is_tchar(unsigned char c)
{
    if (c >= 'a' && c <= 'z')
        return 1;
    if (c >= 'A' && c <= 'Z')
        return 1;
    if (c >= '0' && c <= '9')
        return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int parse_version(const char *p, size_t n, int *minor)
{
    if (n != 8 || memcmp(p, "HTTP/1.", 7) != 0)
        return -1;
    if (p[7] != '0' && p[7] != '1')
        return -1;
    *minor = p[7] - '0';
    return 0;
}

static enum mcpgw_http_method method_of(const char *m, size_t n)
{
    for (int i = 0; i < MCPGW_HTTP_OTHER; i++)
        if (strlen(method_names[i]) == n && memcmp(method_names[i], m, n) == 0)
            return (enum mcpgw_http_method)i;
    return MCPGW_HTTP_OTHER;
}

static int parse_start_line(const char *p, size_t n, int is_response, struct mcpgw_http_head *h,
                            const char **why)
{
    const char *sp1 = memchr(p, ' ', n), *sp2;
    if (!sp1) {
        *why = "malformed start line";
        return MCPGW_HTTP_BAD;
    }
    if (is_response) {
        if (parse_version(p, (size_t)(sp1 - p), &h->minor_version) < 0) {
            *why = "unsupported HTTP version";
            return MCPGW_HTTP_BAD_VERSION;
        }
        const char *s = sp1 + 1;
        if (p + n - s < 3 || s[0] < '1' || s[0] > '5' || s[1] < '0' || s[1] > '9' || s[2] < '0' ||
            s[2] > '9' || (p + n - s > 3 && s[3] != ' ')) {
            *why = "malformed status code";
            return MCPGW_HTTP_BAD;
        }
        h->status = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
        return MCPGW_HTTP_OK;
    }
    for (const char *q = p; q < sp1; q++)
        if (!is_tchar((unsigned char)*q)) {
            *why = "invalid method";
            return MCPGW_HTTP_BAD;
        }
    if (sp1 == p) {
        *why = "empty method";
        return MCPGW_HTTP_BAD;
    }
    sp2 = memchr(sp1 + 1, ' ', (size_t)(p + n - sp1 - 1));
    if (!sp2 || sp2 == sp1 + 1) {
        *why = "malformed request line";
        return MCPGW_HTTP_BAD;
    }
    for (const char *q = sp1 + 1; q < sp2; q++)
        if ((unsigned char)*q <= 0x20 || *q == 0x7f) {
            *why = "invalid character in request target";
            return MCPGW_HTTP_BAD;
        }
    if (parse_version(sp2 + 1, (size_t)(p + n - sp2 - 1), &h->minor_version) < 0) {
        *why = "unsupported HTTP version";
        return MCPGW_HTTP_BAD_VERSION;
    }
    h->method_str = p;
    h->method_len = (size_t)(sp1 - p);
    h->method = method_of(p, h->method_len);
    h->target = sp1 + 1;
    h->target_len = (size_t)(sp2 - sp1 - 1);
    return MCPGW_HTTP_OK;
}

static int parse_content_length(const char *v, size_t n, int64_t *out)
{
    int64_t x = 0;
    if (n == 0 || n > 18)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        x = x * 10 + (v[i] - '0');
    }
    *out = x;
    return 0;
}

/* Transfer-Encoding must be exactly "chunked" (we accept no other coding, and "chunked" must be
 * last and only once). */
static int parse_te(const char *v, size_t n)
{
    return mcpgw_strieq(v, n, "chunked") ? 0 : -1;
}

int mcpgw_http_parse_head(const char *buf, size_t len, int is_response, struct mcpgw_http_head *h,
                          const char **why)
{
    const char *dummy, *p = buf, *end = buf + len, *eol;
    int rc, saw_cl = 0, saw_te = 0, conn_close = 0, conn_keep = 0, conn_upgrade = 0,
            has_upgrade = 0;

    if (!why)
        why = &dummy;
    memset(h, 0, offsetof(struct mcpgw_http_head, headers));
    h->nheaders = 0;
    h->content_length = -1;
    h->chunked = h->keep_alive = h->upgrade = h->expect_continue = 0;
    h->head_len = len;
    if (len < 4 || memcmp(end - 4, "\r\n\r\n", 4) != 0) {
        *why = "incomplete head";
        return MCPGW_HTTP_INCOMPLETE;
    }
    /* Be lenient with one leading empty line (RFC 9112 2.2 allows ignoring it). */
    if (p[0] == '\r' && p[1] == '\n')
        p += 2;
    eol = memchr(p, '\r', (size_t)(end - p));
    if (!eol || eol[1] != '\n') {
        *why = "bare CR in start line";
        return MCPGW_HTTP_BAD;
    }
    if (memchr(p, '\n', (size_t)(eol - p)) || memchr(p, '\0', (size_t)(eol - p))) {
        *why = "bare LF or NUL in start line";
        return MCPGW_HTTP_BAD;
    }
    rc = parse_start_line(p, (size_t)(eol - p), is_response, h, why);
    if (rc != MCPGW_HTTP_OK)
        return rc;
    p = eol + 2;
    while (p < end - 2) {
        const char *colon, *v, *ve;
        struct mcpgw_http_header *hd;

        if (*p == ' ' || *p == '\t') {
            *why = "obsolete line folding";
            return MCPGW_HTTP_BAD;
        }
        eol = memchr(p, '\r', (size_t)(end - p));
        if (!eol || eol[1] != '\n') {
            *why = "bare CR in header";
            return MCPGW_HTTP_BAD;
        }
        if (memchr(p, '\n', (size_t)(eol - p)) || memchr(p, '\0', (size_t)(eol - p))) {
            *why = "bare LF or NUL in header";
            return MCPGW_HTTP_BAD;
        }
        colon = memchr(p, ':', (size_t)(eol - p));
        if (!colon || colon == p) {
            *why = "header line without a name";
            return MCPGW_HTTP_BAD;
        }
        for (const char *q = p; q < colon; q++)
            if (!is_tchar((unsigned char)*q)) {
                *why = "invalid character in header name";
                return MCPGW_HTTP_BAD;
            }
        if (colon - p > 1024) {
            *why = "header name too long";
            return MCPGW_HTTP_BAD;
        }
        v = colon + 1;
        ve = eol;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        for (const char *q = v; q < ve; q++)
            if ((unsigned char)*q < 0x20 && *q != '\t') {
                *why = "control character in header value";
                return MCPGW_HTTP_BAD;
            }
        if (h->nheaders == MCPGW_HTTP_MAX_HEADERS) {
            *why = "too many header fields";
            return MCPGW_HTTP_TOO_MANY;
        }
        hd = &h->headers[h->nheaders++];
        hd->name = p;
        hd->name_len = (unsigned short)(colon - p);
        hd->value = v;
        hd->value_len = (unsigned int)(ve - v);

        if (mcpgw_strieq(hd->name, hd->name_len, "content-length")) {
            int64_t cl;
            if (saw_cl) {
                *why = "duplicate Content-Length";
                return MCPGW_HTTP_BAD;
            }
            if (parse_content_length(v, hd->value_len, &cl) < 0) {
                *why = "invalid Content-Length";
                return MCPGW_HTTP_BAD;
            }
            saw_cl = 1;
            h->content_length = cl;
        } else if (mcpgw_strieq(hd->name, hd->name_len, "transfer-encoding")) {
            if (saw_te) {
                *why = "duplicate Transfer-Encoding";
                return MCPGW_HTTP_BAD;
            }
            saw_te = 1;
            if (parse_te(v, hd->value_len) < 0) {
                *why = "unsupported Transfer-Encoding";
                return MCPGW_HTTP_UNSUPPORTED;
            }
            h->chunked = 1;
        } else if (mcpgw_strieq(hd->name, hd->name_len, "connection")) {
            conn_close |= mcpgw_http_list_has(v, hd->value_len, "close");
            conn_keep |= mcpgw_http_list_has(v, hd->value_len, "keep-alive");
            conn_upgrade |= mcpgw_http_list_has(v, hd->value_len, "upgrade");
        } else if (mcpgw_strieq(hd->name, hd->name_len, "upgrade")) {
            has_upgrade = 1;
        } else if (mcpgw_strieq(hd->name, hd->name_len, "expect")) {
            h->expect_continue = mcpgw_strieq(v, hd->value_len, "100-continue");
        }
        p = eol + 2;
    }
    if (saw_cl && saw_te) {
        *why = "both Content-Length and Transfer-Encoding";
        return MCPGW_HTTP_BAD;
    }
    if (saw_te && h->minor_version == 0) {
        *why = "Transfer-Encoding in HTTP/1.0";
        return MCPGW_HTTP_BAD;
    }
    h->keep_alive = h->minor_version == 1 ? !conn_close : (conn_keep && !conn_close);
    h->upgrade = conn_upgrade && has_upgrade;
    return MCPGW_HTTP_OK;
}

const struct mcpgw_http_header *mcpgw_http_find(const struct mcpgw_http_head *h, const char *name)
{
    for (int i = 0; i < h->nheaders; i++)
        if (mcpgw_strieq(h->headers[i].name, h->headers[i].name_len, name))
            return &h->headers[i];
    return NULL;
}

int mcpgw_http_list_has(const char *v, size_t n, const char *token)
{
    const char *p = v, *end = v + n;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p)), *e, *semi;
        if (!comma)
            comma = end;
        semi = memchr(p, ';', (size_t)(comma - p));
        e = semi ? semi : comma;
        while (p < e && (*p == ' ' || *p == '\t'))
            p++;
        while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (mcpgw_strieq(p, (size_t)(e - p), token))
            return 1;
        p = comma + 1;
    }
    return 0;
}

int mcpgw_http_is_hop_by_hop(const char *name, size_t len)
{
    static const char *const hop[] = {"connection",         "keep-alive", "proxy-connection",
                                      "proxy-authenticate", "te",         "trailer",
                                      "transfer-encoding",  "upgrade",    "proxy-authorization"};
    for (size_t i = 0; i < MCPGW_ARRAY_LEN(hop); i++)
        if (mcpgw_strieq(name, len, hop[i]))
            return 1;
    return 0;
}

const char *mcpgw_http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 421:
        return "Misdirected Request";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

enum {
    CH_SIZE,
    CH_EXT,
    CH_SIZE_LF,
    CH_DATA,
    CH_DATA_CR,
    CH_DATA_LF,
    CH_TRAILER,
    CH_TRAILER_LF,
    CH_END_LF,
    CH_SIZE_WS
};

/* Bytes allowed inside a chunk extension or a trailer line: no controls but HTAB. */
static int line_byte_ok(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

#define CH_MAX_LINE 4096

int mcpgw_chunked_between(const struct mcpgw_chunked *d)
{
    return !d->done && d->state == CH_SIZE && d->line_len == 0;
}

ssize_t mcpgw_chunked_feed(struct mcpgw_chunked *d, const char *p, size_t n,
                           mcpgw_chunk_data_fn on_data, void *arg)
{
    size_t i = 0;
    while (i < n && !d->done) {
        unsigned char c = (unsigned char)p[i];
        switch (d->state) {
        case CH_SIZE: {
            int v;
            if (c >= '0' && c <= '9')
                v = c - '0';
            else if (c >= 'a' && c <= 'f')
                v = c - 'a' + 10;
            else if (c >= 'A' && c <= 'F')
                v = c - 'A' + 10;
            else if (d->line_len > 0 && c == ';') {
                d->state = CH_EXT;
                i++;
                continue;
            } else if (d->line_len > 0 && (c == ' ' || c == '\t')) {
                /* Only whitespace, ';' or the line end may follow: "5 6" is not a size. */
                d->state = CH_SIZE_WS;
                i++;
                continue;
            } else if (d->line_len > 0 && c == '\r') {
                d->state = CH_SIZE_LF;
                i++;
                continue;
            } else
                return -1;
            if (d->remaining >> 56)
                return -1; /* would overflow 64 bits */
            d->remaining = d->remaining << 4 | (uint64_t)v;
            if (++d->line_len > 16)
                return -1;
            i++;
            break;
        }
        case CH_SIZE_WS:
            if (c == ';')
                d->state = CH_EXT;
            else if (c == '\r')
                d->state = CH_SIZE_LF;
            else if ((c != ' ' && c != '\t') || ++d->line_len > CH_MAX_LINE)
                return -1;
            i++;
            break;
        case CH_EXT:
            if (c == '\r')
                d->state = CH_SIZE_LF;
            else if (!line_byte_ok(c) || ++d->line_len > CH_MAX_LINE)
                return -1;
            i++;
            break;
        case CH_SIZE_LF:
            if (c != '\n')
                return -1;
            i++;
            d->line_len = 0;
            d->state = d->remaining ? CH_DATA : CH_TRAILER;
            break;
        case CH_DATA: {
            size_t take = n - i;
            if (take > d->remaining)
                take = (size_t)d->remaining;
            if (on_data)
                on_data(arg, p + i, take);
            d->remaining -= take;
            i += take;
            if (!d->remaining)
                d->state = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
            if (c != '\r')
                return -1;
            d->state = CH_DATA_LF;
            i++;
            break;
        case CH_DATA_LF:
            if (c != '\n')
                return -1;
            d->state = CH_SIZE;
            d->line_len = 0;
            i++;
            break;
        case CH_TRAILER:
            /* An empty line ends the message; anything else is a trailer field we skip. */
            if (c == '\r') {
                d->state = d->line_len == 0 ? CH_END_LF : CH_TRAILER_LF;
            } else if (!line_byte_ok(c) || ++d->line_len > CH_MAX_LINE) {
                return -1;
            }
            i++;
            break;
        case CH_TRAILER_LF:
            if (c != '\n')
                return -1;
            d->line_len = 0;
            d->state = CH_TRAILER;
            i++;
            break;
        case CH_END_LF:
            if (c != '\n')
                return -1;
            d->done = 1;
            i++;
            break;
        default:
            return -1;
        }
    }
    return (ssize_t)i;
}
