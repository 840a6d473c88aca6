// bench/jwt-issuer.mjs PORT ISSUER AUDIENCE TOKEN_FILE - a minimal token issuer for
// bench/auth.sh: an ES256 key made at start, its JWKS served at http://127.0.0.1:PORT/jwks, and
// one access token for AUDIENCE (sub "bench", scope "mcp:tools", valid 2 hours) written to
// TOKEN_FILE. Uses the `jose` package installed with the test dependencies (MCPGW_NPM).
import { createServer } from 'node:http';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const [port, issuer, audience, tokenFile] = process.argv.slice(2);
const require = createRequire(`${process.env.MCPGW_NPM}/`);
const jose = await import(pathToFileURL(require.resolve('jose')).href);
const { publicKey, privateKey } = await jose.generateKeyPair('ES256', { extractable: true });
const jwks = { keys: [{ ...(await jose.exportJWK(publicKey)), kid: 'bench-1', alg: 'ES256', use: 'sig' }] };
const token = await new jose.SignJWT({ scope: 'mcp:tools' })
  .setProtectedHeader({ alg: 'ES256', kid: 'bench-1', typ: 'at+jwt' })
  .setIssuer(issuer).setAudience(audience).setSubject('bench')
  .setIssuedAt().setExpirationTime('2h').sign(privateKey);
writeFileSync(tokenFile, token);
createServer((req, res) => {
  res.setHeader('Content-Type', 'application/json');
  res.end(JSON.stringify(jwks));
}).listen(Number(port), '127.0.0.1');
