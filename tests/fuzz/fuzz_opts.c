/* fuzz_opts.c - libFuzzer driver for the options parser (common/opts.h): config-file text and
 * command lines. */
#include "common/opts.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fcfg {
    char s[16];
    uint32_t u;
    uint64_t u8;
    uint64_t size;
    uint32_t size4;
    uint32_t dur;
    uint64_t secs;
    uint32_t b;
    int level;
    struct mcpgw_opts_list list;
    int words, calls;
};

static int set_words(void *cfg, int n, char **w, int first, char *err, size_t errlen)
{
    struct fcfg *c = cfg;
    for (int i = 0; i < n; i++)
        if (!w[i] || strlen(w[i]) >= 65536)
            abort();
    if (w[n])
        abort(); /* the word list is NULL-terminated */
    if (n == 3) {
        snprintf(err, errlen, "three words are refused");
        return -1;
    }
    c->words += n;
    c->calls = first ? 1 : c->calls + 1;
    return 0;
}

#define F(f) offsetof(struct fcfg, f), sizeof(((struct fcfg *)0)->f)
static const struct mcpgw_opts_row rows[] = {
    {"s", MCPGW_OPTS_STR, F(s), "x", "S", "a string"},
    {"u", MCPGW_OPTS_UINT, F(u), "1", "N", "a number", .min = 1, .max = 100},
    {"u8", MCPGW_OPTS_UINT, F(u8), NULL, "N", "a 64-bit number"},
    {"size", MCPGW_OPTS_SIZE, F(size), "16m", "SIZE", "a size", .flags = MCPGW_OPTS_LIVE},
    {"size4", MCPGW_OPTS_SIZE, F(size4), NULL, "SIZE", "a 32-bit size"},
    {"dur", MCPGW_OPTS_DURATION, F(dur), "10s", "DUR", "a duration"},
    {"secs", MCPGW_OPTS_DURATION, F(secs), "2", "DUR", "seconds", .flags = MCPGW_OPTS_SECONDS},
    {"b", MCPGW_OPTS_BOOL, F(b), NULL, "0|1", "a bool", .flags = MCPGW_OPTS_LIVE},
    {"level", MCPGW_OPTS_LEVEL, F(level), "info", "LEVEL", "a level"},
    {"list", MCPGW_OPTS_LIST, F(list), "a,b", "LIST", "a list", .flags = MCPGW_OPTS_LIVE},
    {"w", MCPGW_OPTS_CUSTOM, 0, 0, NULL, "WORDS", "words", .set = set_words,
     .flags = MCPGW_OPTS_WORDS},
};
static const struct mcpgw_opts_spec spec = {
    .prog = "fuzz",
    .rows = rows,
    .nrows = sizeof(rows) / sizeof(rows[0]),
    .cfg_size = sizeof(struct fcfg),
    .synopsis = "usage: fuzz\n",
};

/* What holds after any successful parse: strings end inside their field, list items are
 * non-empty and comma-free, and each number written back as a file would write it reads back
 * to the same value. */
static void check_cfg(struct fcfg *c)
{
    char buf[64], err[256];
    if (!memchr(c->s, '\0', sizeof(c->s)))
        abort();
    for (int i = 0; i < c->list.n; i++)
        if (!c->list.v[i][0] || strchr(c->list.v[i], ','))
            abort();
    for (size_t i = 0; i < spec.nrows; i++) {
        const struct mcpgw_opts_row *r = &rows[i];
        struct fcfg again;
        char line[128];
        if (r->kind != MCPGW_OPTS_UINT && r->kind != MCPGW_OPTS_SIZE &&
            r->kind != MCPGW_OPTS_DURATION && r->kind != MCPGW_OPTS_BOOL)
            continue;
        mcpgw_opts_format(r, c, buf, sizeof(buf));
        mcpgw_opts_defaults(&spec, &again);
        snprintf(line, sizeof(line), "%s %s\n", r->name, buf);
        if (mcpgw_opts_parse_text(&spec, &again, line, strlen(line), "f", err, sizeof(err)) < 0 ||
            memcmp((char *)&again + r->off, (char *)c + r->off, r->size) != 0)
            abort();
        mcpgw_opts_free(&spec, &again);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fcfg a, b;
    char err[512];
    static int env;
    if (!env) {
        setenv("FUZZ", "v a l", 1);
        setenv("E", "", 1);
        env = 1;
    }
    if (size < 1)
        return 0;
    mcpgw_opts_defaults(&spec, &a);
    if (data[0] & 1) {
        /* A command line: arguments separated by NUL bytes. */
        char *copy = malloc(size), *argv[64];
        int argc = 0, check, help;
        memcpy(copy, data + 1, size - 1);
        copy[size - 1] = '\0';
        argv[argc++] = (char *)"fuzz";
        for (char *p = copy; p < copy + size - 1 && argc < 63; p += strlen(p) + 1)
            argv[argc++] = p;
        argv[argc] = NULL;
        if (mcpgw_opts_parse_argv(&spec, &a, argc, argv, &check, &help, err, sizeof(err)) == 0)
            check_cfg(&a);
        free(copy);
    } else if (mcpgw_opts_parse_text(&spec, &a, (const char *)data + 1, size - 1, "f.conf", err,
                                     sizeof(err)) == 0) {
        check_cfg(&a);
    } else if (strncmp(err, "f.conf:", 7) != 0) {
        abort(); /* every file error names the origin and line */
    }
    /* A reload from the defaults: whatever differs is reported, live rows are moved. */
    mcpgw_opts_defaults(&spec, &b);
    mcpgw_opts_apply_live(&spec, &b, &a, NULL, NULL);
    mcpgw_opts_free(&spec, &a);
    mcpgw_opts_free(&spec, &b);
    return 0;
}
