/* jwtcheck.c - test driver: verify tokens made elsewhere (the jose npm package) with common/jwt.c.
 *   jwtcheck JWKS-FILE ISSUER AUDIENCE < LINES
 * Each input line is "<name> <expected-code> <token>" ("-" for an empty token); prints one line
 * per token and exits 1 when any result differs from the expected code, 2 on a usage error. */
#include "common/jwt.h"

#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv)
{
    struct mcpgw_jwt_config cfg = {0};
    struct mcpgw_jwks *keys;
    static char doc[MCPGW_JWKS_MAX_DOC + 1], line[MCPGW_JWT_MAX_LEN + 256];
    char err[200] = "";
    size_t n;
    int skipped = 0, bad = 0, total = 0;
    FILE *f;

    if (argc != 4) {
        fprintf(stderr, "usage: jwtcheck JWKS-FILE ISSUER AUDIENCE < tokens\n");
        return 2;
    }
    f = fopen(argv[1], "r");
    if (!f) {
        perror(argv[1]);
        return 2;
    }
    n = fread(doc, 1, sizeof(doc) - 1, f);
    fclose(f);
    keys = mcpgw_jwks_parse(doc, n, &skipped, err, sizeof(err));
    if (!keys) {
        fprintf(stderr, "jwtcheck: %s\n", err);
        return 2;
    }
    printf("jwks: %d keys, %d skipped\n", mcpgw_jwks_count(keys), skipped);
    cfg.issuer = argv[2];
    cfg.audience = argv[3];
    cfg.skew_s = 60;
    while (fgets(line, sizeof(line), stdin)) {
        char name[64], want[32], *tok;
        struct mcpgw_jwt_result res;
        int off = 0;
        line[strcspn(line, "\n")] = '\0';
        if (sscanf(line, "%63s %31s %n", name, want, &off) != 2 || off == 0)
            continue;
        tok = line + off;
        if (strcmp(tok, "-") == 0)
            tok = "";
        mcpgw_jwt_verify(&cfg, keys, tok, strlen(tok), (int64_t)time(NULL), &res);
        total++;
        if (strcmp(mcpgw_jwt_err_str(res.err), want) != 0)
            bad++;
        printf("%s %-16s %s: %s%s%s\n", strcmp(mcpgw_jwt_err_str(res.err), want) ? "FAIL" : "ok  ",
               name, mcpgw_jwt_err_str(res.err), res.reason, res.principal ? " principal=" : "",
               res.principal ? res.principal : "");
        mcpgw_jwt_result_deinit(&res);
    }
    mcpgw_jwks_free(keys);
    printf("%d tokens, %d unexpected\n", total, bad);
    return bad || total == 0 ? 1 : 0;
}
