/* notes.h - the shared notes board: named texts behind mcpgw://notes/{name}. */
#ifndef MCPGW_NODE_NOTES_H
#define MCPGW_NODE_NOTES_H

#include <stddef.h>
#include <stdint.h>

struct mcpgw_notes;

#define MCPGW_NOTE_NAME_MAX 64
#define MCPGW_NOTE_TEXT_MAX (64 * 1024)

struct mcpgw_notes *mcpgw_notes_new(void);
void mcpgw_notes_free(struct mcpgw_notes *n);
/* Names are 1..64 characters of [A-Za-z0-9._-]. */
int mcpgw_notes_name_ok(const char *name, size_t len);
/* Set a note; returns its new version (1 for a new note). *created is set for a new name. */
uint64_t mcpgw_notes_write(struct mcpgw_notes *n, const char *name, const char *text, int *created);
/* The note's text and version, or NULL. The text is borrowed until the next write. */
const char *mcpgw_notes_read(struct mcpgw_notes *n, const char *name, uint64_t *version);
size_t mcpgw_notes_count(const struct mcpgw_notes *n);
/* The i-th note name in creation order (0 <= i < count). */
const char *mcpgw_notes_name_at(const struct mcpgw_notes *n, size_t i);

#endif
