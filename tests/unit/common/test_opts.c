/* test_opts.c - the options-table parser: kinds, flags, config-file syntax, reload, --help. */
#include "common/opts.h"

#include "common/log.h"
#include "common/util.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct tcfg {
    char config[256];
    char listen[32];
    uint32_t workers;
    int iworkers;
    uint64_t sessions;
    uint64_t body;
    uint32_t small_size;
    uint32_t timeout_ms;
    uint64_t idle_ms;
    uint64_t secs_ms;
    uint32_t quiet;
    int level;
    struct mcpgw_opts_list hosts;
    char up_words[8][96];
    int up_n, up_calls, up_firsts;
    char nodes[64];
    char tag[16];
};

static int set_upstream(void *cfg, int n, char **w, int first, char *err, size_t errlen)
{
    struct tcfg *c = cfg;
    if (n < 2) {
        snprintf(err, errlen, "expected 'upstream NAME URL [k=v...]'");
        return -1;
    }
    c->up_calls++;
    c->up_firsts += first;
    c->up_n = n < 8 ? n : 8;
    for (int i = 0; i < c->up_n; i++)
        snprintf(c->up_words[i], sizeof(c->up_words[i]), "%s", w[i]);
    return 0;
}

static int set_nodes(void *cfg, int n, char **w, int first, char *err, size_t errlen)
{
    struct tcfg *c = cfg;
    if (!strchr(w[0], '=')) {
        snprintf(err, errlen, "node '%s' is not of the form id=host:port", w[0]);
        return -1;
    }
    snprintf(c->nodes, sizeof(c->nodes), "%s", w[0]);
    return 0;
}

#define F(f) offsetof(struct tcfg, f), sizeof(((struct tcfg *)0)->f)
#define LIVE .flags = MCPGW_OPTS_LIVE
static const struct mcpgw_opts_row rows[] = {
    {"config", MCPGW_OPTS_CONFIG, F(config), NULL, "FILE", "read settings from FILE"},
    {"listen", MCPGW_OPTS_STR, F(listen), "127.0.0.1:8801", "HOST:PORT", "where to listen"},
    {"workers", MCPGW_OPTS_UINT, F(workers), "2", "K", "worker processes", .min = 1, .max = 32},
    {"iworkers", MCPGW_OPTS_UINT, F(iworkers), NULL, "K", "an int field"},
    {"max-sessions", MCPGW_OPTS_UINT, F(sessions), "1000000", "N", "session cap", LIVE},
    {"max-body", MCPGW_OPTS_SIZE, F(body), "16m", "SIZE", "body limit", LIVE},
    {"small", MCPGW_OPTS_SIZE, F(small_size), "4k", "SIZE", "a 32-bit size"},
    {"timeout", MCPGW_OPTS_DURATION, F(timeout_ms), "10s", "DUR", "a timeout", .min = 1},
    {"idle", MCPGW_OPTS_DURATION, F(idle_ms), "30m", "DUR", "idle expiry"},
    {"grace", MCPGW_OPTS_DURATION, F(secs_ms), "2", "D", "plain seconds",
     .flags = MCPGW_OPTS_SECONDS},
    {"quiet", MCPGW_OPTS_BOOL, F(quiet), NULL, "0|1", "no progress line"},
    {"log-level", MCPGW_OPTS_LEVEL, F(level), "info", "LEVEL", "log level", LIVE},
    {"allowed-hosts", MCPGW_OPTS_LIST, F(hosts), "localhost,127.0.0.1", "LIST", "Host names", LIVE},
    {"upstream", MCPGW_OPTS_CUSTOM, 0, 0, NULL, "NAME URL [k=v...]", "an upstream server",
     .set = set_upstream, .flags = MCPGW_OPTS_WORDS | MCPGW_OPTS_FILE_ONLY},
    {"nodes", MCPGW_OPTS_CUSTOM, F(nodes), NULL, "ID=HOST:PORT", "nodes", .set = set_nodes},
    {"tag", MCPGW_OPTS_STR, F(tag), NULL, "T", "a short string"},
};

static const struct mcpgw_opts_spec spec = {
    .prog = "test",
    .rows = rows,
    .nrows = sizeof(rows) / sizeof(rows[0]),
    .cfg_size = sizeof(struct tcfg),
    .synopsis = "usage: test [options]\n",
    .epilogue = "Signals: none.\n",
    .flags = MCPGW_OPTS_RELOADS,
};

static struct tcfg cfg;
static char err[600];
static int check, help;

/* Defaults, then a NULL-terminated argument list (argv[0] is added). */
static int load(const char *const *args)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)"test";
    for (; *args; args++)
        argv[argc++] = (char *)*args;
    err[0] = '\0';
    mcpgw_opts_free(&spec, &cfg);
    mcpgw_opts_defaults(&spec, &cfg);
    return mcpgw_opts_parse_argv(&spec, &cfg, argc, argv, &check, &help, err, sizeof(err));
}

static int text(const char *t)
{
    err[0] = '\0';
    return mcpgw_opts_parse_text(&spec, &cfg, t, strlen(t), "t.conf", err, sizeof(err));
}

static const char *write_file(const char *t)
{
    static char path[64];
    int fd;
    snprintf(path, sizeof(path), "/tmp/mcpgw-opts-XXXXXX");
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, t, strlen(t)), (ssize_t)strlen(t));
    close(fd);
    return path;
}

static void setup(void)
{
    memset(&cfg, 0, sizeof(cfg));
    mcpgw_opts_defaults(&spec, &cfg);
}

static void teardown(void)
{
    mcpgw_opts_free(&spec, &cfg);
}

START_TEST(test_opts_defaults_fill_every_kind)
{
    ck_assert_str_eq(cfg.listen, "127.0.0.1:8801");
    ck_assert_uint_eq(cfg.workers, 2);
    ck_assert_uint_eq(cfg.sessions, 1000000);
    ck_assert_uint_eq(cfg.body, 16u << 20);
    ck_assert_uint_eq(cfg.small_size, 4096);
    ck_assert_uint_eq(cfg.timeout_ms, 10000);
    ck_assert_uint_eq(cfg.idle_ms, 30 * 60000);
    ck_assert_uint_eq(cfg.secs_ms, 2000);
    ck_assert_uint_eq(cfg.quiet, 0);
    ck_assert_int_eq(cfg.level, MCPGW_LOG_INFO);
    ck_assert_int_eq(cfg.hosts.n, 2);
    ck_assert_str_eq(cfg.hosts.v[1], "127.0.0.1");
    ck_assert_str_eq(cfg.config, "");
}
END_TEST

START_TEST(test_opts_flags_take_both_forms_and_bools_stand_alone)
{
    const char *a[] = {"--listen",   "0.0.0.0:1", "--workers=3",       "--quiet",
                       "--timeout",  "1500ms",    "--grace",           "2.5",
                       "--iworkers", "7",         "--log-level=debug", NULL};
    const char *b[] = {"--quiet", "0", "--max-body", "1g", NULL};
    const char *c[] = {"--quiet=1", "--tag", "--listen", NULL}; /* a value may start with -- */
    ck_assert_int_eq(load(a), 0);
    ck_assert_str_eq(cfg.listen, "0.0.0.0:1");
    ck_assert_uint_eq(cfg.workers, 3);
    ck_assert_uint_eq(cfg.quiet, 1);
    ck_assert_uint_eq(cfg.timeout_ms, 1500);
    ck_assert_uint_eq(cfg.secs_ms, 2500);
    ck_assert_int_eq(cfg.iworkers, 7);
    ck_assert_int_eq(cfg.level, MCPGW_LOG_DEBUG);
    ck_assert_int_eq(check, 0);
    ck_assert_int_eq(help, 0);
    ck_assert_int_eq(load(b), 0);
    ck_assert_uint_eq(cfg.quiet, 0);
    ck_assert_uint_eq(cfg.body, 1u << 30);
    ck_assert_int_eq(load(c), 0);
    ck_assert_uint_eq(cfg.quiet, 1);
    ck_assert_str_eq(cfg.tag, "--listen");
}
END_TEST

START_TEST(test_opts_flag_errors_name_the_flag)
{
    const char *unknown[] = {"--lisen", "x", NULL};
    const char *positional[] = {"stray", NULL};
    const char *novalue[] = {"--listen", NULL};
    const char *notnum[] = {"--workers", "two", NULL};
    const char *range[] = {"--workers", "33", NULL};
    const char *bool2[] = {"--quiet=2", NULL};
    const char *level[] = {"--log-level", "loud", NULL};
    const char *fileonly[] = {"--upstream", "a b", NULL};
    const char *custom[] = {"--nodes", "n1@x", NULL};
    const char *toolong[] = {"--tag", "0123456789abcdefghij", NULL};
    ck_assert_int_eq(load(unknown), -1);
    ck_assert_ptr_nonnull(strstr(err, "unknown flag '--lisen'"));
    ck_assert_ptr_nonnull(strstr(err, "did you mean '--listen'"));
    ck_assert_int_eq(load(positional), -1);
    ck_assert_ptr_nonnull(strstr(err, "'stray'"));
    ck_assert_int_eq(load(novalue), -1);
    ck_assert_ptr_nonnull(strstr(err, "--listen needs a value HOST:PORT"));
    ck_assert_int_eq(load(notnum), -1);
    ck_assert_ptr_nonnull(strstr(err, "--workers wants a whole number, not 'two'"));
    ck_assert_int_eq(load(range), -1);
    ck_assert_ptr_nonnull(strstr(err, "--workers must be between 1 and 32"));
    ck_assert_int_eq(load(bool2), -1);
    ck_assert_ptr_nonnull(strstr(err, "--quiet wants 0 or 1"));
    ck_assert_int_eq(load(level), -1);
    ck_assert_ptr_nonnull(strstr(err, "debug, info, warn or error"));
    ck_assert_int_eq(load(fileonly), -1);
    ck_assert_ptr_nonnull(strstr(err, "unknown flag '--upstream'"));
    ck_assert_int_eq(load(custom), -1);
    ck_assert_ptr_nonnull(strstr(err, "--nodes: node 'n1@x' is not of the form id=host:port"));
    ck_assert_int_eq(load(toolong), -1);
    ck_assert_ptr_nonnull(strstr(err, "too long (at most 15 bytes)"));
}
END_TEST

START_TEST(test_opts_numbers_out_of_their_field_are_refused)
{
    const char *wrap[] = {"--max-body", "17179869184g", NULL}; /* 2^34 GiB: wraps 64 bits */
    const char *small[] = {"--small", "4g", NULL};             /* over a 32-bit field */
    const char *huge[] = {"--idle", "1e300h", NULL};
    const char *neg[] = {"--max-sessions", "-1", NULL};
    const char *imax[] = {"--iworkers", "2147483648", NULL};
    ck_assert_int_eq(load(wrap), -1);
    ck_assert_ptr_nonnull(strstr(err, "--max-body wants a size"));
    ck_assert_int_eq(load(small), -1);
    ck_assert_ptr_nonnull(strstr(err, "--small must be between 0 and"));
    ck_assert_int_eq(load(huge), -1);
    ck_assert_ptr_nonnull(strstr(err, "--idle wants a duration"));
    ck_assert_int_eq(load(neg), -1);
    ck_assert_int_eq(load(imax), -1);
}
END_TEST

START_TEST(test_opts_check_and_help_are_built_in)
{
    const char *a[] = {"--check", "--workers", "4", NULL};
    const char *b[] = {"--workers", "nonsense", "--help", NULL};
    const char *c[] = {"-h", NULL};
    ck_assert_int_eq(load(a), 0);
    ck_assert_int_eq(check, 1);
    ck_assert_uint_eq(cfg.workers, 4);
    /* --help wins over errors anywhere on the line */
    ck_assert_int_eq(load(b), 0);
    ck_assert_int_eq(help, 1);
    ck_assert_int_eq(load(c), 0);
    ck_assert_int_eq(help, 1);
}
END_TEST

START_TEST(test_opts_file_sets_keys_and_flags_override_it)
{
    const char *path = write_file("# test\n"
                                  "listen 127.0.0.1:9100\n"
                                  "workers 5   # five\n"
                                  "\n"
                                  "   quiet\n"
                                  "max-body 8m\r\n"
                                  "tag file\n");
    const char *a[] = {"--workers", "6", "--config", path, NULL};
    ck_assert_int_eq(load(a), 0);
    unlink(path);
    ck_assert_str_eq(cfg.config, path);
    ck_assert_str_eq(cfg.listen, "127.0.0.1:9100");
    ck_assert_uint_eq(cfg.workers, 6); /* the flag, though it came first */
    ck_assert_uint_eq(cfg.quiet, 1);
    ck_assert_uint_eq(cfg.body, 8u << 20);
    ck_assert_str_eq(cfg.tag, "file");
}
END_TEST

START_TEST(test_opts_file_errors_name_file_and_line)
{
    const char *missing[] = {"--config", "/nonexistent/x.conf", NULL};
    ck_assert_int_eq(text("workers 2\n\n# c\nlisen 127.0.0.1:1\n"), -1);
    ck_assert_str_eq(err, "t.conf:4: unknown key 'lisen' (did you mean 'listen'?)");
    ck_assert_int_eq(text("workers\n"), -1);
    ck_assert_str_eq(err, "t.conf:1: workers takes exactly one value");
    ck_assert_int_eq(text("listen a\nworkers 1 2\n"), -1);
    ck_assert_str_eq(err, "t.conf:2: workers takes exactly one value");
    ck_assert_int_eq(text("timeout soon\n"), -1);
    ck_assert_ptr_nonnull(strstr(err, "t.conf:1: timeout wants a duration"));
    ck_assert_int_eq(text("config other.conf\n"), -1);
    ck_assert_ptr_nonnull(strstr(err, "t.conf:1: 'config' is a command-line flag"));
    ck_assert_int_eq(text("nodes n1\n"), -1);
    ck_assert_str_eq(err, "t.conf:1: node 'n1' is not of the form id=host:port");
    ck_assert_int_eq(text("frobnicate 1\n"), -1);
    ck_assert_str_eq(err, "t.conf:1: unknown key 'frobnicate'");
    ck_assert_int_eq(load(missing), -1);
    ck_assert_ptr_nonnull(strstr(err, "cannot open config file /nonexistent/x.conf"));
}
END_TEST

START_TEST(test_opts_file_refuses_nul_bytes_long_lines_and_open_quotes)
{
    static const char nul[] = "workers 2\nlisten a\0b\n";
    char *longline = xmalloc(9000);
    memset(longline, 'x', 8999);
    longline[8999] = '\0';
    ck_assert_int_eq(
        mcpgw_opts_parse_text(&spec, &cfg, nul, sizeof(nul) - 1, "n.conf", err, sizeof(err)), -1);
    ck_assert_str_eq(err, "n.conf:2: a NUL byte in the line");
    ck_assert_int_eq(text(longline), -1);
    ck_assert_ptr_nonnull(strstr(err, "t.conf:1: line too long"));
    free(longline);
    ck_assert_int_eq(text("tag \"open\n"), -1);
    ck_assert_str_eq(err, "t.conf:1: a quote (\") is not closed");
    ck_assert_int_eq(text("upstream a b c d e f g h i j k l m n o p q r s t u v w x y z 1 2 3 4 5 "
                          "6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 "
                          "31 32 33 34 35 36 37 38 39 40\n"),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, "too many words"));
}
END_TEST

START_TEST(test_opts_quotes_escapes_and_comments)
{
    ck_assert_int_eq(text("listen \"a b\"  # spaces inside quotes\n"), 0);
    ck_assert_str_eq(cfg.listen, "a b");
    ck_assert_int_eq(text("listen x#y\n"), 0); /* '#' inside a word is not a comment */
    ck_assert_str_eq(cfg.listen, "x#y");
    ck_assert_int_eq(text("listen \"#\\\"q\\\\\\$\"\n"), 0);
    ck_assert_str_eq(cfg.listen, "#\"q\\$");
    ck_assert_int_eq(text("listen c:\\dir\\n\n"), 0); /* other backslashes stay */
    ck_assert_str_eq(cfg.listen, "c:\\dir\\n");
    ck_assert_int_eq(text("listen \"\"\n"), 0);
    ck_assert_str_eq(cfg.listen, "");
    ck_assert_int_eq(text("listen $HOME:1\n"), 0); /* '$' without '{' is kept */
    ck_assert_str_eq(cfg.listen, "$HOME:1");
    ck_assert_int_eq(text("\xef\xbb\xbflisten bom\n"), 0);
    ck_assert_str_eq(cfg.listen, "bom");
}
END_TEST

START_TEST(test_opts_env_vars_expand_and_an_unset_one_names_the_line)
{
    setenv("MCPGW_T_TOKEN", "s3cr et", 1);
    setenv("MCPGW_T_EMPTY", "", 1);
    unsetenv("MCPGW_T_NONE");
    ck_assert_int_eq(text("tag ${MCPGW_T_EMPTY}x\n"), 0);
    ck_assert_str_eq(cfg.tag, "x");
    /* an expanded value is one word, spaces and all, and is not expanded again */
    setenv("MCPGW_T_NESTED", "${MCPGW_T_TOKEN} #", 1);
    ck_assert_int_eq(text("listen ${MCPGW_T_NESTED}\n"), 0);
    ck_assert_str_eq(cfg.listen, "${MCPGW_T_TOKEN} #");
    ck_assert_int_eq(text("listen \"[${MCPGW_T_TOKEN}]\"\n"), 0);
    ck_assert_str_eq(cfg.listen, "[s3cr et]");
    ck_assert_int_eq(text("workers 3\n\nlisten ${MCPGW_T_NONE}\n"), -1);
    ck_assert_str_eq(err, "t.conf:3: ${MCPGW_T_NONE} is not set in the environment");
    ck_assert_int_eq(text("listen ${MCPGW_T_TOKEN\n"), -1);
    ck_assert_ptr_nonnull(strstr(err, "t.conf:1: '${' must be followed"));
    ck_assert_int_eq(text("listen ${}\n"), -1);
    ck_assert_ptr_nonnull(strstr(err, "is not a variable name"));
    ck_assert_int_eq(text("listen ${1X}\n"), -1);
    ck_assert_int_eq(text("listen ${A-B}\n"), -1);
}
END_TEST

START_TEST(test_opts_custom_setter_gets_the_rest_of_the_line_as_words)
{
    setenv("GH_TOKEN", "t0k", 1);
    ck_assert_int_eq(text("upstream github http https://example.invalid/mcp prefix=gh "
                          "header=\"Authorization: Bearer ${GH_TOKEN}\"   # federated\n"),
                     0);
    ck_assert_int_eq(cfg.up_calls, 1);
    ck_assert_int_eq(cfg.up_n, 5);
    ck_assert_str_eq(cfg.up_words[0], "github");
    ck_assert_str_eq(cfg.up_words[1], "http");
    ck_assert_str_eq(cfg.up_words[2], "https://example.invalid/mcp");
    ck_assert_str_eq(cfg.up_words[3], "prefix=gh");
    ck_assert_str_eq(cfg.up_words[4], "header=Authorization: Bearer t0k");
    ck_assert_int_eq(text("upstream a\n"), -1);
    ck_assert_str_eq(err, "t.conf:1: expected 'upstream NAME URL [k=v...]'");
}
END_TEST

START_TEST(test_opts_repeated_keys_last_wins_and_file_lists_add_up)
{
    const char *path = write_file("allowed-hosts a.example\n"
                                  "allowed-hosts b.example, c.example\n" /* words and commas */
                                  "workers 3\nworkers 4\n"
                                  "upstream one x\nupstream two y\n");
    const char *flags[] = {"--config", path, NULL};
    const char *replace[] = {"--config",    path, "--allowed-hosts", "d.example", "--allowed-hosts",
                             "e.example,,", NULL};
    ck_assert_int_eq(load(flags), 0);
    ck_assert_uint_eq(cfg.workers, 4);
    ck_assert_int_eq(cfg.hosts.n, 3); /* the first line replaced the default list */
    ck_assert_str_eq(cfg.hosts.v[0], "a.example");
    ck_assert_str_eq(cfg.hosts.v[2], "c.example");
    ck_assert_int_eq(cfg.up_calls, 2);
    ck_assert_int_eq(cfg.up_firsts, 1);
    ck_assert_str_eq(cfg.up_words[0], "two");
    ck_assert_int_eq(load(replace), 0);
    unlink(path);
    ck_assert_int_eq(cfg.hosts.n, 1); /* each list flag replaced: the last one wins */
    ck_assert_str_eq(cfg.hosts.v[0], "e.example");
    ck_assert_int_eq(text("allowed-hosts \"\"\n"), 0); /* an empty list */
    ck_assert_int_eq(cfg.hosts.n, 0);
}
END_TEST

struct diffs {
    char names[512];
};

static void on_diff(void *arg, const struct mcpgw_opts_row *row, int applied)
{
    struct diffs *d = arg;
    size_t used = strlen(d->names);
    snprintf(d->names + used, sizeof(d->names) - used, "%s%s=%s", used ? " " : "", row->name,
             applied ? "live" : "restart");
}

START_TEST(test_opts_apply_live_takes_live_rows_and_reports_the_rest)
{
    static const char t[] = "listen 0.0.0.0:1\nmax-sessions 5\nlog-level debug\n"
                            "allowed-hosts x.example\nmax-body 16m\n";
    struct tcfg next;
    struct diffs d = {""};
    mcpgw_opts_defaults(&spec, &next);
    ck_assert_int_eq(
        mcpgw_opts_parse_text(&spec, &next, t, sizeof(t) - 1, "n.conf", err, sizeof(err)), 0);
    ck_assert_int_eq(mcpgw_opts_apply_live(&spec, &cfg, &next, on_diff, &d), 3);
    ck_assert_str_eq(d.names, "listen=restart max-sessions=live log-level=live allowed-hosts=live");
    ck_assert_str_eq(cfg.listen, "127.0.0.1:8801"); /* not applied */
    ck_assert_uint_eq(cfg.sessions, 5);
    ck_assert_int_eq(cfg.level, MCPGW_LOG_DEBUG);
    ck_assert_int_eq(cfg.hosts.n, 1);
    ck_assert_str_eq(cfg.hosts.v[0], "x.example");
    ck_assert_int_eq(next.hosts.n, 2); /* the old list, for the caller to free */
    mcpgw_opts_free(&spec, &next);
    ck_assert_ptr_null(next.hosts.v);
    /* nothing differs: nothing reported */
    mcpgw_opts_defaults(&spec, &next);
    memcpy(next.listen, cfg.listen, sizeof(cfg.listen));
    next.sessions = 5;
    next.level = MCPGW_LOG_DEBUG;
    mcpgw_opts_free(&spec, &next);
    next.hosts.v = xcalloc(1, sizeof(char *));
    next.hosts.v[0] = xstrdup("x.example");
    next.hosts.n = 1;
    d.names[0] = '\0';
    ck_assert_int_eq(mcpgw_opts_apply_live(&spec, &cfg, &next, on_diff, &d), 0);
    ck_assert_str_eq(d.names, "");
    mcpgw_opts_free(&spec, &next);
}
END_TEST

START_TEST(test_opts_usage_lists_rows_with_defaults_and_the_file_syntax)
{
    char buf[8192] = "";
    FILE *f = fmemopen(buf, sizeof(buf) - 1, "w");
    mcpgw_opts_usage(f, &spec, &cfg);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(buf, "usage: test [options]"));
    ck_assert_ptr_nonnull(strstr(buf, "--listen HOST:PORT"));
    ck_assert_ptr_nonnull(strstr(buf, "where to listen [127.0.0.1:8801]"));
    ck_assert_ptr_nonnull(strstr(buf, "body limit [16m] (reloads)"));
    ck_assert_ptr_nonnull(strstr(buf, "idle expiry [30m]"));
    ck_assert_ptr_nonnull(strstr(buf, "Host names [localhost,127.0.0.1] (reloads)"));
    ck_assert_ptr_nonnull(strstr(buf, "log level [info]"));
    ck_assert_ptr_nonnull(strstr(buf, "--check"));
    ck_assert_ptr_nonnull(strstr(buf, "--help"));
    ck_assert_ptr_nonnull(strstr(buf, "Config-file keys only:\n  upstream NAME URL"));
    ck_assert_ptr_nonnull(strstr(buf, "the last one wins"));
    ck_assert_ptr_nonnull(strstr(buf, "${NAME}"));
    ck_assert_ptr_nonnull(strstr(buf, "Signals: none."));
}
END_TEST

START_TEST(test_opts_format_writes_values_as_a_file_would)
{
    char b[64];
    cfg.timeout_ms = 1500;
    ck_assert_str_eq(mcpgw_opts_format(mcpgw_opts_find(&spec, "timeout"), &cfg, b, sizeof(b)),
                     "1500ms");
    cfg.idle_ms = 7200000;
    ck_assert_str_eq(mcpgw_opts_format(mcpgw_opts_find(&spec, "idle"), &cfg, b, sizeof(b)), "2h");
    cfg.body = 1000;
    ck_assert_str_eq(mcpgw_opts_format(mcpgw_opts_find(&spec, "max-body"), &cfg, b, sizeof(b)),
                     "1000");
    ck_assert_str_eq(mcpgw_opts_kind_str(MCPGW_OPTS_LIST), "list");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("opts");
    TCase *tc = tcase_create("opts");
    SRunner *sr;
    int failed;
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_opts_defaults_fill_every_kind);
    tcase_add_test(tc, test_opts_flags_take_both_forms_and_bools_stand_alone);
    tcase_add_test(tc, test_opts_flag_errors_name_the_flag);
    tcase_add_test(tc, test_opts_numbers_out_of_their_field_are_refused);
    tcase_add_test(tc, test_opts_check_and_help_are_built_in);
    tcase_add_test(tc, test_opts_file_sets_keys_and_flags_override_it);
    tcase_add_test(tc, test_opts_file_errors_name_file_and_line);
    tcase_add_test(tc, test_opts_file_refuses_nul_bytes_long_lines_and_open_quotes);
    tcase_add_test(tc, test_opts_quotes_escapes_and_comments);
    tcase_add_test(tc, test_opts_env_vars_expand_and_an_unset_one_names_the_line);
    tcase_add_test(tc, test_opts_custom_setter_gets_the_rest_of_the_line_as_words);
    tcase_add_test(tc, test_opts_repeated_keys_last_wins_and_file_lists_add_up);
    tcase_add_test(tc, test_opts_apply_live_takes_live_rows_and_reports_the_rest);
    tcase_add_test(tc, test_opts_usage_lists_rows_with_defaults_and_the_file_syntax);
    tcase_add_test(tc, test_opts_format_writes_values_as_a_file_would);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
