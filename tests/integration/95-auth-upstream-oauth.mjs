// Upstream credentials by OAuth client credentials (docs/security.md, "Upstream credentials"),
// with real parts: `oidc-provider` as the authorization server, issuing JWT access tokens for the
// upstream's resource (RFC 8707); the upstream is another mcpgw-node that accepts only tokens for
// its own audience; between the gateway and it a recorder (a plain HTTP relay) notes each
// Authorization header and status. The gateway node itself requires its clients' JWTs.
//   - the gateway gets its own token for the upstream, and the client's token never goes there
//     (shared and per-client upstream sessions);
//   - the token is used until shortly before it expires, then fetched anew (no 401 needed);
//   - the authorization server revokes the gateway's token: the upstream refuses it (401), the
//     gateway fetches a new one and sends the call again, the client sees nothing;
//   - with the authorization server down, a call gets a JSON-RPC error naming the upstream;
//   - no token or secret in the gateway's log or metrics; --check refuses bad oauth-* keys.
// Ports 14200 (gateway), 14210 (upstream), 14211 (recorder), 14220 (authorization server).
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { exitCode, exited, kill, sdkPath, sleep, startProcess, tmp, waitHttp } from '../lib/cluster.mjs';

const npm = process.env.MCPGW_NPM || path.join(process.env.HOME, '.cache/mcpgw-npm');
const require = createRequire(path.join(npm, 'node_modules/'));
const imp = (p) => import(pathToFileURL(p).href);
const jose = await imp(require.resolve('jose'));
const { default: Provider, errors } = await imp(path.join(npm, 'node_modules/oidc-provider/lib/index.js'));
const { Client } = await import(sdkPath('client/index.js'));
const { StreamableHTTPClientTransport } = await import(sdkPath('client/streamableHttp.js'));

const root = path.resolve(new URL('../..', import.meta.url).pathname);
const build = process.env.MCPGW_BUILD || path.join(root, 'build');
const BIN = path.join(build, 'node/mcpgw-node');

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

const GW = 14200, UP = 14210, REC = 14211, AS = 14220;
const ISSUER = `http://127.0.0.1:${AS}`;
const GW_URL = `http://127.0.0.1:${GW}/mcp`;
const UP_URL = `http://127.0.0.1:${REC}/mcp`; // the upstream's public URL (through the recorder)
const GW_SECRET = `gw-${Math.random().toString(36).slice(2)}`;
const RS_SECRET = `rs-${Math.random().toString(36).slice(2)}`;
const APP_SECRET = `app-${Math.random().toString(36).slice(2)}`;
process.env.UPCRED_T94_SECRET = GW_SECRET; // the config file names ${UPCRED_T94_SECRET}

// ---- the authorization server: restartable, with a signing key and token lifetime per start ----
let ttl = 20; // s, for the upstream's tokens (the gateway uses one for 16 s: a fifth is its margin)
const fetchesBy = {}; // token requests per client id
let asServer;
async function startAS(kid) {
  const { privateKey } = await jose.generateKeyPair('ES256', { extractable: true });
  const signing = { ...(await jose.exportJWK(privateKey)), kid, alg: 'ES256', use: 'sig' };
  const cc = (id, secret) => ({ client_id: id, client_secret: secret, grant_types: ['client_credentials'], response_types: [], redirect_uris: [] });
  const provider = new Provider(ISSUER, {
    jwks: { keys: [signing] },
    clientDefaults: { id_token_signed_response_alg: 'ES256' },
    clients: [cc('gw', GW_SECRET), cc('gw-pc', GW_SECRET), cc('gw-rv', GW_SECRET), cc('app', APP_SECRET),
      { client_id: 'up-rs', client_secret: RS_SECRET, grant_types: [], response_types: [], redirect_uris: [] }],
    scopes: ['up:tools', 'gw:tools'],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => undefined,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resource, client) => {
          const jwt = { accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } };
          if (resource === UP_URL && client.clientId === 'gw-rv') return { scope: 'up:tools', audience: UP_URL, accessTokenTTL: 600, accessTokenFormat: 'opaque' };
          if (resource === UP_URL) return { scope: 'up:tools', audience: UP_URL, accessTokenTTL: ttl, ...jwt };
          if (resource === GW_URL) return { scope: 'gw:tools', audience: GW_URL, accessTokenTTL: 600, ...jwt };
          throw new errors.InvalidTarget();
        },
      },
    },
  });
  const cb = provider.callback();
  asServer = http.createServer((req, res) => {
    if (req.method === 'POST' && req.url === '/token') {
      const a = req.headers.authorization || '';
      const id = a.startsWith('Basic ') ? decodeURIComponent(Buffer.from(a.slice(6), 'base64').toString().split(':')[0]) : 'form'; // gw-pc authenticates in the form
      fetchesBy[id] = (fetchesBy[id] || 0) + 1;
    }
    cb(req, res);
  });
  await new Promise((r) => asServer.listen(AS, '127.0.0.1', r));
}
const stopAS = () => new Promise((r) => { asServer.closeAllConnections?.(); asServer.close(r); });

// ---- the recorder: relays to the upstream node, noting what the gateway sent ----
const seen = []; // { method, auth, status }
const recorder = http.createServer((req, res) => {
  const rec = { method: req.method, auth: req.headers.authorization || null, status: 0 };
  seen.push(rec);
  const up = http.request({ host: '127.0.0.1', port: UP, path: req.url, method: req.method, headers: req.headers }, (ur) => {
    rec.status = ur.statusCode;
    res.writeHead(ur.statusCode, ur.headers);
    ur.pipe(res);
  });
  up.on('error', () => { res.destroy(); });
  req.pipe(up);
  res.on('close', () => up.destroy());
});
await new Promise((r) => recorder.listen(REC, '127.0.0.1', r));

const claimsOf = (auth) => { try { return jose.decodeJwt(auth.replace(/^Bearer /, '')); } catch { return {}; } };
const form = (o) => new URLSearchParams(o).toString();
const basic = (id, s) => `Basic ${Buffer.from(`${id}:${s}`).toString('base64')}`;

try {
  // ---- --check ----
  const checkBad = (line, want) => {
    const f = path.join(tmp, 'bad.conf');
    writeFileSync(f, `listen 127.0.0.1:${GW}\n${line}\n`);
    const r = spawnSync(BIN, ['--config', f, '--check'], { encoding: 'utf8' });
    const out = r.stdout + r.stderr;
    check(r.status === 2 && out.includes(want) && !out.includes(GW_SECRET), `--check: ${out.trim()}`);
  };
  const tok = `oauth-token-url=${ISSUER}/token`;
  checkBad(`upstream a http ${UP_URL} ${tok} oauth-client-id=gw`, 'bad.conf:2: upstream a: OAuth client credentials want oauth-token-url, oauth-client-id and oauth-client-secret together (missing: oauth-client-secret)');
  checkBad(`upstream a http ${UP_URL} oauth-token-url=ftp://x/token oauth-client-id=gw oauth-client-secret=\${UPCRED_T94_SECRET}`, "bad.conf:2: upstream a: oauth-token-url 'ftp://x/token' is not an http:// or https:// URL");
  checkBad(`upstream a stdio "cat" ${tok} oauth-client-id=gw oauth-client-secret=\${UPCRED_T94_SECRET}`, 'bad.conf:2: upstream a: oauth-* keys apply to http upstreams only');
  checkBad(`upstream a http ${UP_URL} header="Authorization: Bearer \${UPCRED_T94_SECRET}" ${tok} oauth-client-id=gw oauth-client-secret=\${UPCRED_T94_SECRET}`, 'and oauth-* keys exclude each other');
  checkBad(`upstream a http ${UP_URL} ${tok} oauth-client-id=gw oauth-client-secret=\${UPCRED_T94_SECRET} oauth-client-auth=jwt`, "oauth-client-auth 'jwt' is not basic or post");
  checkBad(`upstream a http ${UP_URL} ${tok} oauth-client-id=gw oauth-client-secret=\${UPCRED_T94_UNSET}`, '${UPCRED_T94_UNSET} is not set');

  // ---- start everything ----
  await startAS('as-1');
  startProcess('up', BIN, ['--listen', `127.0.0.1:${UP}`, '--node-id', 'up', '--store', 'memory',
    '--auth', 'jwt', '--auth-issuer', ISSUER, '--auth-jwks-url', `${ISSUER}/jwks`, '--auth-resource', UP_URL,
    '--auth-scopes', 'up:tools', '--auth-skew', '1s', '--auth-introspection-url', `${ISSUER}/token/introspection`,
    '--auth-introspection-client', 'up-rs', '--auth-introspection-secret', RS_SECRET, '--auth-introspection-cache', '1s']);
  await waitHttp(`http://127.0.0.1:${UP}/readyz`);
  const conf = path.join(tmp, 'gw.conf');
  const keys = (id) => `oauth-token-url=${ISSUER}/token oauth-client-id=${id} oauth-client-secret=\${UPCRED_T94_SECRET} oauth-scope=up:tools oauth-resource=${UP_URL}`;
  writeFileSync(conf, [
    `upstream up http ${UP_URL} ${keys('gw')}`,
    `upstream pc http ${UP_URL} session=per-client ${keys('gw-pc')} oauth-client-auth=post`,
    `upstream rv http ${UP_URL} ${keys('gw-rv')}`,
    '',
  ].join('\n'));
  const chk = spawnSync(BIN, ['--config', conf, '--check'], { encoding: 'utf8' });
  check(chk.status === 0, `--check accepts the oauth-* keys (${(chk.stdout + chk.stderr).trim().slice(0, 200)})`);
  startProcess('gw', BIN, ['--config', conf, '--listen', `127.0.0.1:${GW}`, '--node-id', 'gw', '--store', 'memory',
    '--auth', 'jwt', '--auth-issuer', ISSUER, '--auth-jwks-url', `${ISSUER}/jwks`, '--auth-resource', GW_URL,
    '--auth-scopes', 'gw:tools', '--auth-skew', '1s']);
  await waitHttp(`http://127.0.0.1:${GW}/readyz`);

  // The client's own token, for the gateway only.
  const getAppToken = async () => (await (await fetch(`${ISSUER}/token`, { method: 'POST',
    headers: { authorization: basic('app', APP_SECRET), 'content-type': 'application/x-www-form-urlencoded' },
    body: form({ grant_type: "client_credentials", scope: "gw:tools", resource: GW_URL }) })).json()).access_token;
  const appToken = await getAppToken();
  check(claimsOf(appToken).aud === GW_URL, 'the client holds a token for the gateway');
  const client = new Client({ name: 't94', version: '1' }, { capabilities: {} });
  await client.connect(new StreamableHTTPClientTransport(new URL(GW_URL), { requestInit: { headers: { authorization: `Bearer ${appToken}` } } }));
  const tools = await until('the upstreams\' tools', async () => {
    const t = (await client.listTools()).tools.map((x) => x.name);
    return t.includes('up__echo') && t.includes('pc__echo') && t.includes('rv__echo') && t;
  });
  check(true, `the gateway lists the upstreams' tools, fetched with its own token (${tools.length} tools)`);
  const echo = async (name, text) => JSON.stringify(await client.callTool({ name, arguments: { text } }));

  // 1. Calls with the gateway's token; the client's token never reaches the upstream.
  const f0 = fetchesBy.gw;
  const n0 = seen.length;
  check((await echo('up__echo', 'shared')).includes('shared'), 'a call through a shared upstream session works');
  check((await echo('pc__echo', 'per-client')).includes('per-client'), 'a call through a per-client upstream session works (client auth in the form)');
  const auths = seen.map((r) => r.auth);
  check(seen.length > n0 && auths.every((a) => a && a.startsWith('Bearer ')), `every request to the upstream carried a bearer token (${seen.length} requests)`);
  check(!auths.some((a) => a.includes(appToken)), 'the client\'s token never reached the upstream');
  const cl = auths.filter((a) => a.includes('.')).map(claimsOf); // rv's tokens are opaque
  check(cl.length > 0 && cl.every((c) => c.aud === UP_URL && c.iss === ISSUER && ['gw', 'gw-pc'].includes(c.client_id)),
    `each was the gateway's own token for the upstream's audience (${[...new Set(cl.map((c) => `${c.client_id}/${c.aud}`))].join(', ')})`);
  const direct = async (auth) => (await fetch(`http://127.0.0.1:${UP}/mcp`, { method: 'POST',
    headers: { authorization: auth, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }) })).status;
  check((await direct(`Bearer ${appToken}`)) === 401, 'the upstream itself refuses the client\'s token (it is for the gateway\'s audience)');
  check(fetchesBy.gw === f0 && fetchesBy.form >= 1, `the cached token served the call (token requests: gw ${fetchesBy.gw}, gw-pc ${fetchesBy.form})`);

  // 2. Shortly before expiry the gateway fetches a new token by itself (no 401 on the way).
  const lastUp = (id) => seen.filter((r) => r.method === 'POST' && (!id || claimsOf(r.auth).client_id === id)).at(-1);
  const t1 = lastUp('gw').auth, exp1 = claimsOf(t1).exp;
  // The gateway got the token just after iat (whole seconds) and stops using it 16 s after
  // that, about 3 s before exp: 1.5 s before exp it must have fetched a new one, with room for a
  // slow machine on both sides.
  await sleep(Math.max(0, exp1 * 1000 - Date.now() - 1500));
  const s2 = seen.length;
  check((await echo('up__echo', 'near expiry')).includes('near expiry'), 'a call near the token\'s expiry works');
  const t2 = lastUp('gw').auth;
  check(fetchesBy.gw === f0 + 1 && t2 !== t1 && seen.slice(s2).every((r) => r.status !== 401),
    `it was sent with a new token, fetched before the old one expired, with no 401 (token requests ${fetchesBy.gw})`);

  // 3. The authorization server revokes the gateway's token for upstream rv (opaque, checked
  // by the upstream through introspection): the upstream refuses it (401), the gateway fetches a
  // new one and sends the call again; the client sees nothing of it.
  check((await echo('rv__echo', 'opaque')).includes('opaque'), 'a call through an upstream that gets opaque tokens works');
  const o1 = lastUp().auth;
  const rvBefore = fetchesBy['gw-rv'];
  check(!o1.includes('.') && rvBefore === 1, `its token is opaque and was fetched once (${rvBefore})`);
  await fetch(`${ISSUER}/token/revocation`, { method: 'POST', headers: { authorization: basic('gw-rv', GW_SECRET),
    'content-type': 'application/x-www-form-urlencoded' }, body: form({ token: o1.slice(7) }) });
  await until('the upstream to refuse the revoked token', async () => (await direct(o1)) === 401);
  check(true, 'once revoked, the upstream refuses the gateway\'s cached token (401)');
  const s3 = seen.length;
  check((await echo('rv__echo', 'after revocation')).includes('after revocation'), 'the client\'s next call succeeds');
  const after = seen.slice(s3).filter((r) => r.method === 'POST');
  check(after.length === 2 && after[0].status === 401 && after[0].auth === o1 && after[1].status === 200 && after[1].auth !== o1 &&
    fetchesBy['gw-rv'] === rvBefore + 1,
    `the upstream said 401 to the old token, the gateway fetched one new token (${fetchesBy['gw-rv'] - rvBefore}) and sent the call again (statuses ${after.map((r) => r.status).join(',')})`);

  // 4. The authorization server is down when a token is needed: a clear error naming the upstream.
  ttl = 600;
  await sleep(Math.max(0, claimsOf(t2).exp * 1000 - Date.now() + 200)); // the 20 s tokens expired
  check((await echo('up__echo', 'long token')).includes('long token') && claimsOf(lastUp('gw').auth).exp - claimsOf(lastUp('gw').auth).iat === 600,
    'upstream up gets a long-lived token');
  ttl = 2;
  await echo('pc__echo', 'short again'); // gw-pc fetches a 2 s token, which goes stale at once
  await until('a short gw-pc token', async () => {
    const a = seen.filter((r) => r.method === 'POST' && claimsOf(r.auth).client_id === 'gw-pc').at(-1)?.auth;
    return a && claimsOf(a).exp - claimsOf(a).iat <= 2 ? true : (await echo('pc__echo', 'x'), false);
  });
  await stopAS();
  await sleep(2100);
  let err = '';
  try { await client.callTool({ name: 'pc__echo', arguments: { text: 'no AS' } }); } catch (e) { err = e.message; }
  check(/upstream pc: no access token from http:\/\/127\.0\.0\.1:14220\/token/.test(err), `with the authorization server down the call fails naming the upstream (${err})`);
  check((await echo('up__echo', 'other upstream')).includes('other upstream'), 'another upstream, whose token is still valid, is unaffected');

  // 5. Nothing secret in the log or the metrics.
  const log = readFileSync(path.join(tmp, 'gw.log'), 'utf8');
  const metrics = await (await fetch(`http://127.0.0.1:${GW}/metrics`)).text();
  const sigs = [...new Set(seen.map((r) => r.auth).filter(Boolean))].map((a) => a.includes('.') ? a.split('.')[2] : a.slice(7));
  check(/upstream up: got an access token from http:\/\/127\.0\.0\.1:14220\/token/.test(log), 'the log says when a token was got');
  check(!sigs.some((s) => log.includes(s) || metrics.includes(s)) && !log.includes(GW_SECRET) && !metrics.includes(GW_SECRET),
    `no upstream token (${sigs.length}) and no client secret in the gateway's log or metrics`);
  await client.close();

  // 6. A clean exit (under the sanitizers: nothing leaked, token sources included).
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
