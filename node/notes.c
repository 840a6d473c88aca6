/* notes.c - the notes board: a small map from name to (text, version), in creation order. */
#include "node/notes.h"

#include "common/util.h"

#include <stdlib.h>
#include <string.h>

struct note {
    char *name;
    char *text;
    uint64_t version;
};

struct mcpgw_notes {
    struct note *v;
    size_t n, cap;
};

/* The board is small (operators' and load tests' notes): a linear scan beats a hash here. */
static struct note *find(const struct mcpgw_notes *b, const char *name)
{
    for (size_t i = 0; i < b->n; i++)
        if (strcmp(b->v[i].name, name) == 0)
            return &b->v[i];
    return NULL;
}

struct mcpgw_notes *mcpgw_notes_new(void)
{
    return xcalloc(1, sizeof(struct mcpgw_notes));
}

void mcpgw_notes_free(struct mcpgw_notes *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++) {
        free(b->v[i].name);
        free(b->v[i].text);
    }
    free(b->v);
    free(b);
}

int mcpgw_notes_name_ok(const char *name, size_t len)
{
    if (len == 0 || len > MCPGW_NOTE_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

uint64_t mcpgw_notes_write(struct mcpgw_notes *b, const char *name, const char *text, int *created)
{
    struct note *e = find(b, name);
    *created = e == NULL;
    if (!e) {
        if (b->n == b->cap) {
            b->cap = b->cap ? b->cap * 2 : 8;
            b->v = xrealloc(b->v, b->cap * sizeof(*b->v));
        }
        e = &b->v[b->n++];
        e->name = xstrdup(name);
        e->text = NULL;
        e->version = 0;
    }
    free(e->text);
    e->text = xstrdup(text);
    return ++e->version;
}

const char *mcpgw_notes_read(struct mcpgw_notes *b, const char *name, uint64_t *version)
{
    struct note *e = find(b, name);
    if (!e)
        return NULL;
    if (version)
        *version = e->version;
    return e->text;
}

size_t mcpgw_notes_count(const struct mcpgw_notes *b)
{
    return b->n;
}

const char *mcpgw_notes_name_at(const struct mcpgw_notes *b, size_t i)
{
    return i < b->n ? b->v[i].name : NULL;
}
