// tests/lib/jose-tokens.mjs - keys and tokens made by the `jose` npm package (an independent
// JOSE implementation), for tests/integration/19-auth-jose.sh. Writes OUTDIR/jwks.json and
// OUTDIR/tokens.txt: one "<name> <expected-result> <token>" line per case, the result being the
// code name common/jwt.c should give.
//   node jose-tokens.mjs OUTDIR ISSUER AUDIENCE
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [outdir, iss, aud] = process.argv.slice(2);
const npm = process.env.MCPGW_NPM || path.join(process.env.HOME, '.cache/mcpgw-npm');
const require = createRequire(path.join(npm, 'node_modules/'));
const jose = await import(pathToFileURL(require.resolve('jose')).href);

const now = Math.floor(Date.now() / 1000);
const keys = {};
const jwks = { keys: [] };
for (const [alg, kid, opts] of [
    ['RS256', 'rs', { modulusLength: 2048 }],
    ['ES256', 'es', {}],
    ['EdDSA', 'ed', { crv: 'Ed25519' }],
]) {
    const { publicKey, privateKey } = await jose.generateKeyPair(alg, { ...opts, extractable: true });
    keys[alg] = { kid, privateKey, publicKey };
    jwks.keys.push({ ...(await jose.exportJWK(publicKey)), kid, alg, use: 'sig' });
}
// A second RSA key the JWKS does not hold: for "unknown kid" and "signed by another key".
const stray = await jose.generateKeyPair('RS256', { modulusLength: 2048 });

const lines = [];
async function sign(name, expect, alg, claims, { kid, key, header } = {}) {
    const k = keys[alg];
    const jwt = await new jose.SignJWT({ scope: 'tools:call', ...claims })
        .setProtectedHeader({ alg, kid: kid ?? k.kid, typ: 'at+jwt', ...header })
        .sign(key ?? k.privateKey);
    lines.push(`${name} ${expect} ${jwt}`);
    return jwt;
}
const base = { iss, aud, sub: 'alice', iat: now - 5, exp: now + 600 };

for (const alg of ['RS256', 'ES256', 'EdDSA'])
    await sign(`valid-${alg}`, 'ok', alg, base);
await sign('aud-array', 'ok', 'ES256', { ...base, aud: ['https://other.example', aud] });
await sign('expired', 'expired', 'ES256', { ...base, iat: now - 7200, exp: now - 3600 });
await sign('not-yet-valid', 'not_yet_valid', 'EdDSA', { ...base, nbf: now + 3600 });
await sign('wrong-audience', 'wrong_audience', 'RS256', { ...base, aud: 'https://other.example/mcp' });
await sign('other-resource', 'wrong_audience', 'RS256', { ...base, aud: [aud + '/other'] });
await sign('wrong-issuer', 'wrong_issuer', 'ES256', { ...base, iss: 'https://evil.example' });
await sign('unknown-kid', 'unknown_kid', 'RS256', base, { kid: 'rs-next', key: stray.privateKey });
await sign('another-key', 'bad_signature', 'RS256', base, { key: stray.privateKey });
await sign('no-exp', 'malformed', 'EdDSA', { iss, aud, sub: 'alice' });

// Tampered: a valid token's payload swapped for one granting more, signature kept.
const good = await sign('before-tamper', 'ok', 'ES256', base);
const [h, , s] = good.split('.');
const evil = jose.base64url.encode(JSON.stringify({ ...base, sub: 'root', scope: 'admin' }));
lines.push(`tampered bad_signature ${h}.${evil}.${s}`);

// alg none, as jose's own UnsecuredJWT writes it.
lines.push(`alg-none alg_not_allowed ${new jose.UnsecuredJWT(base).encode()}`);

// HS256 keyed with the RSA public key (PEM and JWK text): the alg-confusion attack.
const pem = await jose.exportSPKI(keys.RS256.publicKey);
for (const [name, secret] of [['hs256-pem', pem], ['hs256-jwk', JSON.stringify(jwks.keys[0])]]) {
    const jwt = await new jose.SignJWT(base)
        .setProtectedHeader({ alg: 'HS256', kid: 'rs' })
        .sign(new TextEncoder().encode(secret));
    lines.push(`${name} alg_not_allowed ${jwt}`);
}

writeFileSync(path.join(outdir, 'jwks.json'), JSON.stringify(jwks));
writeFileSync(path.join(outdir, 'tokens.txt'), lines.join('\n') + '\n');
console.log(`jose ${lines.length} tokens, ${jwks.keys.length} keys`);
