// Client authentication, refused: every refusal of issue 23's list against a real cluster (Redis,
// two nodes, the balancer), with tokens made by the `jose` npm package and the JWKS served by a
// small HTTP server the test runs (it counts fetches). Checks the 401/403 headers, the RFC 9728
// metadata through the balancer, the audit lines (and that no token ever reaches a log), and that
// a session id presented by another principal is a 404 exactly like an unknown session: on the
// node holding it, on another node that must claim it from Redis, and for Last-Event-ID.
// Ports 17925 (JWKS), 17930-17932, 17970, 17980, 17990-17992.
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Cluster, kill, sleep, tmp } from '../lib/cluster.mjs';

const npm = process.env.MCPGW_NPM || path.join(process.env.HOME, '.cache/mcpgw-npm');
const require = createRequire(path.join(npm, 'node_modules/'));
const jose = await import(pathToFileURL(require.resolve('jose')).href);
const { Client } = await import(pathToFileURL(require.resolve('@modelcontextprotocol/sdk/client/index.js')).href);
const { StreamableHTTPClientTransport } = await import(pathToFileURL(require.resolve('@modelcontextprotocol/sdk/client/streamableHttp.js')).href);

let ok = true;
const check = (cond, what) => { console.log(`${cond ? 'ok' : 'FAIL'} - ${what}`); if (!cond) ok = false; };

const ISS = 'https://issuer.test';
const BASE = 17930;
const RESOURCE = `http://127.0.0.1:${BASE}/mcp`;
const SCOPE = 'mcp:tools';

// ---- keys and the JWKS server ----
const keys = {};
const jwks = { keys: [] };
for (const [alg, kid, opts] of [['RS256', 'rs', { modulusLength: 2048 }], ['ES256', 'es', {}], ['EdDSA', 'ed', { crv: 'Ed25519' }]]) {
  const { publicKey, privateKey } = await jose.generateKeyPair(alg, { ...opts, extractable: true });
  keys[alg] = { kid, privateKey, publicKey };
  jwks.keys.push({ ...(await jose.exportJWK(publicKey)), kid, alg, use: 'sig' });
}
const stray = await jose.generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
let fetches = 0;
const jwksServer = createServer((req, res) => {
  fetches++;
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(jwks));
});
await new Promise((r) => jwksServer.listen(17925, '127.0.0.1', r));

// A counter of a node's /metrics by its full label set.
async function counter(port, name, labels) {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}} `));
  return line ? Number(line.split(' ')[1]) : 0;
}
const now = () => Math.floor(Date.now() / 1000);
const claims = (sub, extra = {}) => ({ iss: ISS, aud: RESOURCE, sub, scope: SCOPE, iat: now() - 5, exp: now() + 600, ...extra });
async function sign(alg, c, { kid, key, header } = {}) {
  return new jose.SignJWT(c).setProtectedHeader({ alg, kid: kid ?? keys[alg].kid, typ: 'at+jwt', ...header })
    .sign(key ?? keys[alg].privateKey);
}

// ---- API keys ----
const apiKey = 'k'.repeat(8) + Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64url');
const { createHash } = await import('node:crypto');
const keyFile = path.join(tmp, 'apikeys.txt');
writeFileSync(keyFile, `# test keys\nci-bot ${createHash('sha256').update(apiKey).digest('hex')} ${SCOPE}\n`);

const cluster = new Cluster({
  base: BASE, nodes: 2,
  nodeArgs: ['--auth', 'both', '--auth-issuer', ISS, '--auth-jwks-url', 'http://127.0.0.1:17925/jwks',
    '--auth-resource', RESOURCE, '--auth-scopes', SCOPE, '--auth-skew', '30s',
    '--auth-unknown-kid-interval', '5s', '--auth-apikeys', keyFile],
});
await cluster.start();
const started = Date.now(); // every node has fetched the JWKS once by now
const node = (i) => `http://127.0.0.1:${cluster.nodePort(i)}/mcp`;
try {
  // ---- metadata, through the balancer ----
  for (const p of ['/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-protected-resource']) {
    const r = await fetch(`http://127.0.0.1:${BASE}${p}`);
    const m = r.status === 200 ? await r.json() : {};
    check(m.resource === RESOURCE && m.authorization_servers?.[0] === ISS && m.scopes_supported?.[0] === SCOPE,
      `protected resource metadata at ${p} through the balancer names the public URL (${m.resource})`);
  }

  const init = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'refusals', version: '1' } } };
  async function post(url, token, body = init, sid) {
    const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    if (token) headers.authorization = `Bearer ${token}`;
    if (sid) headers['mcp-session-id'] = sid;
    const r = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body) });
    return { status: r.status, www: r.headers.get('www-authenticate') || '', sid: r.headers.get('mcp-session-id'), text: await r.text() };
  }

  // ---- no token ----
  let r = await post(cluster.url, null);
  const meta = `resource_metadata="http://127.0.0.1:${BASE}/.well-known/oauth-protected-resource/mcp"`;
  check(r.status === 401 && r.www.startsWith('Bearer ') && r.www.includes(meta) && r.www.includes(`scope="${SCOPE}"`) && !r.www.includes('error='),
    `no token: 401, WWW-Authenticate names the metadata and the scope (${r.www})`);

  // ---- each bad token ----
  const good = await sign('ES256', claims('alice'));
  const [gh, , gs] = good.split('.');
  const pem = await jose.exportSPKI(keys.RS256.publicKey);
  const bad = [
    ['expired', 'expired', await sign('ES256', claims('alice', { iat: now() - 7200, exp: now() - 3600 }))],
    ['not yet valid', 'not_yet_valid', await sign('EdDSA', claims('alice', { nbf: now() + 3600 }))],
    ['wrong audience', 'wrong_audience', await sign('RS256', claims('alice', { aud: 'https://other.example/mcp' }))],
    ['token for another resource', 'wrong_audience', await sign('RS256', claims('alice', { aud: `http://127.0.0.1:${BASE}/other` }))],
    ['wrong issuer', 'wrong_issuer', await sign('ES256', claims('alice', { iss: 'https://evil.example' }))],
    ['alg none', 'alg_not_allowed', new jose.UnsecuredJWT(claims('alice')).encode()],
    ['HS256 keyed with the public key', 'alg_not_allowed', await new jose.SignJWT(claims('alice')).setProtectedHeader({ alg: 'HS256', kid: 'rs' }).sign(new TextEncoder().encode(pem))],
    ['tampered payload', 'bad_signature', `${gh}.${jose.base64url.encode(JSON.stringify(claims('root', { scope: 'admin ' + SCOPE })))}.${gs}`],
    ['signed by a key the JWKS does not hold', 'bad_signature', await sign('RS256', claims('alice'), { key: stray.privateKey })],
    ['unknown API key', 'bad_apikey', 'x'.repeat(43)],
  ];
  for (const [what, reason, tok] of bad) {
    r = await post(cluster.url, tok);
    check(r.status === 401 && r.www.includes('error="invalid_token"') && r.www.includes(meta),
      `${what}: 401 invalid_token (${r.www.slice(0, 140)})`);
  }

  // ---- insufficient scope ----
  r = await post(cluster.url, await sign('RS256', claims('alice', { scope: 'mcp:read' })));
  check(r.status === 403 && r.www.includes('error="insufficient_scope"') && r.www.includes(`scope="${SCOPE}"`),
    `a token without the required scope: 403 insufficient_scope naming it (${r.www.slice(0, 160)})`);

  // ---- unknown kid: one refetch, then refused; a rotated-in key is found by that refetch ----
  // The interval counts from any fetch, the nodes' first ones at start among them: let it pass.
  await sleep(Math.max(0, started + 5500 - Date.now()));
  const f0 = fetches;
  r = await post(node(2), await sign('RS256', claims('alice'), { kid: 'made-up', key: stray.privateKey }));
  check(r.status === 401 && r.www.includes('error="invalid_token"') && fetches === f0 + 1,
    `unknown kid: the JWKS is fetched once more (${fetches - f0}), then 401`);
  r = await post(node(2), await sign('RS256', claims('alice'), { kid: 'made-up-2', key: stray.privateKey }));
  check(r.status === 401 && fetches === f0 + 1, `another unknown kid right after: refused without a fetch (${fetches - f0} in all)`);
  jwks.keys.push({ ...(await jose.exportJWK(stray.publicKey)), kid: 'rotated', alg: 'RS256', use: 'sig' });
  r = await post(node(1), await sign('RS256', claims('alice'), { kid: 'rotated', key: stray.privateKey }));
  check(r.status === 200 && fetches === f0 + 2, `a key rotated into the JWKS is fetched on its first token and accepted (${r.status})`);

  // ---- accepted: SDK clients through the balancer, JWT and API key ----
  async function sdk(token) {
    const client = new Client({ name: 'auth-test', version: '1' }, { capabilities: {} });
    const transport = new StreamableHTTPClientTransport(new URL(cluster.url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
    await client.connect(transport);
    return { client, transport };
  }
  const alice = await sdk(good);
  const echo = await alice.client.callTool({ name: 'echo', arguments: { text: 'hi' } });
  check(JSON.stringify(echo).includes('hi'), 'a valid JWT: the SDK client initializes and calls echo through the balancer');
  const bot = await sdk(apiKey);
  const echo2 = await bot.client.callTool({ name: 'echo', arguments: { text: 'bot' } });
  check(JSON.stringify(echo2).includes('bot'), 'a valid API key: the SDK client calls echo through the balancer');
  // The balancer's multiplexed GET streams carry Authorization too.
  const sid = alice.transport.sessionId;
  const getStream = async (url, token, extra = {}) => {
    const ac = new AbortController();
    const headers = { accept: 'text/event-stream', 'mcp-session-id': sid, ...extra };
    if (token) headers.authorization = `Bearer ${token}`;
    const res = await fetch(url, { headers, signal: ac.signal });
    const st = res.status;
    ac.abort();
    return st;
  };
  check(await getStream(cluster.url, good) === 200, 'a GET stream through the balancer with the token: 200');
  check(await getStream(cluster.url, null) === 401, 'a GET stream through the balancer without it: 401');

  // ---- a session id presented by another principal ----
  const bobTok = await sign('EdDSA', claims('bob'));
  const call = { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', arguments: { text: 'x' } } };
  const unknown = await post(cluster.url, bobTok, call, 'n1-doesnotexist0000000000000000');
  r = await post(cluster.url, bobTok, call, sid);
  check(r.status === 404 && r.text === unknown.text, `bob with alice's session id: 404, the same body as an unknown session (${r.text})`);
  const holder = sid.startsWith('n1') ? 1 : 2, other = 3 - holder;
  const hij0 = await counter(cluster.nodePort(other), 'mcpgw_node_auth_refused_total', `node="n${other}",reason="session_principal"`);
  r = await post(node(other), bobTok, call, sid);
  check(r.status === 404 && r.text === unknown.text, `bob on the other node, which claims the session from Redis: 404 (${r.status})`);
  const hij1 = await counter(cluster.nodePort(other), 'mcpgw_node_auth_refused_total', `node="n${other}",reason="session_principal"`);
  check(hij1 === hij0 + 1, `the hijack attempt is counted (${hij0} -> ${hij1})`);
  const owner = execFileSync('redis-cli', ['-p', String(cluster.redisPort), 'HGET', `mcpgw:{${sid}}:s`, 'owner']).toString().trim();
  check(owner === `n${holder}`, `and it did not move the session away from its node (owner ${owner})`);
  check(await getStream(node(other), bobTok, { 'last-event-id': '0.1-0' }) === 404, 'bob resuming alice\'s stream with Last-Event-ID: 404');
  // The principal travels with the record: alice goes on after her node dies (a real failover:
  // the other node claims the session as her), bob is still refused there.
  kill(`n${holder}`);
  r = await post(node(other), good, call, sid);
  check(r.status === 200 && r.text.includes('"x"'), `alice's session after its node died: served by the other node (${r.status})`);
  r = await post(node(other), bobTok, call, sid);
  check(r.status === 404, 'and bob still gets 404 there');

  // ---- the audit log: one line per refusal, never a token ----
  await sleep(200);
  const logs = readdirSync(tmp).filter((f) => /^n\d\.log$/.test(f)).map((f) => readFileSync(path.join(tmp, f), 'utf8')).join('');
  const lines = logs.split('\n').filter((l) => l.includes('audit=auth'));
  for (const reason of ['no_token', 'expired', 'not_yet_valid', 'wrong_audience', 'wrong_issuer', 'alg_not_allowed', 'bad_signature', 'unknown_kid', 'bad_apikey', 'insufficient_scope', 'session_principal'])
    check(lines.some((l) => l.includes(`reason=${reason} `)), `audit line for ${reason}`);
  // the attempt through the balancer: its X-Forwarded-For is logged beside the peer address
  const hijack = lines.find((l) => l.includes('reason=session_principal') && !l.includes('forwarded_for="-"'));
  check(hijack && hijack.includes(`principal="${ISS} bob"`) && hijack.includes(`session="${sid}"`) && hijack.includes('request_id="7"') && hijack.includes('remote="127.0.0.1"') && hijack.includes('forwarded_for="127.0.0.1"'),
    `the hijack audit line names principal, session, request id and address: ${hijack}`);
  const secrets = [good, bobTok, apiKey, ...bad.map((b) => b[2])].map((t) => t.split('.').pop()).filter((t) => t.length > 20);
  check(!secrets.some((s) => logs.includes(s)), 'no token or key (not even a signature) appears in any node log');
  await alice.client.close().catch(() => {});
  await bot.client.close().catch(() => {});
} catch (e) {
  check(false, `unexpected: ${e.stack}`);
} finally {
  jwksServer.close();
}
process.exit(ok ? 0 : 1);
