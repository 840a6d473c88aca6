// Upstream list changes across a failover: redis + 2 gateway nodes (Redis store) + balancer, whose
// one upstream (session=shared) is another mcpgw-node; a new note there changes the upstream's
// resource list, which it tells every session it has, each gateway node's shared session among
// them. Two SDK 1.x clients, one on each gateway node, keep a GET stream open.
//
// Regression test for upstream list changes being live-only with the Redis store: a client whose
// node was killed did not get the notifications its upstreams sent while it was reconnecting
// (each node told only its own sessions, without an event id). Now the first node to see a list
// change records it once for the cluster, and a resume replays it:
//   1. both nodes alive: a new note reaches each client exactly once (recorded once, not once per
//      node);
//   2. kill -9 the node of client A, create a note while A is away (A reconnects only after the
//      other client got it), then A resumes its GET stream on the surviving node: it gets that
//      list change from the replay, exactly once, with its session id unchanged;
//   3. one more note after the failover: once more, exactly once each.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Cluster, connect, kill, metric, sdkPath, sleep, startProcess, tmp, types, waitHttp }
  from '../lib/cluster.mjs';

const { Client } = await import(sdkPath('client/index.js'));
const { StreamableHTTPClientTransport } = await import(sdkPath('client/streamableHttp.js'));

const build = process.env.MCPGW_BUILD || path.resolve(new URL('../../build', import.meta.url).pathname);
const BASE = 13000, UP = 13090, RECONNECT_MS = 4000;
const fail = (m) => { console.log(`FAIL: ${m}`); process.exit(1); };
const until = async (cond, ms, what) => {
  for (const end = Date.now() + ms; !(await cond());) {
    if (Date.now() > end) fail(what);
    await sleep(50);
  }
};

startProcess('upstream', path.join(build, 'node/mcpgw-node'),
  ['--listen', `127.0.0.1:${UP}`, '--node-id', 'up', '--store', 'memory']);
await waitHttp(`http://127.0.0.1:${UP}/readyz`);
const conf = path.join(tmp, 'gateway.conf');
writeFileSync(conf, `upstream up http http://127.0.0.1:${UP}/mcp session=shared\n`);
// --stream-resume 0: the client resumes its GET stream itself, when it chooses (below); the
// balancer's own resumption would carry it on at once, before the note is made.
// --sse-retry: the SDK waits what the server's priming event says before it reconnects.
const cluster = new Cluster({ base: BASE, nodes: 2, nodeArgs: ['--config', conf, '--sse-retry', '4s'],
  balancerArgs: ['--stream-resume', '0'] });
await cluster.start();

// Every gateway node has the upstream's catalogue.
for (let i = 1; i <= 2; i++) {
  const p = await connect(`http://127.0.0.1:${cluster.nodePort(i)}/mcp`, `probe-${i}`);
  await until(async () => (await p.client.listTools()).tools.some((t) => t.name === 'up__echo'),
    20000, `node n${i} never listed up__echo`);
  await p.client.close();
}

// A client whose GET stream comes back only RECONNECT_MS after it broke (its own delay and the
// nodes' `retry:`): the list change made meanwhile is recorded long before it resumes, so it can
// only come from the replay.
async function open(name) {
  const client = new Client({ name, version: '1.0.0' }, { capabilities: {} });
  const transport = new StreamableHTTPClientTransport(new URL(cluster.url), {
    reconnectionOptions: { initialReconnectionDelay: RECONNECT_MS, maxReconnectionDelay: RECONNECT_MS,
      reconnectionDelayGrowFactor: 1, maxRetries: 20 },
  });
  const c = { name, client, transport, changes: 0, at: [] };
  client.setNotificationHandler(types.ResourceListChangedNotificationSchema, () => {
    c.changes++;
    c.at.push(Date.now());
  });
  await client.connect(transport);
  c.sid = transport.sessionId;
  c.node = c.sid.split('.')[0]; // the node that minted the id holds the session until a move
  return c;
}
const clients = [];
for (let k = 0; clients.length < 2 || clients[0].node === clients[1].node; k++) {
  if (k > 8) fail('the balancer put every session on one node');
  const c = await open(`c${k}`);
  if (!clients.some((o) => o.node === c.node)) clients.push(c); else await c.client.close();
}
const [a, b] = clients;
console.log(`client A on ${a.node}, client B on ${b.node}`);
// The GET streams are open once a list change reaches both; give them a moment to be attached.
const writer = await connect(`http://127.0.0.1:${UP}/mcp`, 'writer');
const note = (name) => writer.client.callTool({ name: 'notes_write', arguments: { name, text: name } });
const both = (n, what) => until(() => a.changes >= n && b.changes >= n, 20000,
  `${what}: A got ${a.changes}, B got ${b.changes} list changes, expected ${n}`);
await sleep(500);

// 1. Both alive.
await note('n1');
await both(1, 'a note created with both nodes alive');
await sleep(1000); // a second record of the same change (one per node) would arrive meanwhile
if (a.changes !== 1 || b.changes !== 1) fail(`one list change: A got ${a.changes}, B got ${b.changes}`);
console.log('ok - a list change every node saw reached each client once');

// 2. kill -9 A's node; a note while A is away.
const replayedBefore = await metric(cluster.nodePort(b.node === 'n1' ? 1 : 2), 'mcpgw_node_sse_replayed_total');
const killedAt = Date.now();
kill(a.node);
console.log(`kill -9 ${a.node}`);
await note('n2');
await until(() => b.changes >= 2, 20000, `B got no list change for the note made after the kill`);
if (b.at[1] - killedAt >= RECONNECT_MS)
  fail(`the note after the kill was recorded ${b.at[1] - killedAt} ms later: A may have resumed first`);
await until(() => a.changes >= 2, 30000,
  `A resumed on ${b.node} but never got the list change made while its node was dead (${a.changes})`);
const replayed = await metric(cluster.nodePort(b.node === 'n1' ? 1 : 2), 'mcpgw_node_sse_replayed_total');
if (!(replayed > replayedBefore)) fail(`A's list change was not replayed (${replayedBefore} -> ${replayed})`);
if (a.at[1] - killedAt < RECONNECT_MS) fail(`A got the list change ${a.at[1] - killedAt} ms after the kill, before it resumed`);
if (a.transport.sessionId !== a.sid) fail('A\'s session id changed');
console.log(`ok - the list change made while A's node was dead came with A's resume (after ${a.at[1] - killedAt} ms)`);

// 3. One more after the failover.
await note('n3');
await both(3, 'a note created after the failover');
await sleep(1000);
if (a.changes !== 3 || b.changes !== 3) fail(`three notes: A got ${a.changes}, B got ${b.changes} list changes`);
const r = await a.client.listResources();
if (!['n1', 'n2', 'n3'].every((n) => r.resources.some((x) => x.uri === `mcpgw://notes/${n}`)))
  fail(`A lists ${r.resources.map((x) => x.uri)}`);
console.log('ok - every upstream list change reached each client exactly once, across a kill -9');
for (const c of clients) await c.client.close().catch(() => {});
await writer.client.close().catch(() => {});
process.exit(0);
