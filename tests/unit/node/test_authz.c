/* test_authz.c - authorization rules: parsing and its refusals, the config file (file:line,
 * checks against the upstreams), evaluation (allow, deny, step-up, default) and claims. */
#include "node/authz.h"

#include "common/b64.h"
#include "node/config.h"
#include "node/upcfg.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../check-run.h"

static char err[400];

/* Parse "allow ..." or "deny ..." (a line's words, space-separated) into *set. */
static int rule(struct mcpgw_authz **set, const char *line, int first)
{
    char buf[512], *words[32], *save = NULL;
    int n = 0, allow;
    snprintf(buf, sizeof(buf), "%s", line);
    allow = strncmp(buf, "allow", 5) == 0;
    strtok_r(buf, " ", &save);
    for (char *w; n < 32 && (w = strtok_r(NULL, " ", &save)) != NULL;)
        words[n++] = w;
    err[0] = '\0';
    return mcpgw_authz_parse(set, allow, n, words, first, err, sizeof(err));
}

static struct mcpgw_authz *rules(const char *const *lines)
{
    struct mcpgw_authz *set = NULL;
    for (int i = 0; lines[i]; i++)
        ck_assert_msg(rule(&set, lines[i], 0) == 0, "%s: %s", lines[i], err);
    return set;
}

static enum mcpgw_authz_verdict check_item(const struct mcpgw_authz *set, enum mcpgw_authz_kind k,
                                           const char *name, const char *up, const char *scopes,
                                           const char *claims, char *need)
{
    struct mcpgw_authz_item it = {k, name, up};
    struct mcpgw_authz_grant g = {scopes, claims};
    return mcpgw_authz_check(set, &it, &g, need, need ? 256 : 0);
}

START_TEST(test_authz_refuses_bad_rules_with_a_reason)
{
    static const struct {
        const char *line, *want;
    } cases[] = {
        {"allow", "needs at least one key"},
        {"allow colour=red", "'colour=red' is not a rule key"},
        {"allow tool=a prompt=b", "a rule names one kind"},
        {"allow tool=a tool=b", "a rule names one kind"},
        {"allow upstream=a upstream=b", "upstream= is given twice"},
        {"allow scope=", "scope= needs a value"},
        {"allow scope=a,,b", "is not a list of values"},
        {"allow claim=groups", "is not NAME:VALUE"},
        {"allow claim=:admin", "is not NAME:VALUE"},
        {"deny tool=x claim=groups:", "claim= needs a value"},
        {"allow scope=a\"b", "is not a list of values"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mcpgw_authz *set = NULL;
        ck_assert_int_eq(rule(&set, cases[i].line, 1), -1);
        ck_assert_msg(strstr(err, cases[i].want), "case %zu: '%s' lacks '%s'", i, err,
                      cases[i].want);
        ck_assert(!mcpgw_authz_active(set));
        mcpgw_authz_free(set);
    }
    {
        struct mcpgw_authz *set = NULL;
        ck_assert_int_eq(mcpgw_authz_parse_default(&set, "maybe", err, sizeof(err)), -1);
        ck_assert_ptr_nonnull(strstr(err, "is not allow or deny"));
        mcpgw_authz_free(set);
    }
}
END_TEST

START_TEST(test_authz_no_rule_allows_everything)
{
    struct mcpgw_authz *set = NULL;
    ck_assert_int_eq(check_item(NULL, MCPGW_AUTHZ_TOOL, "x", "gh", "", "", NULL),
                     MCPGW_AUTHZ_ALLOW);
    /* authz-default alone is no rule: nothing is checked */
    ck_assert_int_eq(mcpgw_authz_parse_default(&set, "deny", err, sizeof(err)), 0);
    ck_assert(!mcpgw_authz_active(set));
    ck_assert_int_eq(check_item(set, MCPGW_AUTHZ_TOOL, "x", "gh", "", "", NULL), MCPGW_AUTHZ_ALLOW);
    mcpgw_authz_free(set);
}
END_TEST

START_TEST(test_authz_every_allow_rule_naming_an_item_must_hold)
{
    const char *lines[] = {"allow upstream=gh scope=repo:read",
                           "allow tool=gh__delete_* claim=groups:admin", "allow upstream=builtin",
                           NULL};
    struct mcpgw_authz *set = rules(lines);
    char need[256];
    ck_assert(mcpgw_authz_active(set));
    /* gh's tools need repo:read */
    ck_assert_int_eq(check_item(set, MCPGW_AUTHZ_TOOL, "gh__list", "gh", "mcp repo:read", "", NULL),
                     MCPGW_AUTHZ_ALLOW);
    ck_assert_int_eq(check_item(set, MCPGW_AUTHZ_TOOL, "gh__list", "gh", "mcp", "", need),
                     MCPGW_AUTHZ_STEPUP);
    ck_assert_str_eq(need, "repo:read");
    /* so do its prompts and resources (upstream= names every kind) */
    ck_assert_int_eq(check_item(set, MCPGW_AUTHZ_PROMPT, "gh__p", "gh", "", "", need),
                     MCPGW_AUTHZ_STEPUP);
    ck_assert_int_eq(
        check_item(set, MCPGW_AUTHZ_RESOURCE, "file:///a", "gh", "repo:read", "", NULL),
        MCPGW_AUTHZ_ALLOW);
    /* deleting needs both: the scope and the claim */
    ck_assert_int_eq(
        check_item(set, MCPGW_AUTHZ_TOOL, "gh__delete_repo", "gh", "repo:read", "", need),
        MCPGW_AUTHZ_DENY);
    ck_assert_int_eq(check_item(set, MCPGW_AUTHZ_TOOL, "gh__delete_repo", "gh", "repo:read",
                                "groups\tusers\ngroups\tadmin\n", NULL),
                     MCPGW_AUTHZ_ALLOW);
    /* a claim held but a scope missing: step up, naming what every rule asks for */
    ck_assert_int_eq(
        check_item(set, MCPGW_AUTHZ_TOOL, "gh__delete_repo", "gh", "", "groups\tadmin\n", need),
        MCPGW_AUTHZ_STEPUP);
    ck_assert_str_eq(need, "repo:read");
    /* the built-ins are open to every principal; other upstreams fall to the default (deny) */
    ck_assert_int_eq(check_item(set, MCPGW_AUTHZ_TOOL, "echo", "builtin", "", "", NULL),
                     MCPGW_AUTHZ_ALLOW);
    ck_assert_int_eq(check_item(set, MCPGW_AUTHZ_TOOL, "fs__read", "fs", "repo:read", "", NULL),
                     MCPGW_AUTHZ_DENY);
    ck_assert_int_eq(mcpgw_authz_parse_default(&set, "allow", err, sizeof(err)), 0);
    ck_assert_int_eq(check_item(set, MCPGW_AUTHZ_TOOL, "fs__read", "fs", "", "", NULL),
                     MCPGW_AUTHZ_ALLOW);
    mcpgw_authz_free(set);
}
END_TEST

START_TEST(test_authz_deny_wins_and_values_are_alternatives)
{
    const char *lines[] = {"allow scope=mcp:read,mcp:admin",
                           "deny tool=*shutdown*,*delete* claim=groups:contractor,intern",
                           "deny resource=secret://*", "allow prompt=p_* scope=prompts scope=x",
                           NULL};
    struct mcpgw_authz *set = rules(lines);
    char need[256];
    ck_assert_int_eq(check_item(set, MCPGW_AUTHZ_TOOL, "a", "u", "mcp:admin", "", NULL),
                     MCPGW_AUTHZ_ALLOW);
    ck_assert_int_eq(check_item(set, MCPGW_AUTHZ_TOOL, "a", "u", "", "", need), MCPGW_AUTHZ_STEPUP);
    ck_assert_str_eq(need, "mcp:read"); /* the first alternative */
    ck_assert_int_eq(
        check_item(set, MCPGW_AUTHZ_TOOL, "u__delete", "u", "mcp:read", "groups\tintern\n", NULL),
        MCPGW_AUTHZ_DENY);
    ck_assert_int_eq(
        check_item(set, MCPGW_AUTHZ_TOOL, "u__delete", "u", "mcp:read", "groups\tstaff\n", NULL),
        MCPGW_AUTHZ_ALLOW);
    /* a deny without conditions hides whatever it names, whatever the token */
    ck_assert_int_eq(
        check_item(set, MCPGW_AUTHZ_RESOURCE, "secret://k", "u", "mcp:admin", "", NULL),
        MCPGW_AUTHZ_DENY);
    /* a tool= rule does not name prompts; scope keys are all required */
    ck_assert_int_eq(check_item(set, MCPGW_AUTHZ_PROMPT, "p_1", "u", "mcp:admin prompts", "", need),
                     MCPGW_AUTHZ_STEPUP);
    ck_assert_str_eq(need, "mcp:admin prompts x"); /* held alternatives are kept in the ask */
    ck_assert_int_eq(
        check_item(set, MCPGW_AUTHZ_PROMPT, "p_1", "u", "x mcp:read prompts", "", NULL),
        MCPGW_AUTHZ_ALLOW);
    /* whole words only */
    ck_assert_int_eq(check_item(set, MCPGW_AUTHZ_TOOL, "a", "u", "mcp:readx xmcp:read", "", NULL),
                     MCPGW_AUTHZ_STEPUP);
    ck_assert_int_eq(check_item(set, MCPGW_AUTHZ_TOOL, "u__delete", "u", "mcp:read",
                                "groups\tintern2\nxgroups\tintern\n", NULL),
                     MCPGW_AUTHZ_ALLOW);
    mcpgw_authz_free(set);
}
END_TEST

START_TEST(test_authz_first_occurrence_starts_afresh)
{
    struct mcpgw_authz *set = NULL;
    ck_assert_int_eq(rule(&set, "allow tool=a", 1), 0);
    ck_assert_int_eq(rule(&set, "deny tool=b", 1), 0);
    ck_assert_int_eq(rule(&set, "allow tool=c", 1), 0); /* a new source: allow a is gone */
    ck_assert_int_eq(check_item(set, MCPGW_AUTHZ_TOOL, "a", "u", "", "", NULL), MCPGW_AUTHZ_DENY);
    ck_assert_int_eq(check_item(set, MCPGW_AUTHZ_TOOL, "c", "u", "", "", NULL), MCPGW_AUTHZ_ALLOW);
    mcpgw_authz_free(set);
}
END_TEST

START_TEST(test_authz_claims_come_from_the_token)
{
    const char *lines[] = {"allow claim=groups:admin", "allow claim=https://x.example/role=ops",
                           "allow claim=email_verified:true", NULL};
    struct mcpgw_authz *set = rules(lines);
    json_object *o = json_tokener_parse(
        "{\"sub\":\"a\",\"groups\":[\"users\",\"admin\",7,{\"x\":1},\"tab\\there\"],"
        "\"https://x.example/role\":\"ops\",\"email_verified\":true,\"other\":\"x\"}");
    char *c = mcpgw_authz_claims(set, o), *c2;
    ck_assert_str_eq(c, "groups\tusers\ngroups\tadmin\ngroups\t7\nhttps://x.example/role\tops\n"
                        "email_verified\ttrue\n");
    ck_assert_int_eq(check_item(set, MCPGW_AUTHZ_TOOL, "t", "u", "", c, NULL), MCPGW_AUTHZ_ALLOW);
    {
        /* the same from a compact JWT's payload */
        const char *payload = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        char b64[1024], tok[1200];
        mcpgw_b64url_encode(payload, strlen(payload), b64);
        snprintf(tok, sizeof(tok), "eyJhbGciOiJSUzI1NiJ9.%s.c2ln", b64);
        c2 = mcpgw_authz_claims_jwt(set, tok, strlen(tok));
        ck_assert_str_eq(c2, c);
        free(c2);
        ck_assert_ptr_null(mcpgw_authz_claims_jwt(set, "a.!!.c", 6));
    }
    free(c);
    json_object_put(o);
    mcpgw_authz_free(set);
    /* rules without claim= keep none */
    {
        const char *l2[] = {"allow scope=a", NULL};
        set = rules(l2);
        ck_assert_ptr_null(mcpgw_authz_claims(set, NULL));
        mcpgw_authz_free(set);
    }
}
END_TEST

static char path[64];

static const char *write_file(const char *text)
{
    FILE *f;
    snprintf(path, sizeof(path), "/tmp/mcpgw-authz-%d.conf", (int)getpid());
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static int load(struct mcpgw_node_config *c, const char *text)
{
    char *argv[] = {"mcpgw-node", "--config", (char *)write_file(text), "--check", NULL};
    int check, help;
    err[0] = '\0';
    return mcpgw_node_config_load(c, 4, argv, &check, &help, err, sizeof(err));
}

#define AUTH "auth apikey\nauth-apikeys /dev/null\nauth-resource https://gw.example/mcp\n"

START_TEST(test_authz_config_names_file_line_and_checks_upstreams)
{
    struct mcpgw_node_config c;
    char want[200];
    ck_assert_int_eq(load(&c, AUTH "upstream gh http http://127.0.0.1:9/mcp\n"
                                   "allow upstream=gh scope=repo:read\n"
                                   "deny tool=gh__delete_* claim=groups:intern\n"
                                   "authz-default allow\n"),
                     0);
    ck_assert(mcpgw_authz_active(c.authz));
    mcpgw_node_config_free(&c);
    ck_assert_int_eq(load(&c, AUTH "\nallow tool=a colour=red\n"), -1);
    snprintf(want, sizeof(want), "%s:5: '", path);
    ck_assert_msg(strstr(err, want) && strstr(err, "colour=red' is not a rule key"), "%s", err);
    mcpgw_node_config_free(&c);
    ck_assert_int_eq(load(&c, AUTH "allow upstream=gx scope=a\n"), -1);
    ck_assert_msg(strstr(err, "no upstream is called 'gx'"), "%s", err);
    mcpgw_node_config_free(&c);
    ck_assert_int_eq(load(&c, AUTH "upstream builtin http http://127.0.0.1:9/mcp\n"
                                   "allow upstream=builtin\n"),
                     -1);
    ck_assert_msg(strstr(err, "rename the upstream"), "%s", err);
    mcpgw_node_config_free(&c);
    ck_assert_int_eq(load(&c, "allow tool=*\n"), -1);
    ck_assert_msg(strstr(err, "need --auth"), "%s", err);
    mcpgw_node_config_free(&c);
    /* globs and the built-ins need no upstream of that name */
    ck_assert_int_eq(load(&c, AUTH "allow upstream=g* scope=a\nallow upstream=builtin\n"), 0);
    mcpgw_node_config_free(&c);
    unlink(path);
}
END_TEST

int main(void)
{
    const TTest *tests[] = {
        test_authz_refuses_bad_rules_with_a_reason,
        test_authz_no_rule_allows_everything,
        test_authz_every_allow_rule_naming_an_item_must_hold,
        test_authz_deny_wins_and_values_are_alternatives,
        test_authz_first_occurrence_starts_afresh,
        test_authz_claims_come_from_the_token,
        test_authz_config_names_file_line_and_checks_upstreams,
    };
    return mcpgw_check_run("authz", "authz", tests, sizeof(tests) / sizeof(tests[0]));
}
