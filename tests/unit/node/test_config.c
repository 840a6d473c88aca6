/* test_config.c - the node's settings: defaults, flags, config file, validation, live reload. */
#include "node/config.h"

#include "common/log.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct mcpgw_node_config cfg;
static char err[600];
static int check, help;

/* Load c from a NULL-terminated argument list (argv[0] is added), as main() and SIGHUP do. */
static int load_into(struct mcpgw_node_config *c, const char *const *args)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)"mcpgw-node";
    for (; *args; args++)
        argv[argc++] = (char *)*args;
    err[0] = '\0';
    return mcpgw_node_config_load(c, argc, argv, &check, &help, err, sizeof(err));
}

static int load(const char *const *args)
{
    mcpgw_node_config_free(&cfg);
    return load_into(&cfg, args);
}

static char path[64];

static const char *write_file(const char *text)
{
    FILE *f;
    snprintf(path, sizeof(path), "/tmp/mcpgw-nodecfg-%d.conf", (int)getpid());
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void teardown(void)
{
    mcpgw_node_config_free(&cfg);
    if (path[0])
        unlink(path);
}

START_TEST(test_config_defaults_are_the_documented_ones)
{
    const char *none[] = {NULL};
    ck_assert_int_eq(load(none), 0);
    ck_assert_str_eq(cfg.listen, "127.0.0.1:8801");
    ck_assert_str_eq(cfg.node_id, "n1");
    ck_assert_str_eq(cfg.store, "memory");
    ck_assert_uint_eq(cfg.shard_bits, 8);
    ck_assert_uint_eq(cfg.session_idle_ms, 30 * 60 * 1000);
    ck_assert_uint_eq(cfg.max_sessions, 1000000);
    ck_assert_uint_eq(cfg.tool_timeout_ms, 60000);
    ck_assert_uint_eq(cfg.client_request_timeout_ms, 60000);
    ck_assert_uint_eq(cfg.page_size, 100);
    ck_assert_uint_eq(cfg.sse_retry_ms, 1000);
    ck_assert_int_eq(cfg.allowed_hosts.n, 3);
    ck_assert_str_eq(cfg.allowed_hosts.v[2], "::1");
    ck_assert_int_eq(cfg.allowed_origins.n, 0);
    ck_assert_uint_eq(cfg.max_body_bytes, 16 * 1024 * 1024);
    ck_assert_uint_eq(cfg.max_head_bytes, 32 * 1024);
    ck_assert_uint_eq(cfg.max_conns, 18000);
    ck_assert_uint_eq(cfg.drain_timeout_ms, 10000);
    ck_assert_int_eq(cfg.log_level, MCPGW_LOG_INFO);
    ck_assert_int_eq(check, 0);
    ck_assert_int_eq(help, 0);
}
END_TEST

START_TEST(test_config_flags_keep_their_old_spellings)
{
    const char *a[] = {"--listen",
                       "127.0.0.1:9",
                       "--node-id",
                       "n-2",
                       "--store",
                       "redis://127.0.0.1:6379",
                       "--shards",
                       "4",
                       "--session-idle",
                       "1s",
                       "--max-sessions",
                       "5",
                       "--allowed-hosts",
                       "a.example,*",
                       "--allowed-origins",
                       "https://x.example",
                       "--max-body=1m",
                       "--max-headers",
                       "64k",
                       "--max-conns",
                       "7",
                       "--gossip-bind",
                       "127.0.0.1:7946",
                       "--gossip-seeds",
                       "127.0.0.1:7947,127.0.0.1:7948",
                       "--advertise=n2.example:8801",
                       "--log-level",
                       "warn",
                       NULL};
    ck_assert_int_eq(load(a), 0);
    ck_assert_str_eq(cfg.node_id, "n-2");
    ck_assert_str_eq(cfg.store, "redis://127.0.0.1:6379");
    ck_assert_uint_eq(cfg.shard_bits, 4);
    ck_assert_uint_eq(cfg.session_idle_ms, 1000);
    ck_assert_uint_eq(cfg.max_sessions, 5);
    ck_assert_int_eq(cfg.allowed_hosts.n, 2);
    ck_assert_str_eq(cfg.allowed_hosts.v[1], "*");
    ck_assert_str_eq(cfg.allowed_origins.v[0], "https://x.example");
    ck_assert_uint_eq(cfg.max_body_bytes, 1 << 20);
    ck_assert_uint_eq(cfg.max_head_bytes, 64 << 10);
    ck_assert_uint_eq(cfg.max_conns, 7);
    ck_assert_int_eq(cfg.gossip_seeds.n, 2);
    ck_assert_str_eq(cfg.advertise, "n2.example:8801");
    ck_assert_int_eq(cfg.log_level, MCPGW_LOG_WARN);
}
END_TEST

START_TEST(test_config_file_has_the_same_keys_and_flags_override_it)
{
    const char *p = write_file("# node.conf\n"
                               "listen 127.0.0.1:18001\n"
                               "node-id n7\n"
                               "allowed-hosts localhost gw.example   # two words, one list\n"
                               "max-sessions 10\n"
                               "log-level debug\n");
    const char *a[] = {"--max-sessions", "20", "--config", p, NULL};
    ck_assert_int_eq(load(a), 0);
    ck_assert_str_eq(cfg.config_path, p);
    ck_assert_str_eq(cfg.listen, "127.0.0.1:18001");
    ck_assert_str_eq(cfg.node_id, "n7");
    ck_assert_int_eq(cfg.allowed_hosts.n, 2);
    ck_assert_str_eq(cfg.allowed_hosts.v[1], "gw.example");
    ck_assert_uint_eq(cfg.max_sessions, 20);
    ck_assert_int_eq(cfg.log_level, MCPGW_LOG_DEBUG);
}
END_TEST

START_TEST(test_config_file_errors_name_the_file_and_line)
{
    const char *p = write_file("listen 127.0.0.1:18001\n"
                               "\n"
                               "lisen 127.0.0.1:18002\n");
    const char *a[] = {"--config", p, "--check", NULL};
    char want[128];
    ck_assert_int_eq(load(a), -1);
    snprintf(want, sizeof(want), "%s:3: unknown key 'lisen' (did you mean 'listen'?)", p);
    ck_assert_str_eq(err, want);
    write_file("max-sessions 0\n");
    ck_assert_int_eq(load(a), -1);
    ck_assert_ptr_nonnull(strstr(err, ":1: max-sessions must be between 1 and"));
    write_file("allowed-hosts ${MCPGW_TEST_UNSET_VAR}\n");
    unsetenv("MCPGW_TEST_UNSET_VAR");
    ck_assert_int_eq(load(a), -1);
    ck_assert_ptr_nonnull(strstr(err, ":1: ${MCPGW_TEST_UNSET_VAR} is not set"));
}
END_TEST

START_TEST(test_config_validation_names_what_is_wrong)
{
    const char *id[] = {"--node-id", "n.1", NULL};
    const char *longid[] = {"--node-id", "a234567890123456789012345678901x", NULL};
    const char *store[] = {"--store", "postgres://x", NULL};
    const char *listen[] = {"--listen", "127.0.0.1", NULL};
    const char *gossip[] = {"--gossip-bind", "nowhere", NULL};
    const char *seeds[] = {"--gossip-seeds", "a:1,b", NULL};
    const char *hosts[] = {"--allowed-hosts", ",", NULL};
    const char *shards[] = {"--shards", "17", NULL};
    const char *idle[] = {"--session-idle", "0", NULL};
    const char *heads[] = {"--max-headers", "100", NULL};
    ck_assert_int_eq(load(id), -1);
    ck_assert_str_eq(err, "node-id 'n.1' must be 1-31 characters of [A-Za-z0-9_-]");
    ck_assert_int_eq(load(longid), -1);
    ck_assert_int_eq(load(store), -1);
    ck_assert_ptr_nonnull(strstr(err, "store 'postgres://x' is not supported"));
    ck_assert_int_eq(load(listen), -1);
    ck_assert_ptr_nonnull(strstr(err, "listen: address '127.0.0.1' has no port"));
    ck_assert_int_eq(load(gossip), -1);
    ck_assert_ptr_nonnull(strstr(err, "gossip-bind:"));
    ck_assert_int_eq(load(seeds), -1);
    ck_assert_ptr_nonnull(strstr(err, "gossip-seeds: address 'b'"));
    ck_assert_int_eq(load(hosts), -1);
    ck_assert_ptr_nonnull(strstr(err, "allowed-hosts is empty"));
    ck_assert_int_eq(load(shards), -1);
    ck_assert_ptr_nonnull(strstr(err, "--shards must be between 0 and 16"));
    ck_assert_int_eq(load(idle), -1);
    ck_assert_ptr_nonnull(strstr(err, "--session-idle must be between"));
    ck_assert_int_eq(load(heads), -1);
    ck_assert_ptr_nonnull(strstr(err, "--max-headers must be between 1k and 1g"));
}
END_TEST

START_TEST(test_config_reports_check_and_help)
{
    const char *c[] = {"--check", NULL};
    const char *h[] = {"--bogus", "--help", NULL};
    ck_assert_int_eq(load(c), 0);
    ck_assert_int_eq(check, 1);
    ck_assert_int_eq(load(h), 0);
    ck_assert_int_eq(help, 1);
}
END_TEST

struct seen {
    char live[256], restart[256];
};

static void on_diff(void *arg, const char *key, int applied)
{
    struct seen *s = arg;
    char *out = applied ? s->live : s->restart;
    size_t used = strlen(out);
    snprintf(out + used, sizeof(s->live) - used, "%s%s", used ? " " : "", key);
}

START_TEST(test_config_reload_takes_live_settings_and_reports_the_others)
{
    const char *p = write_file("listen 127.0.0.1:18001\nnode-id n7\n");
    const char *a[] = {"--config", p, NULL};
    struct mcpgw_node_config next;
    struct seen s = {"", ""};
    ck_assert_int_eq(load(a), 0);
    write_file("listen 127.0.0.1:18009\nnode-id n8\nstore redis://127.0.0.1:1\n"
               "allowed-hosts gw.example\nallowed-origins https://app.example\n"
               "max-sessions 3\nmax-body 1m\nmax-headers 8k\nmax-conns 50\npage-size 2\n"
               "tool-timeout 5s\nclient-timeout 6s\nsse-retry 2s\ndrain-timeout 1s\n"
               "log-level warn\nsession-idle 1m\nshards 2\ngossip-bind 127.0.0.1:7000\n");
    ck_assert_int_eq(load_into(&next, a), 0);
    ck_assert_int_eq(mcpgw_node_config_apply_live(&cfg, &next, on_diff, &s), 12);
    ck_assert_str_eq(s.live, "max-sessions tool-timeout client-timeout page-size sse-retry "
                             "allowed-hosts allowed-origins max-body max-headers max-conns "
                             "drain-timeout log-level");
    ck_assert_str_eq(s.restart, "listen node-id store shards session-idle gossip-bind");
    /* the restart-only ones keep their running values */
    ck_assert_str_eq(cfg.listen, "127.0.0.1:18001");
    ck_assert_str_eq(cfg.node_id, "n7");
    ck_assert_str_eq(cfg.store, "memory");
    ck_assert_uint_eq(cfg.session_idle_ms, 30 * 60 * 1000);
    ck_assert_str_eq(cfg.gossip_bind, "");
    /* the live ones are the file's */
    ck_assert_uint_eq(cfg.max_sessions, 3);
    ck_assert_int_eq(cfg.allowed_hosts.n, 1);
    ck_assert_str_eq(cfg.allowed_hosts.v[0], "gw.example");
    ck_assert_str_eq(cfg.allowed_origins.v[0], "https://app.example");
    ck_assert_uint_eq(cfg.max_body_bytes, 1 << 20);
    ck_assert_uint_eq(cfg.max_head_bytes, 8 << 10);
    ck_assert_uint_eq(cfg.max_conns, 50);
    ck_assert_uint_eq(cfg.page_size, 2);
    ck_assert_uint_eq(cfg.tool_timeout_ms, 5000);
    ck_assert_uint_eq(cfg.client_request_timeout_ms, 6000);
    ck_assert_uint_eq(cfg.sse_retry_ms, 2000);
    ck_assert_uint_eq(cfg.drain_timeout_ms, 1000);
    ck_assert_int_eq(cfg.log_level, MCPGW_LOG_WARN);
    /* next holds the replaced lists */
    ck_assert_int_eq(next.allowed_hosts.n, 3);
    mcpgw_node_config_free(&next);
}
END_TEST

START_TEST(test_config_reload_of_the_same_file_changes_nothing)
{
    const char *p = write_file("listen 127.0.0.1:18001\nallowed-hosts a,b\nmax-sessions 4\n");
    const char *a[] = {"--config", p, "--page-size", "7", NULL};
    struct mcpgw_node_config next;
    struct seen s = {"", ""};
    ck_assert_int_eq(load(a), 0);
    ck_assert_int_eq(load_into(&next, a), 0);
    ck_assert_int_eq(mcpgw_node_config_apply_live(&cfg, &next, on_diff, &s), 0);
    ck_assert_str_eq(s.live, "");
    ck_assert_str_eq(s.restart, "");
    ck_assert_uint_eq(cfg.page_size, 7); /* the flag applies over the file again */
    mcpgw_node_config_free(&next);
}
END_TEST

START_TEST(test_config_usage_lists_every_flag_and_what_reloads)
{
    static const char *const flags[] = {"--config",
                                        "--listen",
                                        "--node-id",
                                        "--store",
                                        "--shards",
                                        "--session-idle",
                                        "--max-sessions",
                                        "--tool-timeout",
                                        "--client-timeout",
                                        "--page-size",
                                        "--sse-retry",
                                        "--allowed-hosts",
                                        "--allowed-origins",
                                        "--max-body",
                                        "--max-headers",
                                        "--max-conns",
                                        "--gossip-bind",
                                        "--gossip-seeds",
                                        "--gossip-advertise",
                                        "--advertise",
                                        "--drain-timeout",
                                        "--log-level",
                                        "--check",
                                        "--help",
                                        "(reloads)",
                                        "SIGHUP",
                                        "${NAME}"};
    char buf[16384] = "";
    FILE *f = fmemopen(buf, sizeof(buf) - 1, "w");
    mcpgw_node_config_usage(f);
    fclose(f);
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        ck_assert_msg(strstr(buf, flags[i]) != NULL, "--help does not mention %s", flags[i]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("node-config");
    TCase *tc = tcase_create("config");
    SRunner *sr;
    int failed;
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, test_config_defaults_are_the_documented_ones);
    tcase_add_test(tc, test_config_flags_keep_their_old_spellings);
    tcase_add_test(tc, test_config_file_has_the_same_keys_and_flags_override_it);
    tcase_add_test(tc, test_config_file_errors_name_the_file_and_line);
    tcase_add_test(tc, test_config_validation_names_what_is_wrong);
    tcase_add_test(tc, test_config_reports_check_and_help);
    tcase_add_test(tc, test_config_reload_takes_live_settings_and_reports_the_others);
    tcase_add_test(tc, test_config_reload_of_the_same_file_changes_nothing);
    tcase_add_test(tc, test_config_usage_lists_every_flag_and_what_reloads);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
