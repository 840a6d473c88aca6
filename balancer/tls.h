/* tls.h - the listener's TLS context: TLS 1.2 and up, buffers released while idle. */
#ifndef MCPGW_BALANCER_TLS_H
#define MCPGW_BALANCER_TLS_H

#include <stddef.h>

struct ssl_ctx_st;

/* Load a PEM certificate chain and its private key. Returns the context (free with
 * mcpgw_bal_tls_free), or NULL with a sentence in err naming the file at fault. */
struct ssl_ctx_st *mcpgw_bal_tls_new(const char *cert_file, const char *key_file, char *err,
                                     size_t errlen);
void mcpgw_bal_tls_free(struct ssl_ctx_st *ctx);

#endif
