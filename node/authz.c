/* authz.c - authorization rules: parsing, checks and evaluation (see authz.h). */
#include "node/authz.h"

#include "common/b64.h"
#include "common/util.h"
#include "node/upcfg.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VALUES 64 /* comma-separated values in one key */
#define MAX_CONDS  16 /* scope= and claim= keys in one rule */

/* A comma-separated list of values: any one of them satisfies (or matches). */
struct vals {
    char **v;
    int n;
};

struct cond {
    char *claim; /* NULL for scope= */
    struct vals any;
};

struct rule {
    int allow;
    char *text;     /* the line as written, for messages */
    int kind;       /* an enum mcpgw_authz_kind, or -1: every kind */
    struct vals up; /* upstream= globs (n == 0: any upstream) */
    struct vals nm; /* tool= / prompt= / resource= globs (n == 0: any name) */
    struct cond *conds;
    int nconds;
};

struct mcpgw_authz {
    struct rule *r;
    int n;
    int default_allow;
    char **claims; /* the claim names the rules use, each once */
    int nclaims;
    unsigned long long id;
};

static unsigned long long next_id;

unsigned long long mcpgw_authz_id(const struct mcpgw_authz *set)
{
    return set ? set->id : 0;
}

static const char *const kind_names[MCPGW_AUTHZ_KIND_COUNT] = {"tool", "prompt", "resource"};

const char *mcpgw_authz_kind_str(enum mcpgw_authz_kind k)
{
    return (unsigned)k < MCPGW_AUTHZ_KIND_COUNT ? kind_names[k] : "?";
}

static void vals_free(struct vals *v)
{
    for (int i = 0; i < v->n; i++)
        free(v->v[i]);
    free(v->v);
    v->v = NULL;
    v->n = 0;
}

static void rule_free(struct rule *r)
{
    free(r->text);
    vals_free(&r->up);
    vals_free(&r->nm);
    for (int i = 0; i < r->nconds; i++) {
        free(r->conds[i].claim);
        vals_free(&r->conds[i].any);
    }
    free(r->conds);
}

void mcpgw_authz_free(struct mcpgw_authz *set)
{
    if (!set)
        return;
    for (int i = 0; i < set->n; i++)
        rule_free(&set->r[i]);
    free(set->r);
    for (int i = 0; i < set->nclaims; i++)
        free(set->claims[i]);
    free(set->claims);
    free(set);
}

int mcpgw_authz_active(const struct mcpgw_authz *set)
{
    return set && set->n > 0;
}

/* Split "a,b,c" into v. Every value must be non-empty, free of blanks and quotes. Returns 0, or
 * -1 with err. */
static int split(const char *key, const char *s, struct vals *v, char *err, size_t errlen)
{
    const char *p = s;
    if (!*s) {
        snprintf(err, errlen, "%s= needs a value", key);
        return -1;
    }
    for (;;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0 || len > 512 || memchr(p, ' ', len) || memchr(p, '"', len) ||
            memchr(p, '\t', len) || memchr(p, '\\', len)) {
            snprintf(err, errlen,
                     "%s=: '%.80s' is not a list of values (comma-separated, none "
                     "empty, no blanks)",
                     key, s);
            return -1;
        }
        if (v->n >= MAX_VALUES) {
            snprintf(err, errlen, "%s=: at most %d values", key, MAX_VALUES);
            return -1;
        }
        v->v = xrealloc(v->v, (size_t)(v->n + 1) * sizeof(*v->v));
        v->v[v->n++] = xstrndup(p, len);
        if (!e)
            return 0;
        p = e + 1;
    }
}

/* Remember a claim name the rules use (each once). */
static void note_claim(struct mcpgw_authz *set, const char *name)
{
    for (int i = 0; i < set->nclaims; i++)
        if (strcmp(set->claims[i], name) == 0)
            return;
    set->claims = xrealloc(set->claims, (size_t)(set->nclaims + 1) * sizeof(*set->claims));
    set->claims[set->nclaims++] = xstrdup(name);
}

/* claim=NAME:VALUES, or claim=NAME=VALUES: split at the first '=' when there is one (a claim
 * name that is a URI has colons; so may a value with '='), else at the first ':'. */
static int parse_claim(struct cond *c, const char *s, char *err, size_t errlen)
{
    const char *sep = strchr(s, '=');
    if (!sep)
        sep = strchr(s, ':');
    if (!sep || sep == s) {
        snprintf(err, errlen,
                 "claim=: '%.80s' is not NAME:VALUE (or NAME=VALUE when the name has a colon)", s);
        return -1;
    }
    c->claim = xstrndup(s, (size_t)(sep - s));
    if (strpbrk(c->claim, " \t\n")) {
        snprintf(err, errlen, "claim=: the claim name '%.80s' has a blank", c->claim);
        return -1;
    }
    return split("claim", sep + 1, &c->any, err, errlen);
}

/* One key=value word of a rule into r. */
static int parse_word(struct mcpgw_authz *set, struct rule *r, const char *w, char *err,
                      size_t errlen)
{
    static const char *const sel[MCPGW_AUTHZ_KIND_COUNT] = {"tool=", "prompt=", "resource="};
    if (strncmp(w, "upstream=", 9) == 0) {
        if (r->up.n) {
            snprintf(err, errlen, "upstream= is given twice (list the values: upstream=a,b)");
            return -1;
        }
        return split("upstream", w + 9, &r->up, err, errlen);
    }
    for (int k = 0; k < MCPGW_AUTHZ_KIND_COUNT; k++) {
        size_t kl = strlen(sel[k]);
        if (strncmp(w, sel[k], kl) != 0)
            continue;
        if (r->kind >= 0) {
            snprintf(err, errlen,
                     "a rule names one kind: tool=, prompt= or resource=, once (list the "
                     "values: %sa,b)",
                     sel[k]);
            return -1;
        }
        r->kind = k;
        return split(kind_names[k], w + kl, &r->nm, err, errlen);
    }
    if (strncmp(w, "scope=", 6) == 0 || strncmp(w, "claim=", 6) == 0) {
        struct cond *c;
        if (r->nconds >= MAX_CONDS) {
            snprintf(err, errlen, "at most %d scope= and claim= keys in one rule", MAX_CONDS);
            return -1;
        }
        r->conds = xrealloc(r->conds, (size_t)(r->nconds + 1) * sizeof(*r->conds));
        c = &r->conds[r->nconds++];
        memset(c, 0, sizeof(*c));
        if (w[0] == 's')
            return split("scope", w + 6, &c->any, err, errlen);
        if (parse_claim(c, w + 6, err, errlen) < 0)
            return -1;
        note_claim(set, c->claim);
        return 0;
    }
    snprintf(err, errlen,
             "'%.80s' is not a rule key (upstream=, tool=, prompt=, resource=, scope=, claim=)", w);
    return -1;
}

static struct mcpgw_authz *set_of(struct mcpgw_authz **setp)
{
    if (!*setp) {
        *setp = xcalloc(1, sizeof(**setp));
        (*setp)->id = ++next_id;
    }
    return *setp;
}

/* Drop the rules of one kind (allow or deny) read before: a new source starts afresh. */
static void drop_kind(struct mcpgw_authz *set, int allow)
{
    int k = 0;
    for (int i = 0; i < set->n; i++) {
        if (set->r[i].allow == allow)
            rule_free(&set->r[i]);
        else
            set->r[k++] = set->r[i];
    }
    set->n = k;
}

int mcpgw_authz_parse(struct mcpgw_authz **setp, int allow, int nwords, char **words, int first,
                      char *err, size_t errlen)
{
    struct mcpgw_authz *set = set_of(setp);
    struct rule r = {.allow = allow, .kind = -1};
    size_t tl = 0;
    if (first)
        drop_kind(set, allow);
    if (nwords < 1) {
        snprintf(err, errlen,
                 "%s needs at least one key: upstream=, tool=, prompt=, resource=, scope=, "
                 "claim=",
                 allow ? "allow" : "deny");
        return -1;
    }
    for (int i = 0; i < nwords; i++)
        tl += strlen(words[i]) + 1;
    r.text = xmalloc(tl + 8);
    snprintf(r.text, tl + 8, "%s", allow ? "allow" : "deny");
    for (int i = 0; i < nwords; i++) {
        strcat(r.text, " ");
        strcat(r.text, words[i]);
        if (parse_word(set, &r, words[i], err, errlen) < 0) {
            rule_free(&r);
            return -1;
        }
    }
    set->r = xrealloc(set->r, (size_t)(set->n + 1) * sizeof(*set->r));
    set->r[set->n++] = r;
    return 0;
}

int mcpgw_authz_parse_default(struct mcpgw_authz **setp, const char *word, char *err, size_t errlen)
{
    if (strcmp(word, "allow") != 0 && strcmp(word, "deny") != 0) {
        snprintf(err, errlen, "authz-default '%.60s' is not allow or deny", word);
        return -1;
    }
    set_of(setp)->default_allow = word[0] == 'a';
    return 0;
}

int mcpgw_authz_validate(const struct mcpgw_authz *set, const struct mcpgw_upcfg_set *ups,
                         char *err, size_t errlen)
{
    int nups = ups ? ups->n : 0;
    if (!mcpgw_authz_active(set))
        return 0;
    for (int i = 0; i < nups; i++)
        if (strcmp(ups->v[i]->name, MCPGW_AUTHZ_BUILTIN) == 0) {
            snprintf(err, errlen,
                     "upstream '%s': authorization rules use that name for the built-in tools; "
                     "rename the upstream",
                     MCPGW_AUTHZ_BUILTIN);
            return -1;
        }
    for (int i = 0; i < set->n; i++) {
        const struct rule *r = &set->r[i];
        for (int j = 0; j < r->up.n; j++) {
            const char *u = r->up.v[j];
            int found = strcmp(u, MCPGW_AUTHZ_BUILTIN) == 0 || strpbrk(u, "*?[");
            for (int k = 0; k < nups && !found; k++)
                found = strcmp(ups->v[k]->name, u) == 0;
            if (!found) {
                snprintf(err, errlen,
                         "rule '%.200s': no upstream is called '%.64s' (the built-ins are "
                         "'%s')",
                         r->text, u, MCPGW_AUTHZ_BUILTIN);
                return -1;
            }
        }
    }
    return 0;
}

/* ---- evaluation ---- */

static int any_glob(const struct vals *v, const char *s)
{
    for (int i = 0; i < v->n; i++)
        if (fnmatch(v->v[i], s, 0) == 0)
            return 1;
    return 0;
}

static int names(const struct rule *r, const struct mcpgw_authz_item *it)
{
    if (r->kind >= 0 && r->kind != (int)it->kind)
        return 0;
    if (r->up.n && !any_glob(&r->up, it->upstream))
        return 0;
    return !r->nm.n || any_glob(&r->nm, it->name);
}

/* Is word one of the space-separated words of list? */
static int has_word(const char *list, const char *word)
{
    size_t wl = strlen(word);
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ' ');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == wl && memcmp(p, word, wl) == 0)
            return 1;
        if (!e)
            break;
        p = e + 1;
    }
    return 0;
}

/* Does claims (name\tvalue\n lines) have a line name\tvalue? */
static int has_claim(const char *claims, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    for (const char *p = claims; p && *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == nl + 1 + vl && memcmp(p, name, nl) == 0 && p[nl] == '\t' &&
            memcmp(p + nl + 1, value, vl) == 0)
            return 1;
        if (!e)
            break;
        p = e + 1;
    }
    return 0;
}

static int cond_holds(const struct cond *c, const struct mcpgw_authz_grant *g)
{
    for (int i = 0; i < c->any.n; i++)
        if (c->claim ? has_claim(g->claims, c->claim, c->any.v[i])
                     : has_word(g->scopes, c->any.v[i]))
            return 1;
    return 0;
}

/* Append scope to need unless it is there already. */
static void need_add(char *need, size_t needlen, const char *scope)
{
    size_t k;
    if (!need || has_word(need, scope))
        return;
    k = strlen(need);
    if (k + 1 + strlen(scope) + 1 > needlen)
        return; /* the header has the scopes that fit; the client still learns it must step up */
    snprintf(need + k, needlen - k, "%s%s", k ? " " : "", scope);
}

enum mcpgw_authz_verdict mcpgw_authz_check(const struct mcpgw_authz *set,
                                           const struct mcpgw_authz_item *item,
                                           const struct mcpgw_authz_grant *g, char *need,
                                           size_t needlen)
{
    int named = 0, hard = 0, step = 0;
    if (need && needlen)
        need[0] = '\0';
    if (!mcpgw_authz_active(set))
        return MCPGW_AUTHZ_ALLOW;
    for (int i = 0; i < set->n; i++) {
        const struct rule *r = &set->r[i];
        int held = 1, claims_held = 1;
        if (!names(r, item))
            continue;
        for (int j = 0; j < r->nconds; j++)
            if (!cond_holds(&r->conds[j], g)) {
                held = 0;
                if (r->conds[j].claim)
                    claims_held = 0;
            }
        if (!r->allow) {
            if (held)
                return MCPGW_AUTHZ_DENY;
            continue;
        }
        named = 1;
        if (held)
            continue;
        if (!claims_held) {
            hard = 1;
            continue;
        }
        step = 1;
    }
    if (!named)
        return set->default_allow ? MCPGW_AUTHZ_ALLOW : MCPGW_AUTHZ_DENY;
    if (hard)
        return MCPGW_AUTHZ_DENY;
    if (!step)
        return MCPGW_AUTHZ_ALLOW;
    /* The scopes to ask for: every scope key of every allow rule naming the item (the held ones
     * too, so the new token keeps what this item needs), first alternative when none is held. */
    for (int i = 0; need && i < set->n; i++) {
        const struct rule *r = &set->r[i];
        if (!r->allow || !names(r, item))
            continue;
        for (int j = 0; j < r->nconds; j++) {
            const struct cond *c = &r->conds[j];
            const char *pick = c->any.v[0];
            if (c->claim)
                continue;
            for (int k = 0; k < c->any.n; k++)
                if (has_word(g->scopes, c->any.v[k]))
                    pick = c->any.v[k];
            need_add(need, needlen, pick);
        }
    }
    return MCPGW_AUTHZ_STEPUP;
}

/* ---- claims ---- */

/* Append "name\tvalue\n" for a scalar v; values with a tab or newline are skipped. */
static void claim_line(char **buf, size_t *len, const char *name, json_object *v)
{
    const char *s;
    size_t nl, sl;
    if (json_object_is_type(v, json_type_string))
        s = json_object_get_string(v);
    else if (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_boolean) ||
             json_object_is_type(v, json_type_double))
        s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
    else
        return;
    if (strpbrk(s, "\t\n"))
        return;
    nl = strlen(name);
    sl = strlen(s);
    *buf = xrealloc(*buf, *len + nl + sl + 3);
    memcpy(*buf + *len, name, nl);
    (*buf)[*len + nl] = '\t';
    memcpy(*buf + *len + nl + 1, s, sl);
    (*buf)[*len + nl + 1 + sl] = '\n';
    *len += nl + sl + 2;
    (*buf)[*len] = '\0';
}

char *mcpgw_authz_claims(const struct mcpgw_authz *set, json_object *claims)
{
    char *buf;
    size_t len = 0;
    if (!set || !set->nclaims)
        return NULL;
    buf = xstrdup("");
    for (int i = 0; i < set->nclaims && json_object_is_type(claims, json_type_object); i++) {
        json_object *v;
        if (!json_object_object_get_ex(claims, set->claims[i], &v))
            continue;
        if (json_object_is_type(v, json_type_array)) {
            for (size_t k = 0; k < json_object_array_length(v) && k < 256; k++)
                claim_line(&buf, &len, set->claims[i], json_object_array_get_idx(v, k));
        } else {
            claim_line(&buf, &len, set->claims[i], v);
        }
    }
    return buf;
}

char *mcpgw_authz_claims_jwt(const struct mcpgw_authz *set, const char *tok, size_t len)
{
    const char *p, *e;
    char *raw, *out = NULL;
    long n;
    json_object *o;
    if (!set || !set->nclaims)
        return NULL;
    if (!(p = memchr(tok, '.', len)) || !(e = memchr(p + 1, '.', len - (size_t)(p + 1 - tok))))
        return NULL;
    p++;
    raw = xmalloc((size_t)(e - p) + 1);
    n = mcpgw_b64url_decode(p, (size_t)(e - p), raw, (size_t)(e - p) + 1);
    if (n >= 0) {
        struct json_tokener *t = json_tokener_new();
        o = json_tokener_parse_ex(t, raw, (int)n);
        json_tokener_free(t);
        out = mcpgw_authz_claims(set, o);
        json_object_put(o);
    }
    free(raw);
    return out;
}
