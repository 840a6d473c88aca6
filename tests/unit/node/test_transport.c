/* test_transport.c - Host and Origin allow lists (DNS-rebinding protection). */
#include "node/transport.h"

#include "node/node-t.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static char *default_hosts[] = {"localhost", "127.0.0.1", "::1"};
static char *any_host[] = {"*"};
static char *extra_origin[] = {"https://app.example.com"};
static char *any_origin[] = {"*"};

/* The node's defaults: loopback names only, no extra origins. */
static void config(struct mcpgw_node_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->allowed_hosts = default_hosts;
    cfg->nallowed_hosts = 3;
}

static int host_ok(const struct mcpgw_node_config *cfg, const char *h)
{
    return mcpgw_transport_host_allowed(cfg, h, strlen(h));
}

static int origin_ok(const struct mcpgw_node_config *cfg, const char *o)
{
    return mcpgw_transport_origin_allowed(cfg, o, strlen(o));
}

START_TEST(test_host_allows_loopback_names_with_and_without_port)
{
    struct mcpgw_node_config cfg;
    config(&cfg);
    ck_assert(host_ok(&cfg, "localhost"));
    ck_assert(host_ok(&cfg, "localhost:8800"));
    ck_assert(host_ok(&cfg, "LocalHost:8800"));
    ck_assert(host_ok(&cfg, "127.0.0.1"));
    ck_assert(host_ok(&cfg, "127.0.0.1:8800"));
    ck_assert(host_ok(&cfg, "[::1]"));
    ck_assert(host_ok(&cfg, "[::1]:80"));
}
END_TEST

START_TEST(test_host_refuses_other_names)
{
    struct mcpgw_node_config cfg;
    config(&cfg);
    ck_assert(!host_ok(&cfg, "evil.example.com"));
    ck_assert(!host_ok(&cfg, "evil.example.com:8800"));
    ck_assert(!host_ok(&cfg, "localhost.evil.example.com"));
    ck_assert(!host_ok(&cfg, "127.0.0.1.nip.io"));
    ck_assert(!host_ok(&cfg, "127.0.0.2"));
    ck_assert(!host_ok(&cfg, "[::2]:80"));
    ck_assert(!host_ok(&cfg, ""));
    ck_assert(!host_ok(&cfg, ":8800"));
}
END_TEST

START_TEST(test_host_uses_only_len_bytes)
{
    struct mcpgw_node_config cfg;
    config(&cfg);
    ck_assert(mcpgw_transport_host_allowed(&cfg, "localhostX", 9));
    ck_assert(!mcpgw_transport_host_allowed(&cfg, "localhost", 5));
}
END_TEST

START_TEST(test_host_star_allows_any_host)
{
    struct mcpgw_node_config cfg;
    config(&cfg);
    cfg.allowed_hosts = any_host;
    cfg.nallowed_hosts = 1;
    ck_assert(host_ok(&cfg, "evil.example.com"));
    ck_assert(host_ok(&cfg, "anything:1"));
    ck_assert(origin_ok(&cfg, "http://evil.example.com"));
}
END_TEST

START_TEST(test_host_refuses_everything_with_an_empty_list)
{
    struct mcpgw_node_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    ck_assert(!host_ok(&cfg, "localhost"));
    ck_assert(!origin_ok(&cfg, "http://localhost"));
}
END_TEST

START_TEST(test_origin_allows_allowed_hosts_on_any_port)
{
    struct mcpgw_node_config cfg;
    config(&cfg);
    ck_assert(origin_ok(&cfg, "http://localhost:3000"));
    ck_assert(origin_ok(&cfg, "http://localhost"));
    ck_assert(origin_ok(&cfg, "https://127.0.0.1:8443"));
    ck_assert(origin_ok(&cfg, "http://[::1]:8080"));
}
END_TEST

START_TEST(test_origin_refuses_other_hosts)
{
    struct mcpgw_node_config cfg;
    config(&cfg);
    ck_assert(!origin_ok(&cfg, "http://evil.example.com"));
    ck_assert(!origin_ok(&cfg, "http://evil.example.com:3000"));
    ck_assert(!origin_ok(&cfg, "http://localhost.evil.example.com"));
    ck_assert(!origin_ok(&cfg, "http://localhost@evil.example.com"));
}
END_TEST

START_TEST(test_origin_refuses_malformed_values)
{
    struct mcpgw_node_config cfg;
    config(&cfg);
    ck_assert(!origin_ok(&cfg, "localhost:3000")); /* no scheme */
    ck_assert(!origin_ok(&cfg, "localhost"));
    ck_assert(!origin_ok(&cfg, "http:/localhost"));
    ck_assert(!origin_ok(&cfg, "http:localhost"));
    ck_assert(!origin_ok(&cfg, "http://"));
    ck_assert(!origin_ok(&cfg, "http:"));
    ck_assert(!origin_ok(&cfg, "null"));
    ck_assert(!origin_ok(&cfg, ""));
}
END_TEST

START_TEST(test_origin_allows_an_exact_extra_origin)
{
    struct mcpgw_node_config cfg;
    config(&cfg);
    ck_assert(!origin_ok(&cfg, "https://app.example.com"));
    cfg.allowed_origins = extra_origin;
    cfg.nallowed_origins = 1;
    ck_assert(origin_ok(&cfg, "https://app.example.com"));
    ck_assert(!origin_ok(&cfg, "http://app.example.com"));
    ck_assert(!origin_ok(&cfg, "https://app.example.com:8443"));
    ck_assert(!origin_ok(&cfg, "https://app.example.co"));
    ck_assert(origin_ok(&cfg, "http://localhost:3000")); /* hosts still count */
    /* an extra origin does not make its host an allowed Host */
    ck_assert(!host_ok(&cfg, "app.example.com"));
}
END_TEST

START_TEST(test_origin_star_allows_any_origin)
{
    struct mcpgw_node_config cfg;
    config(&cfg);
    cfg.allowed_origins = any_origin;
    cfg.nallowed_origins = 1;
    ck_assert(origin_ok(&cfg, "http://evil.example.com"));
}
END_TEST

static Suite *transport_suite(void)
{
    Suite *s = suite_create("transport");
    TCase *hosts = tcase_create("host"), *origins = tcase_create("origin");
    tcase_add_test(hosts, test_host_allows_loopback_names_with_and_without_port);
    tcase_add_test(hosts, test_host_refuses_other_names);
    tcase_add_test(hosts, test_host_uses_only_len_bytes);
    tcase_add_test(hosts, test_host_star_allows_any_host);
    tcase_add_test(hosts, test_host_refuses_everything_with_an_empty_list);
    suite_add_tcase(s, hosts);
    tcase_add_test(origins, test_origin_allows_allowed_hosts_on_any_port);
    tcase_add_test(origins, test_origin_refuses_other_hosts);
    tcase_add_test(origins, test_origin_refuses_malformed_values);
    tcase_add_test(origins, test_origin_allows_an_exact_extra_origin);
    tcase_add_test(origins, test_origin_star_allows_any_origin);
    suite_add_tcase(s, origins);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(transport_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
