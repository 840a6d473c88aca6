#!/usr/bin/env bash
# JWTs made by an independent implementation (the jose npm package: its own key generation,
# JWK export, signing, alg none and HS256 keyed with the public key) verified by common/jwt.c:
# the valid ones pass with the right principal, each refusal of issue 23 gets its own code.
source "$(dirname "$0")/../lib/common.sh"

ISS=https://as.example.com
AUD=https://mcp.example.com/mcp
check=$MCPGW_BUILD/tests/unit/common/jwtcheck
[ -x "$check" ] || fail "$check is not built"

node "$MCPGW_ROOT/tests/lib/jose-tokens.mjs" "$MCPGW_TMP" "$ISS" "$AUD" || fail "jose-tokens.mjs failed"
echo "empty no_token -" >>"$MCPGW_TMP/tokens.txt"
"$check" "$MCPGW_TMP/jwks.json" "$ISS" "$AUD" <"$MCPGW_TMP/tokens.txt" >"$MCPGW_TMP/check.out" ||
    { cat "$MCPGW_TMP/check.out"; fail "jwtcheck reported unexpected results"; }
cat "$MCPGW_TMP/check.out"
grep -q '^jwks: 3 keys, 0 skipped' "$MCPGW_TMP/check.out" || fail "the jose JWKS did not give 3 keys"
[ "$(grep -c '^ok  .* ok: valid principal=https://as.example.com alice$' "$MCPGW_TMP/check.out")" = 5 ] ||
    fail "want 5 valid tokens naming $ISS alice"
pass "jose tokens: $(tail -n 1 "$MCPGW_TMP/check.out")"
