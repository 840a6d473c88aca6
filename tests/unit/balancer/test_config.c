/* test_config.c - balancer flags, config file format and validation. */
#include "balancer/config.h"

#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct mcpgw_bal_config cfg;
static char err[512];

/* Load from a NULL-terminated argument list (argv[0] is added). */
static int load(const char *const *args, int *check, int *help)
{
    char *argv[32];
    int argc = 0, c = 0, h = 0;
    argv[argc++] = (char *)"mcpgw-balancer";
    for (; *args; args++)
        argv[argc++] = (char *)*args;
    err[0] = '\0';
    return mcpgw_bal_config_load(&cfg, argc, argv, check ? check : &c, help ? help : &h, err,
                                 sizeof(err));
}

static const char *write_file(const char *text)
{
    static char path[64];
    int fd;
    snprintf(path, sizeof(path), "/tmp/mcpgw-balcfg-XXXXXX");
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

START_TEST(test_config_flags_give_listen_nodes_and_workers)
{
    const char *a[] = {"--listen",  "127.0.0.1:9000",
                       "--nodes",   "n1=127.0.0.1:8801,n2=127.0.0.1:8802",
                       "--workers", "3",
                       NULL};
    ck_assert_int_eq(load(a, NULL, NULL), 0);
    ck_assert_str_eq(cfg.listen, "127.0.0.1:9000");
    ck_assert_int_eq(cfg.nnodes, 2);
    ck_assert_str_eq(cfg.nodes[0].id, "n1");
    ck_assert_str_eq(cfg.nodes[1].addr, "127.0.0.1:8802");
    ck_assert_int_eq(cfg.workers, 3);
}
END_TEST

START_TEST(test_config_defaults_match_the_issue)
{
    const char *a[] = {"--nodes", "n1=127.0.0.1:8801", NULL};
    ck_assert_int_eq(load(a, NULL, NULL), 0);
    ck_assert_uint_eq(cfg.max_body_size, 16 * 1024 * 1024);
    ck_assert_uint_eq(cfg.health_interval_ms, 1000);
    ck_assert_str_eq(cfg.health_path, "/healthz");
    ck_assert_str_eq(cfg.admin, "");
    ck_assert_int_ge(cfg.workers, 1);
    ck_assert_uint_eq(cfg.mux_window, 16 * 1024);
}
END_TEST

START_TEST(test_config_accepts_equals_form_and_units)
{
    const char *a[] = {"--nodes=n1=127.0.0.1:8801",
                       "--max-body-size=1m",
                       "--header-timeout=1500ms",
                       "--idle-timeout",
                       "2m",
                       NULL};
    ck_assert_int_eq(load(a, NULL, NULL), 0);
    ck_assert_uint_eq(cfg.max_body_size, 1024 * 1024);
    ck_assert_uint_eq(cfg.header_timeout_ms, 1500);
    ck_assert_uint_eq(cfg.idle_timeout_ms, 120000);
}
END_TEST

START_TEST(test_config_rejects_unknown_flags_and_bad_values)
{
    const char *a1[] = {"--nodes", "n1=127.0.0.1:8801", "--bogus", "1", NULL};
    const char *a2[] = {"--nodes", "n1=127.0.0.1:8801", "--workers", "two", NULL};
    const char *a3[] = {"--nodes", "n1=127.0.0.1:8801", "--header-timeout", "soon", NULL};
    const char *a4[] = {"--nodes", NULL};
    ck_assert_int_eq(load(a1, NULL, NULL), -1);
    ck_assert_ptr_nonnull(strstr(err, "--bogus"));
    ck_assert_int_eq(load(a2, NULL, NULL), -1);
    ck_assert_ptr_nonnull(strstr(err, "workers"));
    ck_assert_int_eq(load(a3, NULL, NULL), -1);
    ck_assert_ptr_nonnull(strstr(err, "header-timeout"));
    ck_assert_int_eq(load(a4, NULL, NULL), -1);
}
END_TEST

START_TEST(test_config_validation_names_what_is_wrong)
{
    const char *none[] = {NULL};
    const char *dup[] = {"--nodes", "n1=127.0.0.1:1,n1=127.0.0.1:2", NULL};
    const char *dot[] = {"--nodes", "n.1=127.0.0.1:1", NULL};
    const char *addr[] = {"--nodes", "n1=127.0.0.1", NULL};
    const char *form[] = {"--nodes", "n1@127.0.0.1:1", NULL};
    const char *tls[] = {"--nodes", "n1=127.0.0.1:1", "--tls-cert", "/x.pem", NULL};
    const char *w[] = {"--nodes", "n1=127.0.0.1:1", "--workers", "0", NULL};
    const char *hp[] = {"--nodes", "n1=127.0.0.1:1", "--health-path", "healthz", NULL};
    const char *same[] = {"--nodes", "n1=127.0.0.1:1", "--admin", "127.0.0.1:8800", NULL};
    const char *mw_lo[] = {"--nodes", "n1=127.0.0.1:1", "--mux-window", "1k", NULL};
    const char *mw_hi[] = {"--nodes", "n1=127.0.0.1:1", "--mux-window", "2g", NULL};
    const char *mw_ok[] = {"--nodes", "n1=127.0.0.1:1", "--mux-window", "1g", NULL};
    ck_assert_int_eq(load(none, NULL, NULL), -1);
    ck_assert_ptr_nonnull(strstr(err, "no nodes"));
    ck_assert_int_eq(load(dup, NULL, NULL), -1);
    ck_assert_ptr_nonnull(strstr(err, "twice"));
    ck_assert_int_eq(load(dot, NULL, NULL), -1);
    ck_assert_ptr_nonnull(strstr(err, "n.1"));
    ck_assert_int_eq(load(addr, NULL, NULL), -1);
    ck_assert_ptr_nonnull(strstr(err, "n1"));
    ck_assert_int_eq(load(form, NULL, NULL), -1);
    ck_assert_ptr_nonnull(strstr(err, "id=host:port"));
    ck_assert_int_eq(load(tls, NULL, NULL), -1);
    ck_assert_ptr_nonnull(strstr(err, "together"));
    ck_assert_int_eq(load(w, NULL, NULL), -1);
    ck_assert_int_eq(load(hp, NULL, NULL), -1);
    ck_assert_int_eq(load(same, NULL, NULL), -1);
    ck_assert_int_eq(load(mw_lo, NULL, NULL), -1);
    ck_assert_ptr_nonnull(strstr(err, "mux-window"));
    ck_assert_int_eq(load(mw_hi, NULL, NULL), -1);
    ck_assert_ptr_nonnull(strstr(err, "mux-window"));
    ck_assert_int_eq(load(mw_ok, NULL, NULL), 0);
    ck_assert_uint_eq(cfg.mux_window, 1024 * 1024 * 1024);
}
END_TEST

START_TEST(test_config_tcp_keepalive_defaults_to_a_minute_and_zero_turns_it_off)
{
    const char *def[] = {"--nodes", "n1=127.0.0.1:1", NULL};
    const char *off[] = {"--nodes", "n1=127.0.0.1:1", "--tcp-keepalive", "0", NULL};
    const char *hi[] = {"--nodes", "n1=127.0.0.1:1", "--tcp-keepalive", "10h", NULL};
    ck_assert_int_eq(load(def, NULL, NULL), 0);
    ck_assert_uint_eq(cfg.tcp_keepalive_ms, 60000);
    ck_assert_int_eq(load(off, NULL, NULL), 0);
    ck_assert_uint_eq(cfg.tcp_keepalive_ms, 0);
    /* Over what the kernel takes (32767 s): refused, not silently capped. */
    ck_assert_int_eq(load(hi, NULL, NULL), -1);
    ck_assert_ptr_nonnull(strstr(err, "tcp-keepalive"));
}
END_TEST

START_TEST(test_config_source_addrs_are_parsed_or_refused)
{
    const char *ok[] = {"--nodes", "n1=127.0.0.1:1", "--source-addrs", "127.0.1.1-127.0.1.3", NULL};
    const char *back[] = {"--nodes", "n1=127.0.0.1:1", "--source-addrs", "127.0.1.3-127.0.1.1",
                          NULL};
    const char *name[] = {"--nodes", "n1=127.0.0.1:1", "--source-addrs", "lo", NULL};
    const char *none[] = {"--nodes", "n1=127.0.0.1:1", NULL};
    ck_assert_int_eq(load(ok, NULL, NULL), 0);
    ck_assert_uint_eq(cfg.nsources, 3);
    ck_assert_uint_eq(ntohl(cfg.sources[2].sin_addr.s_addr), 0x7f000103);
    ck_assert_int_eq(load(back, NULL, NULL), -1);
    ck_assert_ptr_nonnull(strstr(err, "source-addrs"));
    ck_assert_ptr_nonnull(strstr(err, "backwards"));
    ck_assert_int_eq(load(name, NULL, NULL), -1);
    ck_assert_ptr_nonnull(strstr(err, "'lo' is not an IPv4 address"));
    /* none given: the kernel chooses */
    ck_assert_int_eq(load(none, NULL, NULL), 0);
    ck_assert_uint_eq(cfg.nsources, 0);
}
END_TEST

START_TEST(test_config_file_sets_keys_nodes_and_drain_marks)
{
    const char *path = write_file("# balancer\n"
                                  "listen 127.0.0.1:9100\n"
                                  "workers 2   # two cores\n"
                                  "admin 127.0.0.1:9199\n"
                                  "\n"
                                  "node n1 127.0.0.1:9101\n"
                                  "node n2 127.0.0.1:9102 drain\n"
                                  "health-rise 3\n"
                                  "max-body-size 8m\n");
    const char *a[] = {"--config", path, NULL};
    ck_assert_int_eq(load(a, NULL, NULL), 0);
    unlink(path);
    ck_assert_str_eq(cfg.listen, "127.0.0.1:9100");
    ck_assert_int_eq(cfg.workers, 2);
    ck_assert_str_eq(cfg.admin, "127.0.0.1:9199");
    ck_assert_int_eq(cfg.nnodes, 2);
    ck_assert_int_eq(cfg.nodes[0].draining, 0);
    ck_assert_int_eq(cfg.nodes[1].draining, 1);
    ck_assert_uint_eq(cfg.health_rise, 3);
    ck_assert_uint_eq(cfg.max_body_size, 8 * 1024 * 1024);
    ck_assert_str_eq(cfg.config_path, path);
}
END_TEST

START_TEST(test_config_flags_override_the_file)
{
    const char *path = write_file("listen 127.0.0.1:9100\nworkers 2\nnode n1 127.0.0.1:9101\n");
    const char *a[] = {"--workers", "4", "--config", path, "--drain", "n1", NULL};
    ck_assert_int_eq(load(a, NULL, NULL), 0);
    unlink(path);
    ck_assert_int_eq(cfg.workers, 4);
    ck_assert_str_eq(cfg.listen, "127.0.0.1:9100");
    ck_assert_int_eq(cfg.nodes[0].draining, 1);
}
END_TEST

START_TEST(test_config_file_errors_name_the_line)
{
    struct mcpgw_bal_config c;
    mcpgw_bal_config_defaults(&c);
    ck_assert_int_eq(
        mcpgw_bal_config_parse_text(&c, "workers 2\nfrobnicate 1\n", "b.conf", err, sizeof(err)),
        -1);
    ck_assert_ptr_nonnull(strstr(err, "b.conf:2"));
    ck_assert_ptr_nonnull(strstr(err, "frobnicate"));
    ck_assert_int_eq(mcpgw_bal_config_parse_text(&c, "node n1\n", "b.conf", err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "b.conf:1"));
    ck_assert_int_eq(
        mcpgw_bal_config_parse_text(&c, "node n1 127.0.0.1:1 maybe\n", "b.conf", err, sizeof(err)),
        -1);
    ck_assert_int_eq(mcpgw_bal_config_parse_text(&c, "workers\n", "b.conf", err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "exactly one value"));
    ck_assert_int_eq(mcpgw_bal_config_parse_text(&c, "workers 1 2\n", "b.conf", err, sizeof(err)),
                     -1);
}
END_TEST

START_TEST(test_config_missing_file_is_an_error)
{
    const char *a[] = {"--config", "/nonexistent/balancer.conf", NULL};
    ck_assert_int_eq(load(a, NULL, NULL), -1);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/balancer.conf"));
}
END_TEST

START_TEST(test_config_drain_must_name_a_known_node)
{
    const char *a[] = {"--nodes", "n1=127.0.0.1:1", "--drain", "n7", NULL};
    ck_assert_int_eq(load(a, NULL, NULL), -1);
    ck_assert_ptr_nonnull(strstr(err, "n7"));
}
END_TEST

START_TEST(test_config_reports_check_and_help)
{
    const char *a[] = {"--nodes", "n1=127.0.0.1:1", "--check", NULL};
    const char *b[] = {"--help", NULL};
    int check = 0, help = 0;
    ck_assert_int_eq(load(a, &check, &help), 0);
    ck_assert_int_eq(check, 1);
    ck_assert_int_eq(help, 0);
    ck_assert_int_eq(load(b, &check, &help), 0);
    ck_assert_int_eq(help, 1);
}
END_TEST

START_TEST(test_config_usage_lists_every_flag)
{
    static const char *const flags[] = {"--config",
                                        "--listen",
                                        "--nodes",
                                        "--drain",
                                        "--workers",
                                        "--admin",
                                        "--tls-cert",
                                        "--tls-key",
                                        "--max-clients",
                                        "--max-header-size",
                                        "--max-body-size",
                                        "--header-timeout",
                                        "--body-timeout",
                                        "--idle-timeout",
                                        "--send-timeout",
                                        "--buffer-size",
                                        "--connect-timeout",
                                        "--response-timeout",
                                        "--stream-mux",
                                        "--stream-resume",
                                        "--mux-window",
                                        "--pool-size",
                                        "--pool-idle-timeout",
                                        "--health-interval",
                                        "--health-timeout",
                                        "--health-rise",
                                        "--health-fall",
                                        "--health-path",
                                        "--drain-timeout",
                                        "--log-level",
                                        "--check",
                                        "--help"};
    char buf[8192] = "";
    FILE *f = fmemopen(buf, sizeof(buf) - 1, "w");
    mcpgw_bal_config_usage(f, "mcpgw-balancer");
    fclose(f);
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        ck_assert_msg(strstr(buf, flags[i]) != NULL, "--help does not list %s", flags[i]);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("flags");
    tcase_add_test(tc, test_config_flags_give_listen_nodes_and_workers);
    tcase_add_test(tc, test_config_defaults_match_the_issue);
    tcase_add_test(tc, test_config_accepts_equals_form_and_units);
    tcase_add_test(tc, test_config_rejects_unknown_flags_and_bad_values);
    tcase_add_test(tc, test_config_validation_names_what_is_wrong);
    tcase_add_test(tc, test_config_drain_must_name_a_known_node);
    tcase_add_test(tc, test_config_reports_check_and_help);
    tcase_add_test(tc, test_config_usage_lists_every_flag);
    suite_add_tcase(s, tc);
    tc = tcase_create("file");
    tcase_add_test(tc, test_config_file_sets_keys_nodes_and_drain_marks);
    tcase_add_test(tc, test_config_flags_override_the_file);
    tcase_add_test(tc, test_config_file_errors_name_the_line);
    tcase_add_test(tc, test_config_missing_file_is_an_error);
    tcase_add_test(tc, test_config_source_addrs_are_parsed_or_refused);
    tcase_add_test(tc, test_config_tcp_keepalive_defaults_to_a_minute_and_zero_turns_it_off);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
