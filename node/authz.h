/* authz.h - authorization rules: which principal may use which upstream, tool, prompt or
 * resource, decided by the scopes and claims of its token. The `allow` / `deny` lines of the
 * node's config file, parsed and checked here, and evaluated for one item and one grant. A pure
 * module: no I/O, no node state (docs/security.md, "Authorization rules"). */
#ifndef MCPGW_NODE_AUTHZ_H
#define MCPGW_NODE_AUTHZ_H

#include <json-c/json.h>
#include <stddef.h>

struct mcpgw_upcfg_set;

/* The upstream name rules use for the node's built-in tools, resources and prompts. */
#define MCPGW_AUTHZ_BUILTIN "builtin"

/* What a rule may name. Resource templates are resources (their uriTemplate is the name). */
enum mcpgw_authz_kind {
    MCPGW_AUTHZ_TOOL,
    MCPGW_AUTHZ_PROMPT,
    MCPGW_AUTHZ_RESOURCE,
    MCPGW_AUTHZ_KIND_COUNT
};
const char *mcpgw_authz_kind_str(enum mcpgw_authz_kind k);

/* One thing a client may see or use: its kind, the name the client sees (a tool or prompt
 * name, a resource URI or a template's uriTemplate) and the upstream serving it
 * (MCPGW_AUTHZ_BUILTIN for the built-ins). Strings borrowed. */
struct mcpgw_authz_item {
    enum mcpgw_authz_kind kind;
    const char *name;
    const char *upstream;
};

/* What a request's token grants: its scopes (space-separated, "" for none) and the claims the
 * rules ask about, as "name\tvalue\n" lines (an array claim gives one line per element; ""
 * for none). Strings borrowed. */
struct mcpgw_authz_grant {
    const char *scopes;
    const char *claims;
};

/* The rule set: every `allow` and `deny` line and `authz-default`. Opaque. */
struct mcpgw_authz;

/* The config reader's setters. allow / deny: one line's words (after the key), appended to
 * *setp (created on first use); first (the row's first occurrence in this source) drops the
 * lines of that kind read before. Returns 0, or -1 with a sentence in err (the reader adds
 * file:line). */
int mcpgw_authz_parse(struct mcpgw_authz **setp, int allow, int nwords, char **words, int first,
                      char *err, size_t errlen);
/* authz-default allow|deny: what an item no allow rule names gets (deny when not set). */
int mcpgw_authz_parse_default(struct mcpgw_authz **setp, const char *word, char *err,
                              size_t errlen);
void mcpgw_authz_free(struct mcpgw_authz *set);

/* A number no other rule set of this process had (so a cache can tell two sets apart even when
 * one is allocated where the other was freed); 0 for NULL. */
unsigned long long mcpgw_authz_id(const struct mcpgw_authz *set);

/* Whether set holds any rule (a set with only authz-default has none: nothing is checked). */
int mcpgw_authz_active(const struct mcpgw_authz *set);

/* Checks against the rest of the configuration: a rule's upstream= without wildcards must name
 * a configured upstream or MCPGW_AUTHZ_BUILTIN, and no upstream may be called
 * MCPGW_AUTHZ_BUILTIN. Returns 0, or -1 with a sentence quoting the rule. ups may be NULL. */
int mcpgw_authz_validate(const struct mcpgw_authz *set, const struct mcpgw_upcfg_set *ups,
                         char *err, size_t errlen);

/* The decision for one item. */
enum mcpgw_authz_verdict {
    MCPGW_AUTHZ_ALLOW,
    MCPGW_AUTHZ_DENY,   /* no scope would help: a claim is missing, a deny rule holds, or no
                           allow rule names it and the default is deny */
    MCPGW_AUTHZ_STEPUP, /* allowed once the token also has the scopes written to need */
    MCPGW_AUTHZ_VERDICT_COUNT
};

/* Decide: a deny rule that names the item and whose conditions hold refuses it; otherwise every
 * allow rule that names it must have its conditions hold (all claim= and scope= keys; within a
 * key, any of its comma-separated values); an item no allow rule names gets the default. For
 * STEPUP, need (may be NULL) receives the scopes every allow rule naming the item asks for,
 * space-separated, first alternative of each key (so a client asking for them gets the item).
 * Cost: one pass over the rules, fnmatch per selector. */
enum mcpgw_authz_verdict mcpgw_authz_check(const struct mcpgw_authz *set,
                                           const struct mcpgw_authz_item *item,
                                           const struct mcpgw_authz_grant *g, char *need,
                                           size_t needlen);

/* The claims the rules ask about, taken from a token's claims object (a JWT payload, an
 * introspection answer) in the grant's "name\tvalue\n" form: strings, numbers and booleans as
 * text, arrays one line per such element; values with a tab or newline are skipped. Returns a
 * string to free (NULL when the rules name no claim). */
char *mcpgw_authz_claims(const struct mcpgw_authz *set, json_object *claims);
/* The same from a compact JWT (already verified by the caller): its payload decoded. NULL
 * when the rules name no claim or the payload does not decode. */
char *mcpgw_authz_claims_jwt(const struct mcpgw_authz *set, const char *tok, size_t len);

#endif
