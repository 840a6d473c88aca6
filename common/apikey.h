/* apikey.h - API keys for machine clients: a table of principals whose keys are stored only as
 * SHA-256 hashes, from a file or an environment variable; lookup in constant time per entry. */
#ifndef MCPGW_COMMON_APIKEY_H
#define MCPGW_COMMON_APIKEY_H

#include <stddef.h>

#define MCPGW_APIKEY_MIN_LEN 32   /* characters of a presented key: high entropy or nothing */
#define MCPGW_APIKEY_MAX     4096 /* entries in one table */

struct mcpgw_apikey_set;

/* Parse the table's text: one entry per line (or per ';' in an environment variable),
 *     <principal> <sha256-hex> [scope ...]
 * where sha256-hex is 64 hex digits of SHA-256 over the key's exact bytes (as
 * `printf %s KEY | sha256sum` prints it) and the scopes are what the key may do. Blank lines and
 * lines starting with '#' are skipped. A principal may appear on several lines (several keys,
 * for rotation). Returns the set (free with mcpgw_apikey_set_free; may be empty), or NULL with a
 * sentence naming the line in err. text is borrowed; name is only used in messages. */
struct mcpgw_apikey_set *mcpgw_apikey_parse(const char *text, size_t len, const char *name,
                                            char *err, size_t errlen);
/* The same, from the file at path (at most 1 MiB). */
struct mcpgw_apikey_set *mcpgw_apikey_load(const char *path, char *err, size_t errlen);
/* The same, from the environment variable var with entries separated by ';' or newlines.
 * Returns an empty set when var is unset. */
struct mcpgw_apikey_set *mcpgw_apikey_from_env(const char *var, char *err, size_t errlen);
void mcpgw_apikey_set_free(struct mcpgw_apikey_set *s);
int mcpgw_apikey_count(const struct mcpgw_apikey_set *s);

/* Who does the presented key key[0..len) belong to? Returns 0 and sets *principal and *scopes
 * (borrowed from the set; scopes space-separated, "" when none) when it matches an entry, else -1.
 * Keys shorter than MCPGW_APIKEY_MIN_LEN never match. Every entry is compared (no early exit,
 * CRYPTO_memcmp), so the time taken says nothing about which entry or how much of it matched. */
int mcpgw_apikey_lookup(const struct mcpgw_apikey_set *s, const char *key, size_t len,
                        const char **principal, const char **scopes);

/* The 64-hex-digit hash to put in the table for key (out has room for 65 bytes). */
void mcpgw_apikey_hash_hex(const char *key, size_t len, char out[65]);

#endif
