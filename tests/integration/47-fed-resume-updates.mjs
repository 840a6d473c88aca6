// Shared upstreams' resource updates across a failover: redis + 2 gateway nodes (Redis store) +
// balancer, whose one upstream (session=shared) is another mcpgw-node with two notes, r1 and r2.
// Client A (SDK 1.x) subscribes to both, client B (on the other node) to r2 only, client C (on
// A's node) to r1.
//
// Regression test for updates of a shared upstream being live only: each node holds its own
// subscription at the upstream and passes its updates to its own sessions, so the updates sent
// while a client's node was dead and before its client resumed elsewhere were lost. Now the node
// that claims the session sends one notifications/resources/updated of each of its URIs once its
// own subscription there is acknowledged:
//   1. kill -9 A's node while A's GET stream is held back (its reconnect waits at a gate in its
//      fetch), write r1 (which no live node watches) and r2 (which B's node watches: B gets it
//      live), then let A resume on the surviving node with the same session id: it gets an
//      update of r1 and of r2 (at least once, at most twice), and reads the text written while
//      it was away; B gets no extra update; C, whose session a call (a POST) claims before its
//      GET stream may come back, gets its update of r1 once the GET stream is back;
//   2. after the failover, new writes of r1 and r2 reach A and B live, once each.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Cluster, connect, kill, metric, sdkPath, sleep, startProcess, tmp, types, waitHttp }
  from '../lib/cluster.mjs';

const { Client } = await import(sdkPath('client/index.js'));
const { StreamableHTTPClientTransport } = await import(sdkPath('client/streamableHttp.js'));

const build = process.env.MCPGW_BUILD || path.resolve(new URL('../../build', import.meta.url).pathname);
const BASE = 12200, UP = 12290;
const R1 = 'mcpgw://notes/r1', R2 = 'mcpgw://notes/r2';
const fail = (m) => { console.log(`FAIL: ${m}`); process.exit(1); };
const until = async (cond, ms, what) => {
  for (const end = Date.now() + ms; !(await cond());) {
    if (Date.now() > end) fail(typeof what === 'function' ? what() : what);
    await sleep(50);
  }
};

startProcess('upstream', path.join(build, 'node/mcpgw-node'),
  ['--listen', `127.0.0.1:${UP}`, '--node-id', 'up', '--store', 'memory']);
await waitHttp(`http://127.0.0.1:${UP}/readyz`);
const writer = await connect(`http://127.0.0.1:${UP}/mcp`, 'writer');
const write = (name, text) => writer.client.callTool({ name: 'notes_write', arguments: { name, text } });
await write('r1', 'r1-0');
await write('r2', 'r2-0');

const conf = path.join(tmp, 'gateway.conf');
writeFileSync(conf, `upstream up http http://127.0.0.1:${UP}/mcp session=shared\n`);
// --stream-resume 0: the balancer does not carry A's GET stream on by itself; A resumes it
// when its gate opens.
const cluster = new Cluster({ base: BASE, nodes: 2, nodeArgs: ['--config', conf],
  balancerArgs: ['--stream-resume', '0'] });
await cluster.start();
for (let i = 1; i <= 2; i++) {
  const p = await connect(`http://127.0.0.1:${cluster.nodePort(i)}/mcp`, `probe-${i}`);
  await until(async () => (await p.client.listResources()).resources.some((r) => r.uri === R2),
    20000, `node n${i} never listed ${R2}`);
  await p.client.close();
}

// A client whose GET requests wait while its gate is closed.
async function open(name) {
  const c = { name, got: { [R1]: [], [R2]: [] }, gate: null };
  const gated = async (url, init) => {
    if ((init?.method ?? 'GET') === 'GET') while (c.gate) await c.gate.promise;
    return fetch(url, init);
  };
  c.client = new Client({ name, version: '1.0.0' }, { capabilities: {} });
  c.transport = new StreamableHTTPClientTransport(new URL(cluster.url), {
    fetch: gated,
    reconnectionOptions: { initialReconnectionDelay: 200, maxReconnectionDelay: 1000,
      reconnectionDelayGrowFactor: 1.5, maxRetries: 50 },
  });
  c.client.setNotificationHandler(types.ResourceUpdatedNotificationSchema, (n) => {
    c.got[n.params.uri]?.push({ at: Date.now(), gap: n.params._meta?.['io.mcpgw/resubscribed'] === true });
  });
  await c.client.connect(c.transport);
  c.sid = c.transport.sessionId;
  c.node = c.sid.split('.')[0]; // the node that minted the id holds the session until a move
  c.close = () => { let open; c.gate = { promise: new Promise((r) => { open = r; }) }; c.gate.open = open; };
  c.release = () => { const g = c.gate; c.gate = null; g?.open(); };
  return c;
}
// A and C on one node, B on the other.
const byNode = {};
for (let k = 0; !Object.values(byNode).some((l) => l.length >= 2) || Object.keys(byNode).length < 2; k++) {
  if (k > 16) fail(`the balancer put the sessions on ${Object.keys(byNode)} only`);
  const c = await open(`c${k}`);
  (byNode[c.node] ||= []).push(c);
}
const [a, c] = Object.values(byNode).find((l) => l.length >= 2);
const b = Object.values(byNode).find((l) => l[0].node !== a.node)[0];
const clients = [a, b, c];
for (const o of Object.values(byNode).flat()) if (!clients.includes(o)) await o.client.close();
const survivor = b.node === 'n1' ? 1 : 2;
console.log(`clients A and C on ${a.node}, client B on ${b.node}`);
await a.client.subscribeResource({ uri: R1 });
await a.client.subscribeResource({ uri: R2 });
await b.client.subscribeResource({ uri: R2 });
await c.client.subscribeResource({ uri: R1 });

// Both GET streams carry updates: several of r1 (A's node's sequence moves on), one of r2.
for (let i = 1; i <= 5; i++) await write('r1', `r1-${i}`);
await write('r2', 'r2-1');
await until(() => a.got[R1].length >= 5 && a.got[R2].length >= 1 && b.got[R2].length >= 1 &&
  c.got[R1].length >= 5, 20000,
  () => `updates before the kill: A got ${a.got[R1].length} of r1 and ${a.got[R2].length} of r2, B ` +
    `${b.got[R2].length} of r2`);
await until(() => a.got[R1].length === 5 && a.got[R2].length === 1 && b.got[R2].length === 1, 5000,
  () => `updates before the kill, duplicated: A ${a.got[R1].length}/5 r1, ${a.got[R2].length}/1 r2, ` +
    `B ${b.got[R2].length}/1 r2`);
console.log('ok - live updates through both nodes before the kill');

// 1. A's node dies while A's GET stream is held back; both notes change meanwhile. C's GET
// stream is held back too, but C makes a call first: the call claims C's session, and the
// update for its gap waits until C's GET stream is back.
const gapsBefore = (await metric(cluster.nodePort(survivor), 'mcpgw_node_upstream_gap_updates_total')) || 0;
const claimsBefore = (await metric(cluster.nodePort(survivor), 'mcpgw_node_sessions_claimed_total')) || 0;
const seen = { a1: a.got[R1].length, a2: a.got[R2].length, b2: b.got[R2].length, c1: c.got[R1].length };
a.close();
c.close();
kill(a.node);
console.log(`kill -9 ${a.node}`);
await write('r1', 'r1-gap');
await write('r2', 'r2-gap');
await until(() => b.got[R2].length > seen.b2, 20000, 'B never got the update of r2 made after the kill');
if (a.got[R1].length !== seen.a1 || a.got[R2].length !== seen.a2)
  fail('A got an update while its GET stream was held back');
await c.client.ping(); // a POST: claims C's session on the surviving node, without a GET stream
await until(async () => (await metric(cluster.nodePort(survivor), 'mcpgw_node_sessions_claimed_total')) > claimsBefore,
  20000, 'C\'s call did not claim its session on the surviving node');
if (c.got[R1].length !== seen.c1) fail('C got an update while its GET stream was held back');
a.release();
await until(() => a.got[R1].length > seen.a1 && a.got[R2].length > seen.a2, 30000,
  () => `after its gate opened A got ${a.got[R1].length - seen.a1} updates of r1 and ${a.got[R2].length - seen.a2} ` +
    'of r2 made while its node was dead (at least one of each expected)');
if (a.transport.sessionId !== a.sid) fail('A\'s session id changed');
// The surviving node counts what it sent for A's gap: once both are counted, nothing more comes.
c.release();
await until(() => c.got[R1].length > seen.c1, 30000,
  'C, whose call claimed its session before its GET stream came back, got no update of r1');
await until(async () => (await metric(cluster.nodePort(survivor), 'mcpgw_node_upstream_gap_updates_total')) >=
  gapsBefore + 3, 20000, 'the surviving node did not count three gap updates');
const gapA1 = a.got[R1].length - seen.a1, gapA2 = a.got[R2].length - seen.a2;
const gapC1 = c.got[R1].length - seen.c1;
if (gapA1 > 2 || gapA2 > 2 || gapC1 > 2)
  fail(`one write during the gap came ${gapA1} (A, r1), ${gapA2} (A, r2) and ${gapC1} (C, r1) times`);
if (b.got[R2].length !== seen.b2 + 1) fail(`B got ${b.got[R2].length - seen.b2} updates of one write of r2`);
const text = (await a.client.readResource({ uri: R1 })).contents[0].text;
if (text !== 'r1-gap') fail(`A read ${R1} after its update and got '${text}'`);
console.log(`ok - A resumed on ${b.node} with its session id and got ${gapA1} update(s) of r1 and ` +
  `${gapA2} of r2 written while its node was dead (gap updates: ${[...a.got[R1], ...a.got[R2]]
    .filter((x) => x.gap).length}); B got none extra; C, claimed by a call, got ${gapC1} of r1 once ` +
  'its GET stream was back');

// 2. After the failover: live again, once each.
const after = { a1: a.got[R1].length, a2: a.got[R2].length, b2: b.got[R2].length, c1: c.got[R1].length };
await write('r1', 'r1-after');
await write('r2', 'r2-after');
await until(() => a.got[R1].length > after.a1 && a.got[R2].length > after.a2 && b.got[R2].length > after.b2 &&
  c.got[R1].length > after.c1,
  20000, () => `updates after the failover: A ${a.got[R1].length - after.a1} of r1, ` +
    `${a.got[R2].length - after.a2} of r2, B ${b.got[R2].length - after.b2} of r2`);
// A marker write: once it is in, every update before it has been delivered.
await write('r2', 'r2-marker');
await until(() => a.got[R2].length > after.a2 + 1 && b.got[R2].length > after.b2 + 1, 20000,
  'the marker update of r2 did not arrive');
if (a.got[R1].length !== after.a1 + 1 || a.got[R2].length !== after.a2 + 2 || b.got[R2].length !== after.b2 + 2 ||
  c.got[R1].length !== after.c1 + 1)
  fail(`after the failover: A got ${a.got[R1].length - after.a1} of r1 (1 expected), ` +
    `${a.got[R2].length - after.a2} of r2 (2), B ${b.got[R2].length - after.b2} of r2 (2)`);
console.log('ok - after the failover every write reached its subscribers once, live');
for (const c of clients) await c.client.close().catch(() => {});
await writer.client.close().catch(() => {});
process.exit(0);
