/* opts.c - the options-table parser behind every program's flags, config file and --help. */
#include "common/opts.h"

#include "common/log.h"
#include "common/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINE     8192  /* raw bytes of one config-file line */
#define MAX_EXPANDED 65536 /* bytes of one line's words after ${} expansion */
#define MAX_WORDS    64    /* words on one line */
#define MAX_FILE     (1024 * 1024)

static const char *const kind_names[MCPGW_OPTS_KIND_COUNT] = {
    "string", "uint", "size", "duration", "bool", "level", "list", "custom", "config"};

const char *mcpgw_opts_kind_str(enum mcpgw_opts_kind k)
{
    return (unsigned)k < MCPGW_OPTS_KIND_COUNT ? kind_names[k] : "?";
}

/* ---- words: one line split as the header comment describes ---- */

struct words {
    char *buf; /* the words, each NUL-terminated */
    size_t len, cap;
    size_t start[MAX_WORDS];
    int n;
    char *v[MAX_WORDS + 1];
};

static int put_bytes(struct words *w, const char *p, size_t n, char *err, size_t errlen)
{
    if (w->len + n + 1 > MAX_EXPANDED) {
        snprintf(err, errlen, "line too long once expanded (at most %d bytes)", MAX_EXPANDED);
        return -1;
    }
    if (w->len + n + 1 > w->cap) {
        while (w->len + n + 1 > w->cap)
            w->cap = w->cap ? w->cap * 2 : 256;
        w->buf = xrealloc(w->buf, w->cap);
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
    return 0;
}

static int begin_word(struct words *w, char *err, size_t errlen)
{
    if (w->n == MAX_WORDS) {
        snprintf(err, errlen, "too many words (at most %d)", MAX_WORDS);
        return -1;
    }
    w->start[w->n++] = w->len;
    return 0;
}

/* ${NAME} at s[0..len): its value appended to the current word; *used gets the bytes read. */
static int expand_var(struct words *w, const char *s, size_t len, size_t *used, char *err,
                      size_t errlen)
{
    size_t i = 2;
    char name[128];
    const char *val;
    while (i < len && (isalnum((unsigned char)s[i]) || s[i] == '_'))
        i++;
    if (i >= len || s[i] != '}') {
        snprintf(err, errlen, "'${' must be followed by a variable name and '}'");
        return -1;
    }
    if (i == 2 || i - 2 >= sizeof(name) || isdigit((unsigned char)s[2])) {
        snprintf(err, errlen, "'%.*s' is not a variable name (letters, digits, '_')",
                 (int)(i + 1 < 64 ? i + 1 : 64), s);
        return -1;
    }
    memcpy(name, s + 2, i - 2);
    name[i - 2] = '\0';
    val = getenv(name);
    if (!val) {
        snprintf(err, errlen, "${%s} is not set in the environment", name);
        return -1;
    }
    *used = i + 1;
    return put_bytes(w, val, strlen(val), err, errlen);
}

/* Split s[0..len) into words: quotes, escapes, comments and (when expand) ${NAME}. */
static int split_words(const char *s, size_t len, int expand, struct words *w, char *err,
                       size_t errlen)
{
    size_t i = 0;
    int in_word = 0, quoted = 0;
    w->len = 0;
    w->n = 0;
    while (i < len) {
        char c = s[i];
        if (!quoted && (c == ' ' || c == '\t' || c == '\r')) {
            if (in_word && put_bytes(w, "", 1, err, errlen) < 0) /* the word's NUL */
                return -1;
            in_word = 0;
            i++;
            continue;
        }
        if (!quoted && !in_word && c == '#')
            break;
        if (!in_word) {
            if (begin_word(w, err, errlen) < 0)
                return -1;
            in_word = 1;
        }
        if (c == '"') {
            quoted = !quoted;
            i++;
        } else if (c == '\\' && i + 1 < len &&
                   (s[i + 1] == '"' || s[i + 1] == '\\' || s[i + 1] == '$')) {
            if (put_bytes(w, s + i + 1, 1, err, errlen) < 0)
                return -1;
            i += 2;
        } else if (expand && c == '$' && i + 1 < len && s[i + 1] == '{') {
            size_t used;
            if (expand_var(w, s + i, len - i, &used, err, errlen) < 0)
                return -1;
            i += used;
        } else {
            if (put_bytes(w, &c, 1, err, errlen) < 0)
                return -1;
            i++;
        }
    }
    if (quoted) {
        snprintf(err, errlen, "a quote (\") is not closed");
        return -1;
    }
    if (in_word && put_bytes(w, "", 1, err, errlen) < 0)
        return -1;
    for (int k = 0; k < w->n; k++)
        w->v[k] = w->buf + w->start[k];
    w->v[w->n] = NULL;
    return 0;
}

/* ---- rows ---- */

enum mode { FROM_FILE, FROM_FLAG };

static const struct mcpgw_opts_row *find_row(const struct mcpgw_opts_spec *spec, const char *name,
                                             size_t len, enum mode m)
{
    for (size_t i = 0; i < spec->nrows; i++) {
        const struct mcpgw_opts_row *r = &spec->rows[i];
        if (strlen(r->name) != len || memcmp(r->name, name, len) != 0)
            continue;
        if (m == FROM_FLAG && (r->flags & MCPGW_OPTS_FILE_ONLY))
            continue;
        return r;
    }
    return NULL;
}

const struct mcpgw_opts_row *mcpgw_opts_find(const struct mcpgw_opts_spec *spec, const char *name)
{
    for (size_t i = 0; i < spec->nrows; i++)
        if (strcmp(spec->rows[i].name, name) == 0)
            return &spec->rows[i];
    return NULL;
}

/* Edit distance, for "did you mean": names are short. */
static size_t distance(const char *a, size_t al, const char *b)
{
    size_t bl = strlen(b), prev[65], cur[65];
    if (al > 64 || bl > 64)
        return 99;
    for (size_t j = 0; j <= bl; j++)
        prev[j] = j;
    for (size_t i = 1; i <= al; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= bl; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]), del = prev[j] + 1,
                   ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, sizeof(prev));
    }
    return prev[bl];
}

/* " (did you mean 'listen'?)" for a near miss, or "". */
static void suggest(const struct mcpgw_opts_spec *spec, const char *name, size_t len, enum mode m,
                    const char *dashes, char *out, size_t outlen)
{
    size_t best = 3;
    const char *pick = NULL;
    out[0] = '\0';
    for (size_t i = 0; i < spec->nrows; i++) {
        const struct mcpgw_opts_row *r = &spec->rows[i];
        size_t d;
        if ((m == FROM_FLAG && (r->flags & MCPGW_OPTS_FILE_ONLY)) ||
            (m == FROM_FILE && r->kind == MCPGW_OPTS_CONFIG))
            continue;
        d = distance(name, len, r->name);
        if (d < best && d < len) {
            best = d;
            pick = r->name;
        }
    }
    if (pick)
        snprintf(out, outlen, " (did you mean '%s%s'?)", dashes, pick);
}

static void put_uint(void *field, size_t size, uint64_t v)
{
    if (size == 8) {
        memcpy(field, &v, 8);
    } else {
        uint32_t x = (uint32_t)v;
        memcpy(field, &x, 4);
    }
}

static uint64_t get_uint(const void *field, size_t size)
{
    if (size == 8) {
        uint64_t v;
        memcpy(&v, field, 8);
        return v;
    } else {
        uint32_t x;
        memcpy(&x, field, 4);
        return x;
    }
}

struct unit {
    uint64_t unit;
    const char *suffix;
};

static void format_number(const struct mcpgw_opts_row *r, uint64_t v, char *buf, size_t len)
{
    static const struct unit sizes[] = {{1u << 30, "g"}, {1u << 20, "m"}, {1u << 10, "k"}},
                             durations[] = {{3600000, "h"}, {60000, "m"}, {1000, "s"}};
    if (r->kind == MCPGW_OPTS_SIZE || r->kind == MCPGW_OPTS_DURATION) {
        const struct unit *u = r->kind == MCPGW_OPTS_SIZE ? sizes : durations;
        for (int i = 0; i < 3; i++)
            if (v && v % u[i].unit == 0) {
                snprintf(buf, len, "%llu%s", (unsigned long long)(v / u[i].unit), u[i].suffix);
                return;
            }
        snprintf(buf, len, "%llu%s", (unsigned long long)v,
                 r->kind == MCPGW_OPTS_DURATION ? "ms" : "");
        return;
    }
    snprintf(buf, len, "%llu", (unsigned long long)v);
}

/* A duration: the shared parser, or plain seconds for MCPGW_OPTS_SECONDS rows. */
static int parse_duration(const struct mcpgw_opts_row *r, const char *s, uint64_t *ms)
{
    if (r->flags & MCPGW_OPTS_SECONDS) {
        char *end;
        double v;
        errno = 0;
        v = strtod(s, &end);
        if (isdigit((unsigned char)*s) && end != s && *end == '\0') {
            if (errno || !(v >= 0 && v < 1e15))
                return -1;
            *ms = (uint64_t)(v * 1000.0);
            return 0;
        }
    }
    return mcpgw_parse_duration_ms(s, ms);
}

/* Parse a number of kind UINT, SIZE or DURATION and check the row's range. */
static int set_number(const struct mcpgw_opts_row *r, void *field, const char *v, const char *who,
                      char *err, size_t errlen)
{
    uint64_t x, lo = r->min, hi = r->max;
    int bad = 0;
    switch (r->kind) {
    case MCPGW_OPTS_UINT: {
        char *end;
        errno = 0;
        x = strtoull(v, &end, 10);
        bad = errno || end == v || *end || !isdigit((unsigned char)*v);
        if (bad)
            snprintf(err, errlen, "%s wants a whole number, not '%.100s'", who, v);
        break;
    }
    case MCPGW_OPTS_SIZE:
        bad = mcpgw_parse_size(v, &x) < 0;
        if (bad)
            snprintf(err, errlen, "%s wants a size such as 64k or 16m, not '%.100s'", who, v);
        break;
    default:
        bad = parse_duration(r, v, &x) < 0;
        if (bad)
            snprintf(err, errlen, "%s wants a duration such as 500ms, 10s or 2m, not '%.100s'", who,
                     v);
        break;
    }
    if (bad)
        return -1;
    if (!hi)
        hi = r->size == 8 ? UINT64_MAX : r->kind == MCPGW_OPTS_UINT ? INT32_MAX : UINT32_MAX;
    if (x < lo || x > hi) {
        char a[32], b[32];
        format_number(r, lo, a, sizeof(a));
        format_number(r, hi, b, sizeof(b));
        snprintf(err, errlen, "%s must be between %s and %s, not '%.100s'", who, a, b, v);
        return -1;
    }
    put_uint(field, r->size, x);
    return 0;
}

static void list_clear(struct mcpgw_opts_list *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static void list_add(struct mcpgw_opts_list *l, const char *item, size_t len)
{
    l->v = xrealloc(l->v, (size_t)(l->n + 1) * sizeof(*l->v));
    l->v[l->n++] = xstrndup(item, len);
}

/* Store one occurrence of row r (its value words) into cfg. who names it in errors. */
static int set_value(const struct mcpgw_opts_row *r, void *cfg, int nwords, char **words, int first,
                     const char *who, char *err, size_t errlen)
{
    char *field = (char *)cfg + r->off;
    const char *v = nwords > 0 ? words[0] : "";
    int one = nwords == 1;
    if (r->kind == MCPGW_OPTS_BOOL && nwords == 0)
        v = "1", one = 1;
    if (r->kind == MCPGW_OPTS_LIST) {
        if (nwords < 1) {
            snprintf(err, errlen, "%s takes one or more values", who);
            return -1;
        }
    } else if (r->kind == MCPGW_OPTS_CUSTOM && (r->flags & MCPGW_OPTS_WORDS)) {
        /* any number of words: the setter decides */
    } else if (!one) {
        snprintf(err, errlen, "%s takes exactly one value", who);
        return -1;
    }
    switch (r->kind) {
    case MCPGW_OPTS_STR:
    case MCPGW_OPTS_CONFIG:
        if (strlen(v) >= r->size) {
            snprintf(err, errlen, "value of %s is too long (at most %zu bytes)", who, r->size - 1);
            return -1;
        }
        memcpy(field, v, strlen(v) + 1);
        return 0;
    case MCPGW_OPTS_UINT:
    case MCPGW_OPTS_SIZE:
    case MCPGW_OPTS_DURATION:
        return set_number(r, field, v, who, err, errlen);
    case MCPGW_OPTS_BOOL:
        if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0) {
            snprintf(err, errlen, "%s wants 0 or 1, not '%.100s'", who, v);
            return -1;
        }
        put_uint(field, r->size, (uint64_t)(v[0] - '0'));
        return 0;
    case MCPGW_OPTS_LEVEL: {
        int l = mcpgw_log_level_parse(v);
        if (l < 0) {
            snprintf(err, errlen, "%s wants debug, info, warn or error, not '%.100s'", who, v);
            return -1;
        }
        memcpy(field, &l, sizeof(l));
        return 0;
    }
    case MCPGW_OPTS_LIST: {
        struct mcpgw_opts_list *l = (struct mcpgw_opts_list *)(void *)field;
        if (first)
            list_clear(l);
        for (int i = 0; i < nwords; i++)
            for (const char *p = words[i]; *p;) {
                size_t n = strcspn(p, ",");
                if (n)
                    list_add(l, p, n);
                p += n + (p[n] == ',');
            }
        return 0;
    }
    case MCPGW_OPTS_CUSTOM:
        return r->set(cfg, nwords, words, first, err, errlen);
    default:
        snprintf(err, errlen, "%s has no parser", who);
        return -1;
    }
}

/* ---- config-file text ---- */

int mcpgw_opts_parse_text(const struct mcpgw_opts_spec *spec, void *cfg, const char *text,
                          size_t len, const char *origin, char *err, size_t errlen)
{
    const char *p = text, *end = text + len;
    unsigned char *seen = xcalloc(spec->nrows + 1, 1);
    struct words w = {0};
    int lineno = 0, rc = -1;
    char e[512];

    if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0) /* a UTF-8 byte order mark */
        p += 3;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        const struct mcpgw_opts_row *r;
        const char *key;

        lineno++;
        if (memchr(p, '\0', n)) {
            snprintf(e, sizeof(e), "a NUL byte in the line");
            goto bad;
        }
        if (n > MAX_LINE) {
            snprintf(e, sizeof(e), "line too long (at most %d bytes)", MAX_LINE);
            goto bad;
        }
        if (split_words(p, n, 1, &w, e, sizeof(e)) < 0)
            goto bad;
        p += n + (nl ? 1 : 0);
        if (w.n == 0)
            continue;
        key = w.v[0];
        r = find_row(spec, key, strlen(key), FROM_FILE);
        if (!r) {
            char hint[96];
            suggest(spec, key, strlen(key), FROM_FILE, "", hint, sizeof(hint));
            snprintf(e, sizeof(e), "unknown key '%.64s'%s", key, hint);
            goto bad;
        }
        if (r->kind == MCPGW_OPTS_CONFIG) {
            snprintf(e, sizeof(e), "'%s' is a command-line flag, not a config-file key", key);
            goto bad;
        }
        if (set_value(r, cfg, w.n - 1, w.v + 1, !seen[r - spec->rows], r->name, e, sizeof(e)) < 0)
            goto bad;
        seen[r - spec->rows] = 1;
    }
    rc = 0;
    goto out;
bad:
    snprintf(err, errlen, "%s:%d: %s", origin, lineno, e);
out:
    free(w.buf);
    free(seen);
    return rc;
}

int mcpgw_opts_parse_file(const struct mcpgw_opts_spec *spec, void *cfg, const char *path,
                          char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char *text = NULL;
    size_t len = 0, cap = 0;
    int rc = -1;
    if (!f) {
        snprintf(err, errlen, "cannot open config file %s: %s", path, strerror(errno));
        return -1;
    }
    for (;;) {
        size_t n;
        if (cap - len < 4097) {
            cap = cap ? cap * 2 : 8192;
            if (cap > 2 * MAX_FILE) {
                snprintf(err, errlen, "config file %s is over 1 MiB", path);
                goto out;
            }
            text = xrealloc(text, cap);
        }
        n = fread(text + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "cannot read config file %s: %s", path, strerror(errno));
        goto out;
    }
    if (len > MAX_FILE) {
        snprintf(err, errlen, "config file %s is over 1 MiB", path);
        goto out;
    }
    rc = mcpgw_opts_parse_text(spec, cfg, text, len, path, err, errlen);
out:
    free(text);
    fclose(f);
    return rc;
}

/* ---- the command line ---- */

/* Does the flag at argv[i] (no "=value") take argv[i+1] as its value? */
static int takes_next(const struct mcpgw_opts_row *r, int i, int argc, char **argv)
{
    if (i + 1 >= argc)
        return 0;
    if (r->kind == MCPGW_OPTS_BOOL)
        return strcmp(argv[i + 1], "0") == 0 || strcmp(argv[i + 1], "1") == 0;
    return 1;
}

static int apply_flag(const struct mcpgw_opts_row *r, void *cfg, const char *val, int first,
                      char *err, size_t errlen)
{
    char who[80], e[512];
    char *one[2] = {(char *)val, NULL};
    struct words w = {0};
    int rc;
    snprintf(who, sizeof(who), "--%s", r->name);
    if (!val) /* a bool alone */
        return set_value(r, cfg, 0, one, first, who, err, errlen);
    if (r->kind == MCPGW_OPTS_CUSTOM && (r->flags & MCPGW_OPTS_WORDS)) {
        if (split_words(val, strlen(val), 0, &w, e, sizeof(e)) < 0) {
            snprintf(err, errlen, "%s: %s", who, e);
            free(w.buf);
            return -1;
        }
        rc = set_value(r, cfg, w.n, w.v, first, who, e, sizeof(e));
        free(w.buf);
    } else {
        rc = set_value(r, cfg, 1, one, first, who, e, sizeof(e));
    }
    if (rc < 0) {
        /* Custom setters write their own sentence: say which flag it is about. */
        if (r->kind == MCPGW_OPTS_CUSTOM)
            snprintf(err, errlen, "%s: %s", who, e);
        else
            snprintf(err, errlen, "%s", e);
    }
    return rc;
}

int mcpgw_opts_parse_argv(const struct mcpgw_opts_spec *spec, void *cfg, int argc, char **argv,
                          int *check, int *help, char *err, size_t errlen)
{
    const struct mcpgw_opts_row *conf = NULL;
    int want_check = check && !mcpgw_opts_find(spec, "check");
    int want_help = help && !mcpgw_opts_find(spec, "help");
    unsigned char *seen;
    int rc = -1;

    if (check)
        *check = 0;
    if (help)
        *help = 0;
    for (size_t i = 0; i < spec->nrows; i++)
        if (spec->rows[i].kind == MCPGW_OPTS_CONFIG)
            conf = &spec->rows[i];
    /* First pass: --help, --check and --config, so the file applies before the other flags. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *eq, *val = NULL;
        const struct mcpgw_opts_row *r;
        if (want_help && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
            *help = 1;
            return 0;
        }
        if (want_check && strcmp(a, "--check") == 0) {
            *check = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0)
            continue;
        a += 2;
        eq = strchr(a, '=');
        r = find_row(spec, a, eq ? (size_t)(eq - a) : strlen(a), FROM_FLAG);
        if (!r)
            continue;
        if (eq)
            val = eq + 1;
        else if (takes_next(r, i, argc, argv))
            val = argv[++i];
        if (r == conf && val && apply_flag(r, cfg, val, 1, err, errlen) < 0)
            return -1;
    }
    if (conf) {
        const char *path = (const char *)cfg + conf->off;
        if (path[0] && mcpgw_opts_parse_file(spec, cfg, path, err, errlen) < 0)
            return -1;
    }
    seen = xcalloc(spec->nrows + 1, 1);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *eq, *val = NULL;
        const struct mcpgw_opts_row *r;
        size_t n;
        if ((want_check && strcmp(a, "--check") == 0)) /* --help returned above */
            continue;
        if (strncmp(a, "--", 2) != 0 || !a[2]) {
            snprintf(err, errlen, "unexpected argument '%.100s' (see --help)", a);
            goto out;
        }
        a += 2;
        eq = strchr(a, '=');
        n = eq ? (size_t)(eq - a) : strlen(a);
        r = find_row(spec, a, n, FROM_FLAG);
        if (!r) {
            char hint[96];
            suggest(spec, a, n, FROM_FLAG, "--", hint, sizeof(hint));
            snprintf(err, errlen, "unknown flag '%.100s' (see --help)%s", argv[i], hint);
            goto out;
        }
        if (eq)
            val = eq + 1;
        else if (takes_next(r, i, argc, argv))
            val = argv[++i];
        else if (r->kind != MCPGW_OPTS_BOOL) {
            snprintf(err, errlen, "flag --%s needs a value %s", r->name, r->arg ? r->arg : "");
            goto out;
        }
        if (r == conf)
            continue;
        /* On the command line a list flag replaces, as every other flag does: a launcher's
         * extra flags (start.sh's MCPGW_NODE_ARGS) must be able to override its defaults. */
        if (apply_flag(r, cfg, val, r->kind == MCPGW_OPTS_LIST || !seen[r - spec->rows], err,
                       errlen) < 0)
            goto out;
        seen[r - spec->rows] = 1;
    }
    rc = 0;
out:
    free(seen);
    return rc;
}

/* ---- defaults, reload, help, cleanup ---- */

/* A row whose field cannot hold its kind is a bug in the table. */
static void check_row(const struct mcpgw_opts_spec *spec, const struct mcpgw_opts_row *r)
{
    int ok = 1;
    switch (r->kind) {
    case MCPGW_OPTS_STR:
    case MCPGW_OPTS_CONFIG:
        ok = r->size > 0;
        break;
    case MCPGW_OPTS_UINT:
    case MCPGW_OPTS_SIZE:
    case MCPGW_OPTS_DURATION:
    case MCPGW_OPTS_BOOL:
        ok = r->size == 4 || r->size == 8;
        break;
    case MCPGW_OPTS_LEVEL:
        ok = r->size == sizeof(int);
        break;
    case MCPGW_OPTS_LIST:
        ok = r->size == sizeof(struct mcpgw_opts_list);
        break;
    case MCPGW_OPTS_CUSTOM:
        ok = r->set != NULL;
        break;
    default:
        ok = 0;
    }
    if (!ok || r->off + r->size > spec->cfg_size) {
        fprintf(stderr, "%s: option '%s' (%s) does not fit its field\n", spec->prog, r->name,
                mcpgw_opts_kind_str(r->kind));
        abort();
    }
}

void mcpgw_opts_defaults(const struct mcpgw_opts_spec *spec, void *cfg)
{
    memset(cfg, 0, spec->cfg_size);
    for (size_t i = 0; i < spec->nrows; i++) {
        const struct mcpgw_opts_row *r = &spec->rows[i];
        char e[512];
        check_row(spec, r);
        if (r->def && apply_flag(r, cfg, r->def, 1, e, sizeof(e)) < 0) {
            fprintf(stderr, "%s: the default of '%s' does not parse: %s\n", spec->prog, r->name, e);
            abort();
        }
    }
}

static int lists_differ(const struct mcpgw_opts_list *a, const struct mcpgw_opts_list *b)
{
    if (a->n != b->n)
        return 1;
    for (int i = 0; i < a->n; i++)
        if (strcmp(a->v[i], b->v[i]) != 0)
            return 1;
    return 0;
}

int mcpgw_opts_apply_live(const struct mcpgw_opts_spec *spec, void *live, void *next,
                          mcpgw_opts_diff_fn fn, void *arg)
{
    int applied = 0;
    for (size_t i = 0; i < spec->nrows; i++) {
        const struct mcpgw_opts_row *r = &spec->rows[i];
        char *a = (char *)live + r->off, *b = (char *)next + r->off;
        int differ;
        if (r->kind == MCPGW_OPTS_CONFIG || r->size == 0)
            continue;
        if (r->kind == MCPGW_OPTS_LIST)
            differ = lists_differ((struct mcpgw_opts_list *)(void *)a,
                                  (struct mcpgw_opts_list *)(void *)b);
        else if (r->kind == MCPGW_OPTS_STR)
            differ = strcmp(a, b) != 0;
        else
            differ = memcmp(a, b, r->size) != 0;
        if (!differ)
            continue;
        if (r->flags & MCPGW_OPTS_LIVE) {
            if (r->kind == MCPGW_OPTS_LIST) {
                struct mcpgw_opts_list t = *(struct mcpgw_opts_list *)(void *)a;
                memcpy(a, b, sizeof(t));
                memcpy(b, &t, sizeof(t));
            } else {
                memcpy(a, b, r->size);
            }
            applied++;
        }
        if (fn)
            fn(arg, r, (r->flags & MCPGW_OPTS_LIVE) != 0);
    }
    return applied;
}

const char *mcpgw_opts_format(const struct mcpgw_opts_row *r, const void *cfg, char *buf,
                              size_t len)
{
    const char *field = (const char *)cfg + r->off;
    buf[0] = '\0';
    switch (r->kind) {
    case MCPGW_OPTS_STR:
    case MCPGW_OPTS_CONFIG:
        snprintf(buf, len, "%s", field);
        break;
    case MCPGW_OPTS_UINT:
    case MCPGW_OPTS_SIZE:
    case MCPGW_OPTS_DURATION:
    case MCPGW_OPTS_BOOL:
        format_number(r, get_uint(field, r->size), buf, len);
        break;
    case MCPGW_OPTS_LEVEL: {
        int l;
        memcpy(&l, field, sizeof(l));
        snprintf(buf, len, "%s", mcpgw_log_level_str((enum mcpgw_log_level)l));
        break;
    }
    case MCPGW_OPTS_LIST: {
        const struct mcpgw_opts_list *l = (const struct mcpgw_opts_list *)(const void *)field;
        size_t used = 0;
        for (int i = 0; i < l->n && used < len; i++) {
            int w = snprintf(buf + used, len - used, "%s%s", i ? "," : "", l->v[i]);
            used += w > 0 ? (size_t)w : 0;
        }
        break;
    }
    case MCPGW_OPTS_CUSTOM:
        snprintf(buf, len, "%s", r->def ? r->def : "");
        break;
    default:
        break;
    }
    return buf;
}

/* "  --flag ARG    help [default]" with the help wrapped under itself. */
static void print_row(FILE *out, const char *lhs, const char *help, const char *tail)
{
    enum { COL = 34, WIDTH = 96 };
    char text[1024];
    const char *p = text;
    int col;
    snprintf(text, sizeof(text), "%s%s", help, tail);
    col = fprintf(out, "  %s", lhs);
    if (col >= COL) {
        fputc('\n', out);
        col = 0;
    }
    fprintf(out, "%*s", COL - col, "");
    col = COL;
    while (*p) {
        size_t n = strcspn(p, " ");
        if (col > COL && col + 1 + (int)n > WIDTH) {
            fprintf(out, "\n%*s", COL, "");
            col = COL;
        } else if (col > COL) {
            fputc(' ', out);
            col++;
        }
        fwrite(p, 1, n, out);
        col += (int)n;
        p += n;
        while (*p == ' ')
            p++;
    }
    fputc('\n', out);
}

void mcpgw_opts_usage(FILE *out, const struct mcpgw_opts_spec *spec, const void *defaults)
{
    int file_only = 0, has_conf = 0;
    fputs(spec->synopsis, out);
    fputs("\nOptions (each is also a config-file key: the name without \"--\"):\n", out);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1 && file_only)
            fputs("Config-file keys only:\n", out);
        for (size_t i = 0; i < spec->nrows; i++) {
            const struct mcpgw_opts_row *r = &spec->rows[i];
            char lhs[96], def[256], tail[300] = "";
            int fo = (r->flags & MCPGW_OPTS_FILE_ONLY) != 0;
            if (fo != pass) {
                file_only |= fo;
                continue;
            }
            has_conf |= r->kind == MCPGW_OPTS_CONFIG;
            snprintf(lhs, sizeof(lhs), "%s%s%s%s", fo ? "" : "--", r->name, r->arg ? " " : "",
                     r->arg ? r->arg : "");
            mcpgw_opts_format(r, defaults, def, sizeof(def));
            if (r->kind == MCPGW_OPTS_BOOL && strcmp(def, "0") == 0)
                def[0] = '\0';
            if (r->kind == MCPGW_OPTS_CONFIG)
                def[0] = '\0';
            if (def[0])
                snprintf(tail, sizeof(tail), " [%s]", def);
            if ((spec->flags & MCPGW_OPTS_RELOADS) && (r->flags & MCPGW_OPTS_LIVE))
                strncat(tail, " (reloads)", sizeof(tail) - strlen(tail) - 1);
            print_row(out, lhs, r->help, tail);
        }
        if (pass == 0) {
            if (!mcpgw_opts_find(spec, "check"))
                print_row(out, "--check",
                          spec->check_help ? spec->check_help
                                           : "validate the settings and the config file, say "
                                             "what is wrong, exit (0: valid, 2: not)",
                          "");
            if (!mcpgw_opts_find(spec, "help"))
                print_row(out, "--help", "this text", "");
        }
    }
    fputs("\nSizes take k/m/g (1k = 1024), durations ms/s/m/h. A flag given twice: the last one "
          "wins;\na list flag given twice adds to the list.\n",
          out);
    if (has_conf)
        fputs("\nConfig file (--config FILE): one setting per line, a key (a flag's name) and its "
              "value, as in\n\"listen 127.0.0.1:8801\". '#' at the start of a word begins a "
              "comment; \"...\" quotes a value\nwith spaces (\\\" \\\\ \\$ escape); "
              "${NAME} is the environment variable NAME (unset: an error).\nA key given twice: "
              "the last one wins; a list key given twice in the file adds to the list. Flags\n(a "
              "list flag too) replace, and override the "
              "file. Errors name the file and line.\n",
              out);
    if (spec->flags & MCPGW_OPTS_RELOADS)
        fputs("Settings marked (reloads) change on SIGHUP without a restart; the others need "
              "one.\n",
              out);
    if (spec->epilogue) {
        fputc('\n', out);
        fputs(spec->epilogue, out);
    }
}

void mcpgw_opts_free(const struct mcpgw_opts_spec *spec, void *cfg)
{
    for (size_t i = 0; i < spec->nrows; i++)
        if (spec->rows[i].kind == MCPGW_OPTS_LIST)
            list_clear((struct mcpgw_opts_list *)(void *)((char *)cfg + spec->rows[i].off));
}
