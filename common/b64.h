/* b64.h - base64url without padding (RFC 4648 section 5), the text form of JOSE and sealed state.
 */
#ifndef MCPGW_COMMON_B64_H
#define MCPGW_COMMON_B64_H

#include <stddef.h>

/* Characters mcpgw_b64url_encode writes for n bytes, without the terminating NUL. */
#define MCPGW_B64URL_LEN(n) (((n) / 3) * 4 + ((n) % 3 ? (n) % 3 + 1 : 0))

/* Encode in[0..n) into out, which has room for MCPGW_B64URL_LEN(n) + 1 bytes; NUL-terminates.
 * Returns the length written (without the NUL). */
size_t mcpgw_b64url_encode(const void *in, size_t n, char *out);

/* Decode the base64url text in[0..n) (no padding, no whitespace: the strict form JOSE uses)
 * into out, which has room for outcap bytes. A length of 1 mod 4, a character outside the
 * alphabet, non-zero trailing bits or an output longer than outcap are refused. Returns the
 * decoded length, or -1. */
long mcpgw_b64url_decode(const char *in, size_t n, void *out, size_t outcap);

#endif
