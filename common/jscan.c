/* jscan.c - strict, non-allocating JSON validation with top-level member spans (see jscan.h). */
#include "common/jscan.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const err_names[MCPGW_JSCAN_E_COUNT] = {
    "ok", "syntax", "string", "utf8", "number", "range", "depth", "key", "dup", "not_object"};

const char *mcpgw_jscan_err_str(enum mcpgw_jscan_err e)
{
    return (unsigned)e < MCPGW_JSCAN_E_COUNT ? err_names[e] : "?";
}

struct scan {
    const unsigned char *p, *end, *start;
    struct mcpgw_jscan_top *t; /* NULL: validate only */
};

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static void skip_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

size_t mcpgw_jscan_utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0], lo = 0x80, hi = 0xBF;
    size_t n;
    if (c < 0x80)
        return 1;
    if (c < 0xC2)
        return 0; /* 80..C1 never lead */
    if (c < 0xE0) {
        n = 2;
    } else if (c < 0xF0) {
        n = 3;
        lo = c == 0xE0 ? 0xA0 : lo; /* overlong */
        hi = c == 0xED ? 0x9F : hi; /* a surrogate */
    } else if (c < 0xF5) {
        n = 4;
        lo = c == 0xF0 ? 0x90 : lo; /* overlong */
        hi = c == 0xF4 ? 0x8F : hi; /* over U+10FFFF */
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

long mcpgw_jscan_hex4(const unsigned char *p, const unsigned char *end)
{
    long v = 0;
    if (end - p < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        unsigned char c = p[i];
        int d;
        if (is_digit(c))
            d = c - '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            d = (c | 0x20) - 'a' + 10;
        else
            return -1;
        v = v * 16 + d;
    }
    return v;
}

#define ONES  0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Whether all eight bytes of w are plain string bytes: 0x20..0x7F but '"' and '\\' (the same
 * test as common/jsonrpc.c's: most of an answer is ASCII text inside strings). */
static int plain8(uint64_t w)
{
    uint64_t q = w ^ (ONES * '"'), b = w ^ (ONES * '\\');
    return ((w | ((w - ONES * 0x20) & ~w) | ((q - ONES) & ~q) | ((b - ONES) & ~b)) & HIGHS) == 0;
}

/* s->p is at the opening quote; on success it is past the closing one. */
static enum mcpgw_jscan_err scan_string(struct scan *s, int key)
{
    const unsigned char *p = s->p + 1, *end = s->end;
    for (;;) {
        uint64_t w;
        unsigned char c;
        while (end - p >= 8 && (memcpy(&w, p, 8), plain8(w)))
            p += 8;
        if (p == end)
            goto syntax;
        c = *p;
        if (c == '"') {
            s->p = p + 1;
            return MCPGW_JSCAN_OK;
        }
        if (c < 0x20) {
            s->p = p;
            return MCPGW_JSCAN_E_STRING;
        }
        if (c >= 0x80) {
            size_t n = mcpgw_jscan_utf8_len(p, end);
            if (!n) {
                s->p = p;
                return MCPGW_JSCAN_E_UTF8;
            }
            p += n;
            continue;
        }
        if (c != '\\') {
            p++;
            continue;
        }
        if (end - p < 2)
            goto syntax;
        switch (p[1]) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
            p += 2;
            break;
        case 'u': {
            long u = mcpgw_jscan_hex4(p + 2, end);
            if (u < 0 || (u >= 0xDC00 && u <= 0xDFFF)) {
                s->p = p;
                return MCPGW_JSCAN_E_STRING; /* not hex, or a low surrogate alone */
            }
            if (u >= 0xD800 && u <= 0xDBFF) {
                long lo = end - p >= 12 && p[6] == '\\' && p[7] == 'u'
                              ? mcpgw_jscan_hex4(p + 8, end)
                              : -1;
                if (lo < 0xDC00 || lo > 0xDFFF) {
                    s->p = p;
                    return MCPGW_JSCAN_E_STRING; /* a high surrogate without its low half */
                }
                p += 6;
            } else if (u == 0 && key) {
                s->p = p;
                return MCPGW_JSCAN_E_KEY;
            }
            p += 6;
            break;
        }
        default:
            s->p = p;
            return MCPGW_JSCAN_E_STRING;
        }
    }
syntax:
    s->p = p;
    return MCPGW_JSCAN_E_SYNTAX;
}

int mcpgw_jscan_int_fits(const unsigned char *b, const unsigned char *e)
{
    int neg = *b == '-';
    const char *lim = neg ? "9223372036854775808" : "18446744073709551615";
    size_t n = (size_t)(e - b) - (size_t)neg, ln = strlen(lim);
    return n < ln || (n == ln && memcmp(b + neg, lim, n) <= 0);
}

const unsigned char *mcpgw_jscan_number(const unsigned char *p, const unsigned char *end,
                                        int *integer)
{
    *integer = 1;
    if (p < end && *p == '-')
        p++;
    if (p == end || !is_digit(*p))
        return NULL;
    if (*p++ != '0')
        while (p < end && is_digit(*p))
            p++;
    if (p < end && *p == '.') {
        *integer = 0;
        if (++p == end || !is_digit(*p))
            return NULL;
        while (p < end && is_digit(*p))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        *integer = 0;
        if (++p < end && (*p == '+' || *p == '-'))
            p++;
        if (p == end || !is_digit(*p))
            return NULL;
        while (p < end && is_digit(*p))
            p++;
    }
    /* "01", "1.2.3", "1e5e5": the number runs on */
    if (p < end && (is_digit(*p) || *p == '.' || *p == 'e' || *p == 'E' || *p == '+' || *p == '-'))
        return NULL;
    return p;
}

/* s->p is at '-' or a digit. */
static enum mcpgw_jscan_err scan_number(struct scan *s)
{
    const unsigned char *b = s->p, *p = s->p, *end = s->end;
    int integer;
    if (!(p = mcpgw_jscan_number(p, end, &integer)))
        goto bad;
    if (integer) {
        if (!mcpgw_jscan_int_fits(b, p)) {
            s->p = b;
            return MCPGW_JSCAN_E_RANGE;
        }
    } else {
        /* json-c reads it with strtod and refuses what is not finite (jsonrpc.c): so do we. */
        char tmp[64];
        size_t n = (size_t)(p - b);
        if (n >= sizeof(tmp)) {
            s->p = b;
            return MCPGW_JSCAN_E_RANGE;
        }
        memcpy(tmp, b, n);
        tmp[n] = 0;
        if (!isfinite(strtod(tmp, NULL))) {
            s->p = b;
            return MCPGW_JSCAN_E_RANGE;
        }
    }
    s->p = p;
    return MCPGW_JSCAN_OK;
bad:
    s->p = b;
    return MCPGW_JSCAN_E_NUMBER;
}

static enum mcpgw_jscan_err scan_literal(struct scan *s)
{
    static const char *const lits[] = {"true", "false", "null"};
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(lits[i]);
        if ((size_t)(s->end - s->p) >= n && memcmp(s->p, lits[i], n) == 0) {
            s->p += n;
            return MCPGW_JSCAN_OK;
        }
    }
    return MCPGW_JSCAN_E_SYNTAX;
}

/* Records a top-level key (depth 1 of an object at the top). */
static enum mcpgw_jscan_err top_key(struct scan *s, const unsigned char *k, size_t klen)
{
    struct mcpgw_jscan_top *t = s->t;
    struct mcpgw_jscan_member *m;
    if (t->n == MCPGW_JSCAN_MAX_MEMBERS) {
        t->more = 1;
        return MCPGW_JSCAN_OK;
    }
    for (size_t i = 0; i < t->n; i++)
        if (t->m[i].key_len == klen && memcmp(t->m[i].key, k, klen) == 0)
            return MCPGW_JSCAN_E_DUP;
    m = &t->m[t->n++];
    m->key = (const char *)k;
    m->key_len = klen;
    m->val = NULL;
    m->val_len = 0;
    return MCPGW_JSCAN_OK;
}

/* The whole text: one value with a stack of open containers (bit i set: level i+1 is an
 * object). A value that ends back at depth 1 is a top-level member's: its span is recorded. */
static enum mcpgw_jscan_err scan(struct scan *s)
{
    uint64_t objs = 0;
    int depth = 0;
    const unsigned char *vstart = NULL;
    enum mcpgw_jscan_err e;
    skip_ws(s);
value:
    if (s->p == s->end)
        return MCPGW_JSCAN_E_SYNTAX;
    if (depth == 1 && s->t && (objs & 1) && s->t->n && !s->t->more)
        vstart = s->p;
    switch (*s->p) {
    case '{':
    case '[':
        if (depth == MCPGW_JSCAN_MAX_DEPTH)
            return MCPGW_JSCAN_E_DEPTH;
        if (*s->p == '{')
            objs |= 1ULL << depth;
        else
            objs &= ~(1ULL << depth);
        depth++;
        s->p++;
        skip_ws(s);
        if (s->p < s->end && (*s->p == '}' || *s->p == ']')) {
            if ((*s->p == '}') != !!(objs & (1ULL << (depth - 1))))
                return MCPGW_JSCAN_E_SYNTAX;
            s->p++;
            depth--;
            goto after;
        }
        if (objs & (1ULL << (depth - 1)))
            goto key;
        goto value;
    case '"':
        if ((e = scan_string(s, 0)))
            return e;
        goto after;
    case 't':
    case 'f':
    case 'n':
        if ((e = scan_literal(s)))
            return e;
        goto after;
    default:
        if (*s->p == '-' || is_digit(*s->p)) {
            if ((e = scan_number(s)))
                return e;
            goto after;
        }
        return MCPGW_JSCAN_E_SYNTAX;
    }
key:
    if (s->p == s->end || *s->p != '"')
        return MCPGW_JSCAN_E_SYNTAX;
    {
        const unsigned char *k = s->p + 1;
        if ((e = scan_string(s, 1)))
            return e;
        if (depth == 1 && s->t && (e = top_key(s, k, (size_t)(s->p - 1 - k))))
            return e;
    }
    skip_ws(s);
    if (s->p == s->end || *s->p != ':')
        return MCPGW_JSCAN_E_SYNTAX;
    s->p++;
    skip_ws(s);
    goto value;
after:
    if (depth == 1 && vstart) {
        struct mcpgw_jscan_member *m = &s->t->m[s->t->n - 1];
        m->val = (const char *)vstart;
        m->val_len = (size_t)(s->p - vstart);
        vstart = NULL;
    }
    skip_ws(s);
    if (depth == 0)
        return s->p == s->end ? MCPGW_JSCAN_OK : MCPGW_JSCAN_E_SYNTAX;
    if (s->p == s->end)
        return MCPGW_JSCAN_E_SYNTAX;
    if (*s->p == ',') {
        s->p++;
        skip_ws(s);
        if (objs & (1ULL << (depth - 1)))
            goto key;
        goto value;
    }
    if ((*s->p == '}' && (objs & (1ULL << (depth - 1)))) ||
        (*s->p == ']' && !(objs & (1ULL << (depth - 1))))) {
        s->p++;
        depth--;
        goto after;
    }
    return MCPGW_JSCAN_E_SYNTAX;
}

enum mcpgw_jscan_err mcpgw_jscan_value(const char *buf, size_t len, size_t *err_off)
{
    struct scan s = {(const unsigned char *)buf, (const unsigned char *)buf + len,
                     (const unsigned char *)buf, NULL};
    enum mcpgw_jscan_err e = scan(&s);
    if (err_off)
        *err_off = e ? (size_t)(s.p - s.start) : 0;
    return e;
}

enum mcpgw_jscan_err mcpgw_jscan_object(const char *buf, size_t len, struct mcpgw_jscan_top *t)
{
    struct scan s = {(const unsigned char *)buf, (const unsigned char *)buf + len,
                     (const unsigned char *)buf, t};
    enum mcpgw_jscan_err e;
    t->n = 0;
    t->more = 0;
    t->err_off = 0;
    skip_ws(&s);
    if (s.p == s.end || *s.p != '{') {
        /* Valid JSON of another kind, or not JSON at all: say which. */
        e = scan(&s);
        t->err_off = (size_t)(s.p - s.start);
        return e ? e : MCPGW_JSCAN_E_NOT_OBJECT;
    }
    e = scan(&s);
    if (e)
        t->err_off = (size_t)(s.p - s.start);
    return e;
}

const struct mcpgw_jscan_member *mcpgw_jscan_get(const struct mcpgw_jscan_top *t, const char *key)
{
    size_t n = strlen(key);
    for (size_t i = 0; i < t->n; i++)
        if (t->m[i].key_len == n && memcmp(t->m[i].key, key, n) == 0)
            return &t->m[i];
    return NULL;
}
