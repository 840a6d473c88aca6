/* opts.h - one options table per program serves its flags, its config file, --check and --help.
 *
 * A program describes each setting once, in a static table of rows (name, kind, field, default,
 * help), as nginx's ngx_command_t does. The same row is the flag "--name VALUE" (or
 * "--name=VALUE"), the config-file line "name VALUE", the line of --help (with its default), and
 * for a program that reloads its file, whether the setting may change while it runs.
 *
 * Config-file syntax (one setting per line):
 *     key rest-of-line
 *   - The key is a flag's name without "--". The rest of the line is split into words at
 *     spaces and tabs; most kinds take exactly one word, lists take one or more, and a custom
 *     row (MCPGW_OPTS_WORDS) receives all of them, so lines such as
 *         upstream gh http https://example.invalid/mcp prefix=gh header="Authorization: ${TOK}"
 *     reach the setter of the row "upstream" as five words: gh, http, https://...,
 *     prefix=gh and header=Authorization: <the value of TOK>.
 *   - '#' at the start of a word (outside quotes) begins a comment to the end of the line.
 *   - "..." quotes: inside, spaces and '#' are part of the word. Quotes may sit inside a word
 *     (header="a b" is the one word header=a b). "" is an empty word.
 *   - \" \\ \$ stand for the character itself, inside quotes or not; any other backslash is
 *     kept as it is (paths, regular expressions).
 *   - ${NAME} (NAME: letters, digits, '_') is replaced by the environment variable NAME, in
 *     quotes or not; an unset variable is an error naming the line. A replaced value is never
 *     split into words or expanded again. A '$' not followed by '{' is kept.
 *   - A key given twice: the last one wins. A list key given twice in the file adds to the list;
 *     its first occurrence replaces the default. On the command line a list flag replaces, as
 *     every flag does (the last one wins), so a launcher's extra flags can override its own.
 *     Command-line flags are applied after the file, so they win.
 *   - Errors name the file and line: "node.conf:12: unknown key 'lisen' (did you mean 'listen'?)".
 * Flags: "--name VALUE", "--name=VALUE"; a bool alone ("--quiet") means 1, and takes "0" or "1"
 * as its value only in the forms "--name=0" and "--name 0". "--help"/"-h" and "--check" are
 * built in unless the table has a row of that name. */
#ifndef MCPGW_COMMON_OPTS_H
#define MCPGW_COMMON_OPTS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum mcpgw_opts_kind {
    MCPGW_OPTS_STR,      /* char[size]: the value as given */
    MCPGW_OPTS_UINT,     /* whole number; field of 4 bytes (uint32_t, int, unsigned) or 8 */
    MCPGW_OPTS_SIZE,     /* bytes, with k/m/g suffix (binary); field of 4 or 8 bytes */
    MCPGW_OPTS_DURATION, /* milliseconds, from 500ms, 10s, 2m, 1h (a plain number: ms, or s
                            with MCPGW_OPTS_SECONDS); field of 4 or 8 bytes */
    MCPGW_OPTS_BOOL,     /* 0 or 1; field of 4 bytes */
    MCPGW_OPTS_LEVEL,    /* log level name (debug, info, warn, error); field int */
    MCPGW_OPTS_LIST,     /* comma-separated items; field struct mcpgw_opts_list (owned) */
    MCPGW_OPTS_CUSTOM,   /* the row's setter parses the value's words */
    MCPGW_OPTS_CONFIG,   /* --config FILE: char[size]; the file is read before the other flags */
    MCPGW_OPTS_KIND_COUNT
};
const char *mcpgw_opts_kind_str(enum mcpgw_opts_kind k);

/* Row flags. */
enum {
    MCPGW_OPTS_LIVE = 1,      /* may change while the program runs (see mcpgw_opts_apply_live) */
    MCPGW_OPTS_FILE_ONLY = 2, /* a config-file key, not a flag */
    MCPGW_OPTS_WORDS = 4,     /* CUSTOM: takes any number of words (the rest of a file line; on
                                 the command line one argument split like a file line, without
                                 ${} expansion) */
    MCPGW_OPTS_SECONDS = 8,   /* DURATION: a plain number is seconds ("2.5" = 2500 ms) */
};

/* A list setting: items are owned (freed by mcpgw_opts_free). */
struct mcpgw_opts_list {
    char **v;
    int n;
};

/* Parses one occurrence of a CUSTOM row into cfg. words are the value's words (quotes removed,
 * ${} expanded), borrowed until it returns; first is 1 for the row's first occurrence in this
 * source (the defaults, the file, the command line), so a setter that accumulates (node lines,
 * drills) can start afresh. Returns 0, or -1 with a sentence in err (the caller adds file:line). */
typedef int (*mcpgw_opts_set_fn)(void *cfg, int nwords, char **words, int first, char *err,
                                 size_t errlen);

struct mcpgw_opts_row {
    const char *name;          /* flag without "--", and the config-file key */
    enum mcpgw_opts_kind kind; /* what the value is */
    size_t off, size;          /* the field in the program's config struct (CUSTOM: optional,
                                  compared by mcpgw_opts_apply_live when size > 0) */
    const char *def;           /* default, written as a value; NULL: zero / empty */
    const char *arg;           /* the value's name in --help: "HOST:PORT" */
    const char *help;          /* one sentence for --help */
    uint64_t min, max;         /* UINT, SIZE, DURATION: accepted range when max > 0 */
    mcpgw_opts_set_fn set;     /* CUSTOM */
    unsigned flags;            /* MCPGW_OPTS_LIVE, ... */
};

/* Spec flags. */
enum {
    MCPGW_OPTS_RELOADS = 1, /* the program re-reads its file on SIGHUP: --help marks live rows */
};

/* Everything the parser needs to know about one program. */
struct mcpgw_opts_spec {
    const char *prog; /* "mcpgw-node" */
    const struct mcpgw_opts_row *rows;
    size_t nrows;
    size_t cfg_size;        /* sizeof the program's config struct */
    const char *synopsis;   /* --help text before the options (usage lines, what it does) */
    const char *epilogue;   /* --help text after them (signals, exit status); may be NULL */
    const char *check_help; /* --help line of the built-in --check; NULL: a generic one */
    unsigned flags;         /* MCPGW_OPTS_RELOADS */
};

/* Zero cfg (cfg_size bytes) and apply every row's default. A default that does not parse is a
 * bug in the table: it aborts with a message. */
void mcpgw_opts_defaults(const struct mcpgw_opts_spec *spec, void *cfg);

/* Apply the command line over cfg: first the config file named by --config (if a CONFIG row
 * exists and the flag is given), then every other flag in order. *check and *help report the
 * built-in --check and --help (may be NULL when the table has rows of those names); on --help
 * it returns 0 at once. Does not validate the settings together: that is the program's.
 * Returns 0, or -1 with a sentence in err (file errors name file:line, flag errors the flag). */
int mcpgw_opts_parse_argv(const struct mcpgw_opts_spec *spec, void *cfg, int argc, char **argv,
                          int *check, int *help, char *err, size_t errlen);

/* Apply config-file text (len bytes; no NUL inside) over cfg. origin names it in errors
 * ("node.conf"). Returns 0, or -1 with "origin:line: sentence" in err; cfg may then be half
 * applied (parse into a scratch copy when that matters). */
int mcpgw_opts_parse_text(const struct mcpgw_opts_spec *spec, void *cfg, const char *text,
                          size_t len, const char *origin, char *err, size_t errlen);

/* Read the file at path (at most 1 MiB) and apply it as mcpgw_opts_parse_text does. */
int mcpgw_opts_parse_file(const struct mcpgw_opts_spec *spec, void *cfg, const char *path,
                          char *err, size_t errlen);

/* Called by mcpgw_opts_apply_live for each row whose value differs between the running and
 * the new configuration: applied is 1 when the row is LIVE and the new value was taken, 0 when
 * the row cannot change while the program runs (it needs a restart). */
typedef void (*mcpgw_opts_diff_fn)(void *arg, const struct mcpgw_opts_row *row, int applied);

/* Move the new value of every LIVE row from next into live, and report every row that differs
 * through fn (may be NULL). CONFIG rows are skipped; CUSTOM rows are compared by their field
 * bytes (size > 0) and copied like them. Lists are swapped, so free next with mcpgw_opts_free
 * afterwards. Returns the number of rows applied. */
int mcpgw_opts_apply_live(const struct mcpgw_opts_spec *spec, void *live, void *next,
                          mcpgw_opts_diff_fn fn, void *arg);

/* Write the value of row in cfg as it would be written in a file ("16m", "30s", "a,b"), into
 * buf. CUSTOM rows print their default text. Returns buf. */
const char *mcpgw_opts_format(const struct mcpgw_opts_row *row, const void *cfg, char *buf,
                              size_t len);

/* Print --help: the synopsis, every row with its value in defaults (a cfg after the program's
 * defaults), the config-file syntax, the epilogue. */
void mcpgw_opts_usage(FILE *out, const struct mcpgw_opts_spec *spec, const void *defaults);

/* Free what the rows own (lists) and zero those fields. */
void mcpgw_opts_free(const struct mcpgw_opts_spec *spec, void *cfg);

/* Find a row by name (NULL if none). */
const struct mcpgw_opts_row *mcpgw_opts_find(const struct mcpgw_opts_spec *spec, const char *name);

#endif
