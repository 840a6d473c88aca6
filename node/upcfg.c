/* upcfg.c - the `upstream` lines of the node's config file: parsing, checks, comparison. */
#include "node/upcfg.h"

#include "common/util.h"
#include "node/upstdio.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *mcpgw_upcfg_kind_str(enum mcpgw_upcfg_kind k)
{
    static const char *const s[] = {"http", "stdio"};
    return k < MCPGW_UPCFG_KIND_COUNT ? s[k] : "?";
}

const char *mcpgw_upcfg_session_str(enum mcpgw_upcfg_session v)
{
    static const char *const s[] = {"default", "shared", "per-client"};
    return v < MCPGW_UPCFG_SESSION_COUNT ? s[v] : "?";
}

const char *mcpgw_upcfg_protocol_str(enum mcpgw_upcfg_protocol p)
{
    static const char *const s[] = {"session", "2026-07-28", "auto"};
    return p < MCPGW_UPCFG_PROTOCOL_COUNT ? s[p] : "?";
}

static void strv_free(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

static size_t strv_len(char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

static char **strv_add(char **v, const char *s, size_t len)
{
    size_t n = strv_len(v);
    v = xrealloc(v, (n + 2) * sizeof(*v));
    v[n] = xstrndup(s, len);
    v[n + 1] = NULL;
    return v;
}

static char **strv_dup(char *const *v)
{
    char **out = NULL;
    for (size_t i = 0; v && v[i]; i++)
        out = strv_add(out, v[i], strlen(v[i]));
    return out;
}

/* Comma-separated items onto v (empty items skipped). */
static char **strv_add_csv(char **v, const char *csv)
{
    for (const char *p = csv; *p;) {
        size_t n = strcspn(p, ",");
        if (n)
            v = strv_add(v, p, n);
        p += n + (p[n] == ',');
    }
    return v;
}

void mcpgw_upcfg_free(struct mcpgw_upcfg *u)
{
    if (!u)
        return;
    free(u->name);
    free(u->url);
    free(u->cmd);
    mcpgw_upstdio_argv_free(u->argv);
    free(u->prefix);
    strv_free(u->headers);
    strv_free(u->tools);
    strv_free(u->exclude);
    mcpgw_upcred_cfg_free(u->oauth);
    free(u->line);
    free(u);
}

void mcpgw_upcfg_set_free(struct mcpgw_upcfg_set *set)
{
    if (!set)
        return;
    for (int i = 0; i < set->n; i++)
        mcpgw_upcfg_free(set->v[i]);
    free(set->v);
    free(set);
}

struct mcpgw_upcfg *mcpgw_upcfg_dup(const struct mcpgw_upcfg *u)
{
    struct mcpgw_upcfg *d = xcalloc(1, sizeof(*d));
    *d = *u;
    d->name = xstrdup(u->name);
    d->url = u->url ? xstrdup(u->url) : NULL;
    d->cmd = u->cmd ? xstrdup(u->cmd) : NULL;
    d->argv = strv_dup(u->argv);
    d->prefix = xstrdup(u->prefix);
    d->headers = strv_dup(u->headers);
    d->tools = strv_dup(u->tools);
    d->exclude = strv_dup(u->exclude);
    d->oauth = mcpgw_upcred_cfg_dup(u->oauth);
    d->line = xstrdup(u->line);
    return d;
}

struct mcpgw_upcfg *mcpgw_upcfg_find(const struct mcpgw_upcfg_set *set, const char *name)
{
    for (int i = 0; set && i < set->n; i++)
        if (strcmp(set->v[i]->name, name) == 0)
            return set->v[i];
    return NULL;
}

int mcpgw_upcfg_equal(const struct mcpgw_upcfg *a, const struct mcpgw_upcfg *b)
{
    return strcmp(a->line, b->line) == 0;
}

static int name_ok(const char *s, size_t max, int extra_dot)
{
    size_t n = strlen(s);
    if (n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-' ||
              (extra_dot && s[i] == '.')))
            return 0;
    return 1;
}

/* http(s)://host... with a host and nothing that cannot be in a URL. */
static int url_ok(const char *url)
{
    const char *h;
    if (strncmp(url, "http://", 7) == 0)
        h = url + 7;
    else if (strncmp(url, "https://", 8) == 0)
        h = url + 8;
    else
        return 0;
    if (!*h || *h == '/' || *h == ':' || *h == '?')
        return 0;
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return 0;
    return 1;
}

static int header_ok(const char *h)
{
    const char *colon = strchr(h, ':');
    if (!colon || colon == h)
        return 0;
    for (const char *p = h; p < colon; p++)
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
            return 0;
    return strpbrk(h, "\r\n") == NULL;
}

/* One key=value word into u. Returns 0 or -1 (err). seen: bit per non-repeatable key. */
static int set_key(struct mcpgw_upcfg *u, const char *word, unsigned *seen, char *err,
                   size_t errlen)
{
    static const char *const keys[] = {"prefix",  "header",  "tools",        "exclude",
                                       "timeout", "session", "max-inflight", "max-procs",
                                       "h2c",     "protocol"};
    const char *eq = strchr(word, '=');
    const char *v;
    size_t klen, k;
    uint64_t num;
    if (!eq) {
        snprintf(err, errlen,
                 "upstream %s: '%.60s' is not key=value (keys: prefix, header, tools, exclude, "
                 "timeout, session, max-inflight, max-procs, h2c, protocol)",
                 u->name, word);
        return -1;
    }
    klen = (size_t)(eq - word);
    v = eq + 1;
    for (k = 0; k < MCPGW_ARRAY_LEN(keys); k++)
        if (strlen(keys[k]) == klen && strncmp(word, keys[k], klen) == 0)
            break;
    if (k == MCPGW_ARRAY_LEN(keys)) {
        char key[32], why[200];
        int r = 0;
        if (klen < sizeof(key)) {
            memcpy(key, word, klen);
            key[klen] = '\0';
            r = mcpgw_upcred_cfg_key(&u->oauth, key, v, why, sizeof(why));
            if (r == 0)
                r = mcpgw_breaker_cfg_key(&u->breaker, key, v, why, sizeof(why));
        }
        if (r == 1)
            return 0;
        if (r < 0) {
            snprintf(err, errlen, "upstream %s: %s", u->name, why);
            return -1;
        }
        snprintf(err, errlen,
                 "upstream %s: unknown key '%.*s' (keys: prefix, header, tools, exclude, timeout, "
                 "session, max-inflight, max-procs, h2c, protocol, breaker-window, breaker-min, "
                 "breaker-errors, breaker-open, breaker-probes, oauth-token-url, oauth-client-id, "
                 "oauth-client-secret, oauth-scope, oauth-resource, oauth-client-auth)",
                 u->name, (int)(klen > 60 ? 60 : klen), word);
        return -1;
    }
    if (k != 1) { /* header= repeats; every other key is given once */
        if (*seen & (1u << k)) {
            snprintf(err, errlen, "upstream %s: %s= is given twice", u->name, keys[k]);
            return -1;
        }
        *seen |= 1u << k;
    }
    switch (k) {
    case 0:
        if (!name_ok(v, 64, 1) || strstr(v, MCPGW_UPCFG_SEP)) {
            snprintf(err, errlen,
                     "upstream %s: prefix '%.60s' must be at most 64 characters of "
                     "[A-Za-z0-9_.-] without '" MCPGW_UPCFG_SEP "' (or empty to pass names "
                     "through)",
                     u->name, v);
            return -1;
        }
        free(u->prefix);
        u->prefix = xstrdup(v);
        return 0;
    case 1:
        if (!header_ok(v)) {
            /* Only the header's name: its value may be a secret. */
            snprintf(err, errlen,
                     "upstream %s: header= wants \"Name: value\" (a token before ':', no line "
                     "breaks)",
                     u->name);
            return -1;
        }
        if (u->kind != MCPGW_UPCFG_HTTP) {
            snprintf(err, errlen, "upstream %s: header= applies to http upstreams only", u->name);
            return -1;
        }
        u->headers = strv_add(u->headers, v, strlen(v));
        return 0;
    case 2:
    case 3:
        if (!*v) {
            snprintf(err, errlen, "upstream %s: %s= wants one or more comma-separated globs",
                     u->name, keys[k]);
            return -1;
        }
        if (k == 2)
            u->tools = strv_add_csv(u->tools, v);
        else
            u->exclude = strv_add_csv(u->exclude, v);
        return 0;
    case 4:
        if (mcpgw_parse_duration_ms(v, &num) < 0 || num == 0) {
            snprintf(err, errlen,
                     "upstream %s: timeout '%.60s' is not a duration above zero (500ms, 30s, 2m)",
                     u->name, v);
            return -1;
        }
        u->timeout_ms = num;
        return 0;
    case 5:
        if (strcmp(v, "shared") == 0)
            u->session = MCPGW_UPCFG_SESSION_SHARED;
        else if (strcmp(v, "per-client") == 0)
            u->session = MCPGW_UPCFG_SESSION_PER_CLIENT;
        else {
            snprintf(err, errlen, "upstream %s: session '%.60s' is not shared or per-client",
                     u->name, v);
            return -1;
        }
        return 0;
    case 6:
    case 7: {
        char *e;
        unsigned long long x = strtoull(v, &e, 10);
        if (!*v || *e || *v == '-' || x == 0 || x > 1000000) {
            snprintf(err, errlen, "upstream %s: %s '%.60s' is not a number from 1 to 1000000",
                     u->name, keys[k], v);
            return -1;
        }
        if (k == 6)
            u->max_inflight = (uint32_t)x;
        else
            u->max_procs = (uint32_t)x;
        return 0;
    }
    case 8:
        if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0) {
            snprintf(err, errlen, "upstream %s: h2c wants 0 or 1", u->name);
            return -1;
        }
        u->h2c = v[0] == '1';
        return 0;
    default:
        for (int e = 0; e < MCPGW_UPCFG_PROTOCOL_COUNT; e++)
            if (strcmp(v, mcpgw_upcfg_protocol_str((enum mcpgw_upcfg_protocol)e)) == 0) {
                u->protocol = (enum mcpgw_upcfg_protocol)e;
                return 0;
            }
        snprintf(err, errlen, "upstream %s: protocol '%.60s' is not session, 2026-07-28 or auto",
                 u->name, v);
        return -1;
    }
}

/* oauth-* keys: complete, on an http upstream, and not next to a static Authorization header
 * (the token would be sent with another credential). */
static int oauth_check(const struct mcpgw_upcfg *u, char *err, size_t errlen)
{
    char why[300];
    if (u->kind != MCPGW_UPCFG_HTTP) {
        snprintf(err, errlen, "upstream %s: oauth-* keys apply to http upstreams only", u->name);
        return -1;
    }
    if (mcpgw_upcred_cfg_check(u->oauth, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "upstream %s: %s", u->name, why);
        return -1;
    }
    for (size_t i = 0; u->headers && u->headers[i]; i++)
        if (strncasecmp(u->headers[i], "authorization:", 14) == 0) {
            snprintf(err, errlen,
                     "upstream %s: header=\"Authorization: ...\" and oauth-* keys exclude each "
                     "other (the access token goes in Authorization)",
                     u->name);
            return -1;
        }
    return 0;
}

/* The line's words joined with NUL-free separators: what a reload compares. */
static char *join_words(int nwords, char **words)
{
    size_t len = 1;
    char *s, *p;
    for (int i = 0; i < nwords; i++)
        len += strlen(words[i]) + 1;
    p = s = xmalloc(len);
    for (int i = 0; i < nwords; i++) {
        size_t n = strlen(words[i]);
        memcpy(p, words[i], n);
        p += n;
        *p++ = '\x1f';
    }
    *p = 0;
    return s;
}

static struct mcpgw_upcfg *parse_line(int nwords, char **words, char *err, size_t errlen)
{
    struct mcpgw_upcfg *u;
    unsigned seen = 0;
    if (nwords < 3) {
        snprintf(err, errlen,
                 "upstream wants NAME http URL [key=value...] or NAME stdio \"COMMAND\" "
                 "[key=value...]");
        return NULL;
    }
    if (!*words[0] || !name_ok(words[0], 64, 0)) {
        snprintf(err, errlen, "upstream name '%.60s' must be 1-64 characters of [A-Za-z0-9_-]",
                 words[0]);
        return NULL;
    }
    u = xcalloc(1, sizeof(*u));
    u->name = xstrdup(words[0]);
    if (strcmp(words[1], "http") == 0) {
        u->kind = MCPGW_UPCFG_HTTP;
        if (!url_ok(words[2])) {
            snprintf(err, errlen,
                     "upstream %s: '%.100s' is not an http:// or https:// URL with a host", u->name,
                     words[2]);
            goto bad;
        }
        u->url = xstrdup(words[2]);
    } else if (strcmp(words[1], "stdio") == 0) {
        char e[200];
        u->kind = MCPGW_UPCFG_STDIO;
        u->cmd = xstrdup(words[2]);
        if (!(u->argv = mcpgw_upstdio_split(words[2], e, sizeof(e)))) {
            snprintf(err, errlen, "upstream %s: bad command line: %s", u->name, e);
            goto bad;
        }
    } else {
        snprintf(err, errlen, "upstream %s: unknown kind '%.60s' (http or stdio)", u->name,
                 words[1]);
        goto bad;
    }
    for (int i = 3; i < nwords; i++)
        if (set_key(u, words[i], &seen, err, errlen) < 0)
            goto bad;
    if (!u->prefix)
        u->prefix = xstrdup(u->name);
    if (u->protocol != MCPGW_UPCFG_PROTOCOL_SESSION && u->kind != MCPGW_UPCFG_HTTP) {
        snprintf(err, errlen,
                 "upstream %s: protocol= applies to http upstreams only (stdio children speak "
                 "the session era)",
                 u->name);
        goto bad;
    }
    if (u->h2c && (u->kind != MCPGW_UPCFG_HTTP || strncmp(u->url, "http://", 7) != 0)) {
        snprintf(err, errlen, "upstream %s: h2c=1 applies to http:// URLs only", u->name);
        goto bad;
    }
    if (u->oauth && oauth_check(u, err, errlen) < 0)
        goto bad;
    u->line = join_words(nwords, words);
    return u;
bad:
    mcpgw_upcfg_free(u);
    return NULL;
}

int mcpgw_upcfg_parse(struct mcpgw_upcfg_set **setp, int nwords, char **words, int first, char *err,
                      size_t errlen)
{
    struct mcpgw_upcfg *u;
    struct mcpgw_upcfg_set *set;
    if (first && *setp) {
        mcpgw_upcfg_set_free(*setp);
        *setp = NULL;
    }
    if (!(u = parse_line(nwords, words, err, errlen)))
        return -1;
    if (!*setp)
        *setp = xcalloc(1, sizeof(**setp));
    set = *setp;
    for (int i = 0; i < set->n; i++) {
        if (strcmp(set->v[i]->name, u->name) == 0) {
            snprintf(err, errlen, "upstream %s is declared twice", u->name);
            goto bad;
        }
        if (strcmp(set->v[i]->prefix, u->prefix) == 0) {
            if (u->prefix[0])
                snprintf(err, errlen,
                         "upstream %s: prefix '%s' is already the prefix of upstream %s", u->name,
                         u->prefix, set->v[i]->name);
            else
                snprintf(err, errlen,
                         "upstream %s: an empty prefix is already taken by upstream %s (only "
                         "one upstream may pass its names through)",
                         u->name, set->v[i]->name);
            goto bad;
        }
    }
    set->v = xrealloc(set->v, (size_t)(set->n + 1) * sizeof(*set->v));
    set->v[set->n++] = u;
    return 0;
bad:
    mcpgw_upcfg_free(u);
    return -1;
}

int mcpgw_upcfg_tool_allowed(const struct mcpgw_upcfg *u, const char *tool)
{
    int in = !u->tools;
    for (size_t i = 0; u->tools && u->tools[i] && !in; i++)
        in = fnmatch(u->tools[i], tool, 0) == 0;
    for (size_t i = 0; in && u->exclude && u->exclude[i]; i++)
        if (fnmatch(u->exclude[i], tool, 0) == 0)
            in = 0;
    return in;
}

char *mcpgw_upcfg_expose(const struct mcpgw_upcfg *u, const char *name)
{
    size_t pl = strlen(u->prefix), nl = strlen(name), sl = strlen(MCPGW_UPCFG_SEP);
    char *s;
    if (!pl)
        return xstrdup(name);
    s = xmalloc(pl + sl + nl + 1);
    memcpy(s, u->prefix, pl);
    memcpy(s + pl, MCPGW_UPCFG_SEP, sl);
    memcpy(s + pl + sl, name, nl + 1);
    return s;
}

const char *mcpgw_upcfg_unexpose(const struct mcpgw_upcfg *u, const char *exposed)
{
    size_t pl = strlen(u->prefix), sl = strlen(MCPGW_UPCFG_SEP);
    if (!pl)
        return exposed;
    if (strncmp(exposed, u->prefix, pl) != 0 || strncmp(exposed + pl, MCPGW_UPCFG_SEP, sl) != 0)
        return NULL;
    return exposed + pl + sl;
}
