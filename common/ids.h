/* ids.h - cryptographically random identifiers (OpenSSL RAND_bytes). */
#ifndef MCPGW_COMMON_IDS_H
#define MCPGW_COMMON_IDS_H

#include <stddef.h>

/* 16 random bytes as unpadded base64url: 22 characters. */
#define MCPGW_ID_RAND_CHARS 22

/* Write "<prefix>.<22 base64url chars>" into out (NUL-terminated). A NULL or empty prefix
 * writes just the random part. Returns 0, or -1 if out is too small or RAND_bytes fails. */
int mcpgw_id_new(const char *prefix, char *out, size_t outlen);

/* Encode n bytes as unpadded base64url into out (needs 4*ceil(n/3)+1 bytes). Returns length. */
size_t mcpgw_base64url(const unsigned char *in, size_t n, char *out);

#endif
