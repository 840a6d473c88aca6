// A rotated OAuth client secret reaches the running per-client upstream sessions on SIGHUP
// (docs/security.md, "Upstream credentials"): `oidc-provider` as the authorization server, an
// mcpgw-node as the upstream accepting only opaque tokens it introspects, a recorder between the
// gateway and it noting each request's token, upstream session id and JSON-RPC method.
//   - a client's per-client upstream session is established with a token got with secret A;
//   - the secret is rotated at the authorization server (restarted with secret B: its tokens,
//     the gateway's one included, are gone) and in the gateway's config; SIGHUP;
//   - the next call on the same client session succeeds with a token got with secret B, in the
//     same upstream session (no new initialize for it), and secret A is never tried again.
// Ports 14900 (gateway), 14910 (upstream), 14911 (recorder), 14920 (authorization server).
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { exitCode, exited, kill, sdkPath, sleep, startProcess, tmp, waitHttp } from '../lib/cluster.mjs';

const npm = process.env.MCPGW_NPM || path.join(process.env.HOME, '.cache/mcpgw-npm');
const require = createRequire(path.join(npm, 'node_modules/'));
const { default: Provider } = await import(pathToFileURL(path.join(npm, 'node_modules/oidc-provider/lib/index.js')).href);
const { Client } = await import(sdkPath('client/index.js'));
const { StreamableHTTPClientTransport } = await import(sdkPath('client/streamableHttp.js'));
const jose = await import(pathToFileURL(require.resolve('jose')).href);

const root = path.resolve(new URL('../..', import.meta.url).pathname);
const BIN = path.join(process.env.MCPGW_BUILD || path.join(root, 'build'), 'node/mcpgw-node');

let ok = true;
const check = (cond, what) => { console.log(`${cond ? 'ok' : 'FAIL'} - ${what}`); if (!cond) ok = false; };
async function until(what, fn, ms = 30000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

const GW = 14900, UP = 14910, REC = 14911, AS = 14920;
const ISSUER = `http://127.0.0.1:${AS}`;
const UP_URL = `http://127.0.0.1:${REC}/mcp`; // the upstream's public URL (through the recorder)
const rnd = () => Math.random().toString(36).slice(2);
const SECRET_A = `a-${rnd()}`, SECRET_B = `b-${rnd()}`, RS_SECRET = `rs-${rnd()}`;
// Both secrets are in the gateway's environment from the start; the config names one of them.
process.env.ROTATE_T98_A = SECRET_A;
process.env.ROTATE_T98_B = SECRET_B;

// ---- the authorization server: gw-pc's secret is fixed per start (oidc-provider's static
// clients); a restart also forgets every token it issued ----
const tokenReqs = []; // { secret, status } per token request of gw-pc
let asServer;
async function startAS(secret) {
  const { privateKey } = await jose.generateKeyPair('ES256', { extractable: true });
  const provider = new Provider(ISSUER, {
    jwks: { keys: [{ ...(await jose.exportJWK(privateKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] },
    clientDefaults: { id_token_signed_response_alg: 'ES256' },
    clients: [
      { client_id: 'gw-pc', client_secret: secret, grant_types: ['client_credentials'], response_types: [], redirect_uris: [] },
      { client_id: 'up-rs', client_secret: RS_SECRET, grant_types: [], response_types: [], redirect_uris: [] }],
    scopes: ['up:tools'],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => undefined,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({ scope: 'up:tools', audience: UP_URL, accessTokenTTL: 600, accessTokenFormat: 'opaque' }),
      },
    },
  });
  const cb = provider.callback();
  asServer = http.createServer((req, res) => {
    const a = req.headers.authorization || '';
    if (req.method === 'POST' && req.url === '/token' && a.startsWith('Basic ')) {
      const [id, s] = Buffer.from(a.slice(6), 'base64').toString().split(':').map(decodeURIComponent);
      if (id === 'gw-pc') {
        const r = { secret: s, status: 0 };
        tokenReqs.push(r);
        res.on('finish', () => { r.status = res.statusCode; });
      }
    }
    cb(req, res);
  });
  await new Promise((r) => asServer.listen(AS, '127.0.0.1', r));
}
const stopAS = () => new Promise((r) => { asServer.closeAllConnections?.(); asServer.close(r); });

// ---- the recorder: relays to the upstream node, noting what the gateway sent ----
const seen = []; // { verb (HTTP), method (JSON-RPC), sid, auth, status }
const recorder = http.createServer((req, res) => {
  const rec = { verb: req.method, method: null, sid: req.headers['mcp-session-id'] || null, auth: req.headers.authorization || null, status: 0 };
  seen.push(rec);
  const body = [];
  req.on('data', (c) => body.push(c));
  req.on('end', () => { try { rec.method = JSON.parse(Buffer.concat(body).toString()).method ?? null; } catch { /* GET, DELETE */ } });
  const up = http.request({ host: '127.0.0.1', port: UP, path: req.url, method: req.method, headers: req.headers }, (ur) => {
    rec.status = ur.statusCode;
    rec.sid ??= ur.headers['mcp-session-id'] || null;
    res.writeHead(ur.statusCode, ur.headers);
    ur.pipe(res);
  });
  up.on('error', () => { res.destroy(); });
  req.pipe(up);
  res.on('close', () => up.destroy());
});
await new Promise((r) => recorder.listen(REC, '127.0.0.1', r));

try {
  await startAS(SECRET_A);
  startProcess('up', BIN, ['--listen', `127.0.0.1:${UP}`, '--node-id', 'up', '--store', 'memory',
    '--auth', 'jwt', '--auth-issuer', ISSUER, '--auth-jwks-url', `${ISSUER}/jwks`, '--auth-resource', UP_URL,
    '--auth-scopes', 'up:tools', '--auth-introspection-url', `${ISSUER}/token/introspection`,
    '--auth-introspection-client', 'up-rs', '--auth-introspection-secret', RS_SECRET, '--auth-introspection-cache', '1s']);
  await waitHttp(`http://127.0.0.1:${UP}/readyz`);
  const conf = path.join(tmp, 'gw.conf');
  const line = (v) => `upstream pc http ${UP_URL} session=per-client oauth-token-url=${ISSUER}/token ` +
    `oauth-client-id=gw-pc oauth-client-secret=\${${v}} oauth-scope=up:tools oauth-resource=${UP_URL}\n`;
  writeFileSync(conf, line('ROTATE_T98_A'));
  startProcess('gw', BIN, ['--config', conf, '--listen', `127.0.0.1:${GW}`, '--node-id', 'gw', '--store', 'memory']);
  await waitHttp(`http://127.0.0.1:${GW}/readyz`);

  const client = new Client({ name: 't98', version: '1' }, { capabilities: {} });
  await client.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${GW}/mcp`)));
  await until('the upstream\'s tools', async () => (await client.listTools()).tools.some((t) => t.name === 'pc__echo'));
  const echo = async (text) => {
    try { return JSON.stringify(await client.callTool({ name: 'pc__echo', arguments: { text } })); } catch (e) { return `error: ${e.message}`; }
  };
  const lastCall = () => seen.filter((r) => r.method === 'tools/call').at(-1);

  // 1. The per-client upstream session, with a token got with secret A.
  check((await echo('before')).includes('before'), 'a call through the per-client upstream session works');
  const c1 = lastCall();
  check(c1?.status === 200 && c1.sid && c1.auth?.startsWith('Bearer '), `it went in upstream session ${c1?.sid} with a bearer token`);
  check(tokenReqs.length >= 1 && tokenReqs.every((r) => r.secret === SECRET_A && r.status === 200),
    `the gateway's tokens were got with secret A (${tokenReqs.length} token requests)`);
  const initsBefore = seen.filter((r) => r.method === 'initialize').length;

  // 2. Rotation: the authorization server now knows only secret B, and forgot the old token.
  await stopAS();
  await startAS(SECRET_B);
  const direct = async (auth) => (await fetch(`http://127.0.0.1:${UP}/mcp`, { method: 'POST',
    headers: { authorization: auth, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }) })).status;
  await until('the upstream to refuse the old token', async () => (await direct(c1.auth)) === 401);
  check(true, 'after the rotation the upstream refuses the gateway\'s old token (401)');
  const log = path.join(tmp, 'gw.log');
  const reloads = () => (readFileSync(log, 'utf8').match(/reloaded .*setting/g) || []).length;
  const r0 = reloads(), t0 = tokenReqs.length, r0s = seen.length;
  writeFileSync(conf, line('ROTATE_T98_B'));
  kill('gw', 'SIGHUP');
  await until('the reload', async () => reloads() > r0);
  // The node's own session at the upstream (its catalogue) restarts since the line changed.
  await until('pc__echo listed again', async () => (await client.listTools()).tools.some((t) => t.name === 'pc__echo'));

  // 3. The next call on the same client session: a token got with secret B, the same upstream
  // session, and secret A never tried again.
  const s3 = seen.length;
  const out = await echo('after');
  check(out.includes('after'), `the client's next call succeeds (${out.slice(0, 160)})`);
  const c2 = lastCall();
  check(seen.indexOf(c2) >= s3 && c2.status === 200 && c2.auth !== c1.auth, `it was sent with a new token (status ${c2?.status})`);
  // Secret A is never tried again, not even by the node's old catalogue session, which the
  // reload closes: its DELETE goes with the new line's token source (it used to go with its old
  // token, get 401 and ask the old source, secret A).
  const since = tokenReqs.slice(t0);
  const deletes = seen.slice(r0s).filter((r) => r.verb === 'DELETE');
  check(since.some((r) => r.secret === SECRET_B && r.status === 200) &&
    since.every((r) => r.secret === SECRET_B) && deletes.every((r) => r.status !== 401),
    `the gateway got its new tokens with secret B only, the old catalogue session's DELETE included (tokens: ${since.map((r) => `${r.secret === SECRET_A ? 'A' : 'B'}:${r.status}`).join(', ')}; DELETEs: ${deletes.map((r) => r.status).join(', ')})`);
  check(c2.sid === c1.sid, `in the same upstream session (${c1.sid} -> ${c2.sid})`);
  // The node's own session (its catalogue) is restarted since its line changed; the client's
  // per-client session is not: at most that one initialize.
  const inits = seen.filter((r) => r.method === 'initialize').length - initsBefore;
  check(inits <= 1, `no new initialize for the client's upstream session (${inits} in all, the node's own included)`);
  await client.close();

  kill('gw', 'SIGTERM');
  await until('the gateway to exit', async () => exited('gw'));
  check(exitCode('gw') === 0, `the gateway exits cleanly on SIGTERM (exit ${exitCode('gw')})`);
} catch (e) {
  check(false, `unexpected: ${e.stack}`);
} finally {
  recorder.closeAllConnections?.();
  recorder.close();
  asServer?.close();
}
process.exit(ok ? 0 : 1);
