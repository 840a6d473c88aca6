/* upcred.c - OAuth client credentials for HTTP upstreams: the oauth-* keys, and one token source
 * per upstream that fetches, caches and refreshes its access token on the node's loop. */
#include "node/upcred.h"

#include "common/httpclient.h"
#include "common/jsonrpc.h"
#include "common/log.h"
#include "common/util.h"

#include <event2/event.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FETCH_TIMEOUT_MS 30000
#define BODY_MAX         (64u << 10)   /* a token response larger than this is refused */
#define TOKEN_MAX        8192          /* bytes of one access token */
#define FAIL_HOLD_MS     1000          /* after a failed fetch, callers get its error this long */
#define DEFAULT_TTL_S    3600          /* a token response without expires_in: until refused */
#define TTL_MAX_S        (366 * 86400) /* a longer expires_in counts as this */
#define MARGIN_MAX_S     30            /* refresh this long before expiry at most ... */
#define MARGIN_DIV       5             /* ... and at most a fifth of the lifetime */

struct mcpgw_upcred_wait {
    struct mcpgw_upcred *c;
    struct mcpgw_upcred_wait *next, **pprev;
    void (*done)(void *arg, const char *why);
    void *arg;
};

struct mcpgw_upcred {
    struct mcpgw_upcred *next; /* in the registry */
    int refs, busy, listed;
    struct event_base *base;
    struct mcpgw_hc *hc; /* created with the first fetch */
    char *name;
    struct mcpgw_upcred_cfg *cfg;
    char *header; /* "Authorization: Bearer ..." or NULL */
    unsigned gen;
    uint64_t use_until_ms; /* monotonic: the header is used until then */
    struct mcpgw_hc_req *req;
    char *body;
    size_t body_len;
    int body_over;
    char *why; /* the last failure */
    uint64_t failed_ms;
    struct mcpgw_upcred_wait *waiters;
    struct event *kick;
    unsigned long fetches;
};

/* The node runs one event loop; sources are shared per (loop, upstream name, settings). */
static struct mcpgw_upcred *registry;

/* ---- configuration ---- */

static int str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static int cfg_equal(const struct mcpgw_upcred_cfg *a, const struct mcpgw_upcred_cfg *b)
{
    return str_eq(a->token_url, b->token_url) && str_eq(a->client_id, b->client_id) &&
           str_eq(a->client_secret, b->client_secret) && str_eq(a->scope, b->scope) &&
           str_eq(a->resource, b->resource) && a->auth_post == b->auth_post;
}

static int http_url(const char *v)
{
    const char *h = strncmp(v, "https://", 8) == 0  ? v + 8
                    : strncmp(v, "http://", 7) == 0 ? v + 7
                                                    : NULL;
    if (!h || !*h || *h == '/' || *h == ':')
        return 0;
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return 0;
    return 1;
}

static int printable(const char *v, int spaces)
{
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p < ' ' || *p == 0x7f || (!spaces && *p == ' '))
            return 0;
    return 1;
}

int mcpgw_upcred_cfg_key(struct mcpgw_upcred_cfg **cfgp, const char *key, const char *value,
                         char *err, size_t errlen)
{
    static const char *const keys[] = {"oauth-token-url", "oauth-client-id", "oauth-client-secret",
                                       "oauth-scope",     "oauth-resource",  "oauth-client-auth"};
    struct mcpgw_upcred_cfg *cfg;
    char **slot = NULL;
    size_t k;
    for (k = 0; k < MCPGW_ARRAY_LEN(keys); k++)
        if (strcmp(key, keys[k]) == 0)
            break;
    if (k == MCPGW_ARRAY_LEN(keys))
        return 0;
    if (!*cfgp)
        *cfgp = xcalloc(1, sizeof(**cfgp));
    cfg = *cfgp;
    switch (k) {
    case 0:
    case 4:
        if (!http_url(value)) {
            snprintf(err, errlen, "%s '%.100s' is not an http:// or https:// URL with a host", key,
                     value);
            return -1;
        }
        slot = k == 0 ? &cfg->token_url : &cfg->resource;
        break;
    case 1:
    case 2:
        if (!*value || !printable(value, 0)) {
            /* Never the value: the secret may be in it. */
            snprintf(err, errlen,
                     "%s must be a non-empty word without spaces or control "
                     "characters",
                     key);
            return -1;
        }
        slot = k == 1 ? &cfg->client_id : &cfg->client_secret;
        break;
    case 3:
        if (!*value || !printable(value, 1)) {
            snprintf(err, errlen, "oauth-scope wants space-separated scope tokens");
            return -1;
        }
        slot = &cfg->scope;
        break;
    default:
        if (strcmp(value, "basic") != 0 && strcmp(value, "post") != 0) {
            snprintf(err, errlen, "oauth-client-auth '%.40s' is not basic or post", value);
            return -1;
        }
        cfg->auth_post = value[0] == 'p';
        return 1;
    }
    if (*slot) {
        snprintf(err, errlen, "%s= is given twice", key);
        return -1;
    }
    *slot = xstrdup(value);
    return 1;
}

int mcpgw_upcred_cfg_check(const struct mcpgw_upcred_cfg *cfg, char *err, size_t errlen)
{
    if (!cfg)
        return 0;
    if (!cfg->token_url || !cfg->client_id || !cfg->client_secret) {
        snprintf(err, errlen,
                 "OAuth client credentials want oauth-token-url, oauth-client-id and "
                 "oauth-client-secret together (missing: %s%s%s)",
                 cfg->token_url ? "" : "oauth-token-url ", cfg->client_id ? "" : "oauth-client-id ",
                 cfg->client_secret ? "" : "oauth-client-secret");
        return -1;
    }
    return 0;
}

struct mcpgw_upcred_cfg *mcpgw_upcred_cfg_dup(const struct mcpgw_upcred_cfg *cfg)
{
    struct mcpgw_upcred_cfg *d;
    if (!cfg)
        return NULL;
    d = xcalloc(1, sizeof(*d));
    d->token_url = cfg->token_url ? xstrdup(cfg->token_url) : NULL;
    d->client_id = cfg->client_id ? xstrdup(cfg->client_id) : NULL;
    d->client_secret = cfg->client_secret ? xstrdup(cfg->client_secret) : NULL;
    d->scope = cfg->scope ? xstrdup(cfg->scope) : NULL;
    d->resource = cfg->resource ? xstrdup(cfg->resource) : NULL;
    d->auth_post = cfg->auth_post;
    return d;
}

void mcpgw_upcred_cfg_free(struct mcpgw_upcred_cfg *cfg)
{
    if (!cfg)
        return;
    free(cfg->token_url);
    free(cfg->client_id);
    if (cfg->client_secret) {
        OPENSSL_cleanse(cfg->client_secret, strlen(cfg->client_secret));
        free(cfg->client_secret);
    }
    free(cfg->scope);
    free(cfg->resource);
    free(cfg);
}

/* ---- waiting ---- */

static int fresh(const struct mcpgw_upcred *c)
{
    return c->header && mcpgw_now_ms() < c->use_until_ms;
}

/* Every waiter gets the outcome: the ones there now, not those added by their callbacks. */
static void fire_all(struct mcpgw_upcred *c)
{
    struct mcpgw_upcred_wait *batch = c->waiters, *w;
    const char *why = fresh(c) ? NULL : c->why ? c->why : "no access token";
    char *why_copy = why ? xstrdup(why) : NULL; /* a callback may start a fetch that replaces it */
    c->waiters = NULL;
    if (batch)
        batch->pprev = &batch;
    while ((w = batch) != NULL) {
        batch = w->next;
        if (batch)
            batch->pprev = &batch;
        w->done(w->arg, why_copy);
        free(w);
    }
    free(why_copy);
}

static void really_free(struct mcpgw_upcred *c);

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    struct mcpgw_upcred *c = arg;
    (void)fd;
    (void)what;
    if (c->refs == 0) {
        really_free(c);
        return;
    }
    if (c->req)
        return; /* the fetch under way answers them all */
    c->busy++;
    fire_all(c);
    c->busy--;
    if (c->refs == 0)
        really_free(c);
}

/* ---- fetching ---- */

/* s, form-urlencoded (application/x-www-form-urlencoded, as RFC 6749 section 2.3.1 wants for the
 * Basic credentials too), appended at *p. */
static void put_enc(char **p, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            *(*p)++ = (char)ch;
        } else {
            *(*p)++ = '%';
            *(*p)++ = hex[ch >> 4];
            *(*p)++ = hex[ch & 15];
        }
    }
    **p = '\0';
}

static void put_param(char **p, const char *name, const char *value)
{
    size_t n = strlen(name);
    memcpy(*p, name, n);
    *p += n;
    put_enc(p, value);
}

static size_t enc_len(const char *s)
{
    return s ? strlen(s) * 3 : 0;
}

static char *form_body(const struct mcpgw_upcred_cfg *cfg, size_t *len)
{
    char *b = xmalloc(128 + enc_len(cfg->scope) + enc_len(cfg->resource) + enc_len(cfg->client_id) +
                      enc_len(cfg->client_secret));
    char *p = b;
    p += sprintf(p, "grant_type=client_credentials");
    if (cfg->scope)
        put_param(&p, "&scope=", cfg->scope);
    if (cfg->resource)
        put_param(&p, "&resource=", cfg->resource);
    if (cfg->auth_post) {
        put_param(&p, "&client_id=", cfg->client_id);
        put_param(&p, "&client_secret=", cfg->client_secret);
    }
    *len = (size_t)(p - b);
    return b;
}

/* "Authorization: Basic base64(enc(id):enc(secret))" (malloc'd). */
static char *basic_header(const struct mcpgw_upcred_cfg *cfg)
{
    size_t plain_cap = enc_len(cfg->client_id) + enc_len(cfg->client_secret) + 2;
    char *plain = xmalloc(plain_cap), *p = plain, *h;
    int n;
    put_enc(&p, cfg->client_id);
    *p++ = ':';
    put_enc(&p, cfg->client_secret);
    n = (int)(p - plain);
    h = xmalloc(22 + 4 * ((size_t)n / 3 + 1) + 1);
    memcpy(h, "Authorization: Basic ", 21);
    EVP_EncodeBlock((unsigned char *)h + 21, (const unsigned char *)plain, n);
    OPENSSL_cleanse(plain, plain_cap);
    free(plain);
    return h;
}

static void set_why(struct mcpgw_upcred *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_why(struct mcpgw_upcred *c, const char *fmt, ...)
{
    char buf[512], url[256];
    va_list ap;
    int n;
    mcpgw_url_redact(c->cfg->token_url, url, sizeof(url));
    n = snprintf(buf, sizeof(buf), "no access token from %s: ", url);
    va_start(ap, fmt);
    vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
    va_end(ap);
    free(c->why);
    c->why = xstrdup(buf);
    c->failed_ms = mcpgw_now_ms();
    log_warn("upstream %s: %s", c->name, buf);
}

static int token_ok(const char *t)
{
    size_t n = t ? strlen(t) : 0;
    if (n == 0 || n > TOKEN_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (t[i] <= ' ' || t[i] > '~')
            return 0;
    return 1;
}

/* A 200 answer: {"access_token", "token_type": "Bearer", "expires_in"}. */
static void take_token(struct mcpgw_upcred *c, json_object *o)
{
    json_object *v;
    const char *tok = mcpgw_json_str(o, "access_token"), *type = mcpgw_json_str(o, "token_type");
    int64_t ttl = DEFAULT_TTL_S, margin;
    char url[256];
    if (!token_ok(tok)) {
        set_why(c, "the answer holds no usable access_token");
        return;
    }
    if (!type || strcasecmp(type, "Bearer") != 0) {
        set_why(c, "token_type is '%.40s', not Bearer", type ? type : "(none)");
        return;
    }
    if (json_object_object_get_ex(o, "expires_in", &v)) {
        ttl = json_object_get_int64(v);
        if (ttl <= 0) {
            set_why(c, "expires_in is not a positive number of seconds");
            return;
        }
        if (ttl > TTL_MAX_S)
            ttl = TTL_MAX_S;
    }
    margin = ttl / MARGIN_DIV < MARGIN_MAX_S ? ttl / MARGIN_DIV : MARGIN_MAX_S;
    if (c->header) {
        OPENSSL_cleanse(c->header, strlen(c->header));
        free(c->header);
    }
    if (asprintf(&c->header, "Authorization: Bearer %s", tok) < 0)
        abort();
    if (++c->gen == 0)
        c->gen = 1;
    c->use_until_ms = mcpgw_now_ms() + (uint64_t)(ttl - margin) * 1000;
    free(c->why);
    c->why = NULL;
    mcpgw_url_redact(c->cfg->token_url, url, sizeof(url));
    log_info("upstream %s: got an access token from %s (expires in %lld s, used for %lld s)",
             c->name, url, (long long)ttl, (long long)(ttl - margin));
}

static void on_fetch_body(void *arg, struct mcpgw_hc_req *r, const char *buf, size_t len)
{
    struct mcpgw_upcred *c = arg;
    (void)r;
    if (c->body_len + len > BODY_MAX) {
        c->body_over = 1;
        return;
    }
    c->body = xrealloc(c->body, c->body_len + len + 1);
    memcpy(c->body + c->body_len, buf, len);
    c->body_len += len;
    c->body[c->body_len] = '\0';
}

static void on_fetch_done(void *arg, struct mcpgw_hc_req *r, enum mcpgw_hc_err err, const char *why)
{
    struct mcpgw_upcred *c = arg;
    long status = mcpgw_hc_req_status(r);
    json_object *o = NULL;
    c->req = NULL;
    if (err != MCPGW_HC_OK)
        set_why(c, "%s", why);
    else if (c->body_over)
        set_why(c, "the answer is over %u bytes", BODY_MAX);
    else if (!(o = c->body ? json_tokener_parse(c->body) : NULL) ||
             !json_object_is_type(o, json_type_object))
        set_why(c, "HTTP %ld with a body that is not a JSON object", status);
    else if (status != 200) {
        const char *e = mcpgw_json_str(o, "error"), *d = mcpgw_json_str(o, "error_description");
        set_why(c, "HTTP %ld, error %.60s%s%.200s", status, e ? e : "(none)", d ? ": " : "",
                d ? d : "");
    } else
        take_token(c, o);
    json_object_put(o);
    if (c->body)
        OPENSSL_cleanse(c->body, c->body_len);
    free(c->body);
    c->body = NULL;
    c->body_len = 0;
    c->busy++;
    fire_all(c);
    c->busy--;
    if (c->refs == 0)
        event_active(c->kick, 0, 0); /* freed off this callback, outside the HTTP client */
}

static void fetch(struct mcpgw_upcred *c)
{
    static const struct mcpgw_hc_cbs cbs = {NULL, on_fetch_body, on_fetch_done};
    const char *headers[4] = {"Content-Type: application/x-www-form-urlencoded",
                              "Accept: application/json", NULL, NULL};
    char *basic = c->cfg->auth_post ? NULL : basic_header(c->cfg), err[256];
    struct mcpgw_hc_opts o = {0};
    size_t len;
    char *body = form_body(c->cfg, &len);
    if (!c->hc)
        c->hc = mcpgw_hc_new(c->base);
    headers[2] = basic;
    o.method = "POST";
    o.url = c->cfg->token_url;
    o.headers = headers;
    o.body = body;
    o.body_len = len;
    o.timeout_ms = FETCH_TIMEOUT_MS;
    c->fetches++;
    c->body_over = 0;
    c->req = c->hc ? mcpgw_hc_start(c->hc, &o, &cbs, c, err, sizeof(err)) : NULL;
    if (!c->req) {
        set_why(c, "cannot start the request: %s", c->hc ? err : "no HTTP client");
        event_active(c->kick, 0, 0);
    }
    OPENSSL_cleanse(body, len);
    free(body);
    if (basic) {
        OPENSSL_cleanse(basic, strlen(basic));
        free(basic);
    }
}

/* ---- the source ---- */

struct mcpgw_upcred *mcpgw_upcred_acquire(struct event_base *base, const char *name,
                                          const struct mcpgw_upcred_cfg *cfg)
{
    struct mcpgw_upcred *c;
    for (c = registry; c; c = c->next)
        if (c->base == base && strcmp(c->name, name) == 0 && cfg_equal(c->cfg, cfg)) {
            c->refs++;
            return c;
        }
    c = xcalloc(1, sizeof(*c));
    c->refs = 1;
    c->base = base;
    c->name = xstrdup(name);
    c->cfg = mcpgw_upcred_cfg_dup(cfg);
    c->kick = event_new(base, -1, 0, on_kick, c);
    c->next = registry;
    c->listed = 1;
    registry = c;
    return c;
}

static void unlist(struct mcpgw_upcred *c)
{
    for (struct mcpgw_upcred **pp = &registry; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    c->listed = 0;
}

static void really_free(struct mcpgw_upcred *c)
{
    if (c->listed)
        unlist(c);
    while (c->waiters)
        mcpgw_upcred_wait_cancel(c->waiters);
    if (c->req)
        mcpgw_hc_req_cancel(c->req);
    if (c->hc)
        mcpgw_hc_free(c->hc);
    event_free(c->kick);
    if (c->header) {
        OPENSSL_cleanse(c->header, strlen(c->header));
        free(c->header);
    }
    free(c->body);
    free(c->why);
    free(c->name);
    mcpgw_upcred_cfg_free(c->cfg);
    free(c);
}

void mcpgw_upcred_release(struct mcpgw_upcred *c)
{
    if (!c || --c->refs > 0)
        return;
    unlist(c); /* a new acquire starts afresh */
    if (!c->busy)
        really_free(c);
}

const char *mcpgw_upcred_header(struct mcpgw_upcred *c, unsigned *gen)
{
    if (!fresh(c))
        return NULL;
    if (gen)
        *gen = c->gen;
    return c->header;
}

struct mcpgw_upcred_wait *mcpgw_upcred_refresh(struct mcpgw_upcred *c, unsigned stale_gen,
                                               void (*done)(void *arg, const char *why), void *arg)
{
    struct mcpgw_upcred_wait *w = xcalloc(1, sizeof(*w));
    w->c = c;
    w->done = done;
    w->arg = arg;
    w->next = c->waiters;
    if (w->next)
        w->next->pprev = &w->next;
    w->pprev = &c->waiters;
    c->waiters = w;
    if (c->req)
        return w; /* joins the fetch under way */
    if (fresh(c) && stale_gen == c->gen) {
        log_info("upstream %s: the upstream refused its access token: fetching a new one", c->name);
        c->use_until_ms = 0;
    }
    if (fresh(c) || (c->why && mcpgw_now_ms() - c->failed_ms < FAIL_HOLD_MS))
        event_active(c->kick, 0, 0);
    else
        fetch(c);
    return w;
}

void mcpgw_upcred_wait_cancel(struct mcpgw_upcred_wait *w)
{
    if (!w)
        return;
    *w->pprev = w->next;
    if (w->next)
        w->next->pprev = w->pprev;
    free(w);
}

unsigned long mcpgw_upcred_fetches(const struct mcpgw_upcred *c)
{
    return c->fetches;
}
