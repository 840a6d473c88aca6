/* test_catalog.c - the merged catalogue: prefixes, filters, collisions, lookups, templates. */
#include "node/catalog.h"

#include "node/upcfg.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

#include "../check-run.h"

static struct mcpgw_upcfg *cfg(struct mcpgw_upcfg_set **set, const char *name, const char *prefix,
                               const char *extra)
{
    char pfx[80], err[200];
    const char *w[] = {name, "http", "http://h/mcp", pfx, extra, NULL};
    snprintf(pfx, sizeof(pfx), "prefix=%s", prefix);
    ck_assert_int_eq(
        mcpgw_upcfg_parse(set, extra ? 5 : 4, (char **)w, *set == NULL, err, sizeof(err)), 0);
    return (*set)->v[(*set)->n - 1];
}

START_TEST(test_catalog_merges_prefixes_filters_and_refuses_collisions)
{
    struct mcpgw_upcfg_set *set = NULL;
    struct mcpgw_catalog_src src[2] = {0};
    struct mcpgw_catalog *cat;
    const struct mcpgw_catalog_entry *e;
    int owner_a, owner_b;
    src[0].cfg = cfg(&set, "a", "", "exclude=secret");
    src[0].owner = &owner_a;
    src[0].lists[MCPGW_CATALOG_TOOLS] = json_tokener_parse(
        "[{\"name\":\"b__x\",\"inputSchema\":{}},{\"name\":\"sum\"},{\"name\":\"secret\"}]");
    src[0].lists[MCPGW_CATALOG_RESOURCES] =
        json_tokener_parse("[{\"uri\":\"r://1\",\"name\":\"one\"}]");
    src[1].cfg = cfg(&set, "b", "b", NULL);
    src[1].owner = &owner_b;
    src[1].lists[MCPGW_CATALOG_TOOLS] = json_tokener_parse("[{\"name\":\"x\"},{\"name\":\"sum\"}]");
    src[1].lists[MCPGW_CATALOG_RESOURCES] =
        json_tokener_parse("[{\"uri\":\"r://1\"},{\"uri\":\"r://2\"}]");
    src[1].lists[MCPGW_CATALOG_TEMPLATES] =
        json_tokener_parse("[{\"uriTemplate\":\"t://{id}/raw\"}]");
    cat = mcpgw_catalog_build(src, 2, NULL);
    /* a's "b__x" came first: b's "x" (exposed as b__x) is refused; a's secret is excluded */
    ck_assert_int_eq(json_object_array_length(mcpgw_catalog_list(cat, MCPGW_CATALOG_TOOLS)), 3);
    e = mcpgw_catalog_find(cat, MCPGW_CATALOG_TOOLS, "b__x");
    ck_assert_ptr_eq(e->owner, &owner_a);
    ck_assert_ptr_null(mcpgw_catalog_find(cat, MCPGW_CATALOG_TOOLS, "secret"));
    e = mcpgw_catalog_find(cat, MCPGW_CATALOG_TOOLS, "b__sum");
    ck_assert_ptr_eq(e->owner, &owner_b);
    ck_assert_str_eq(e->name, "sum");
    ck_assert_str_eq(e->tool.name, "b__sum");
    /* the exposed descriptor carries the exposed name, the rest unchanged */
    ck_assert_str_eq(
        json_object_get_string(json_object_object_get(
            json_object_array_get_idx(mcpgw_catalog_list(cat, MCPGW_CATALOG_TOOLS), 0), "name")),
        "b__x");
    ck_assert_ptr_eq(mcpgw_catalog_find(cat, MCPGW_CATALOG_RESOURCES, "r://1")->owner, &owner_a);
    ck_assert_ptr_eq(mcpgw_catalog_find(cat, MCPGW_CATALOG_RESOURCES, "r://2")->owner, &owner_b);
    ck_assert_ptr_eq(mcpgw_catalog_match(cat, "t://42/raw")->owner, &owner_b);
    ck_assert_ptr_null(mcpgw_catalog_match(cat, "t://42/cooked"));
    ck_assert_ptr_null(mcpgw_catalog_match(cat, "t:///raw"));
    ck_assert_ptr_null(mcpgw_catalog_sole_resource_owner(cat)); /* two upstreams have resources */
    mcpgw_catalog_free(cat);
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < MCPGW_CATALOG_KIND_COUNT; k++)
            json_object_put(src[i].lists[k]);
    mcpgw_upcfg_set_free(set);
}
END_TEST

int main(void)
{
    const TTest *tests[] = {test_catalog_merges_prefixes_filters_and_refuses_collisions};
    return mcpgw_check_run("catalog", "catalog", tests, sizeof(tests) / sizeof(tests[0]));
}
