// Federation failover with per-client upstream sessions: redis + 4 gateway nodes (Redis store)
// + balancer, whose one upstream (session=per-client) is another mcpgw-node. 16 SDK 1.x clients
// open sessions through the balancer, subscribe (through their own upstream session) to a notes
// URI of the upstream and call the upstream's echo in a loop; a writer talks to the upstream
// directly. Mid-load, kill -9 the gateway node holding the most sessions, and keep writing
// notes while it is dead. Every client carries on with the same session id; the upstream counts
// no second initialize (mcpgw_node_sessions_created_total); every notes version reaches each of
// its subscribers exactly once, those written during the failover included.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Cluster, connect, kill, metric, nodeOf, sleep, startProcess, tmp, types, waitHttp }
  from '../lib/cluster.mjs';

const build = process.env.MCPGW_BUILD || path.resolve(new URL('../../build', import.meta.url).pathname);
const UP = 16980, N = 16, NOTES = 4;
const fail = (m) => { console.log(`FAIL: ${m}`); process.exit(1); };

// The upstream: a plain mcpgw-node with the memory store.
startProcess('upstream', path.join(build, 'node/mcpgw-node'),
  ['--listen', `127.0.0.1:${UP}`, '--node-id', 'up', '--store', 'memory']);
await waitHttp(`http://127.0.0.1:${UP}/readyz`);
const conf = path.join(tmp, 'gateway.conf');
// builtins on: node_info tells which gateway node holds a session.
writeFileSync(conf, `builtins on\nupstream up http http://127.0.0.1:${UP}/mcp session=per-client\n`);

const cluster = new Cluster({ base: 16900, nodes: 4, nodeArgs: ['--config', conf] });
await cluster.start();
const initializes = () => metric(UP, 'mcpgw_node_sessions_created_total');

// Wait for every gateway node's catalogue of the upstream.
const probe = await connect(cluster.url, 'probe');
for (const end = Date.now() + 20000; ;) {
  const { tools } = await probe.client.listTools();
  if (tools.some((t) => t.name === 'up__echo')) break;
  if (Date.now() > end) fail(`no up__echo in the catalogue: ${tools.map((t) => t.name)}`);
  await sleep(100);
}
await probe.client.close();

const writer = await connect(`http://127.0.0.1:${UP}/mcp`, 'writer');
const clients = [];
for (let i = 0; i < N; i++) {
  const { client, transport } = await connect(cluster.url, `fed-${i}`);
  const k = i % NOTES, uri = `mcpgw://notes/fed${k}`;
  const c = { i, k, client, transport, sid: transport.sessionId, got: [], failures: 0, calls: 0 };
  client.setNotificationHandler(types.ResourceUpdatedNotificationSchema, (n) => {
    if (n.params.uri === uri) c.got.push(n.params._meta['io.mcpgw/version']);
  });
  await client.subscribeResource({ uri });
  const r = await client.callTool({ name: 'up__echo', arguments: { text: `hello ${i}` } });
  if (r.content[0].text !== `hello ${i}`) fail(`echo through the gateway: ${JSON.stringify(r)}`);
  c.node = await nodeOf(client);
  clients.push(c);
}
const perNode = {};
for (const c of clients) perNode[c.node] = (perNode[c.node] || 0) + 1;
const [victim, held] = Object.entries(perNode).sort((a, b) => b[1] - a[1])[0];
console.log('sessions per gateway node:', JSON.stringify(perNode));
const before = await initializes();
console.log(`upstream initializes so far: ${before} (4 gateway catalogues, ${N} client sessions, the writer)`);

const published = Array(NOTES).fill(0);
let writing = true, running = true, j = 0, writerFailures = 0;
const write = async () => {
  const k = j++ % NOTES;
  try {
    const r = await writer.client.callTool({ name: 'notes_write', arguments: { name: `fed${k}`, text: `t${j}` } });
    published[k] = Math.max(published[k], Number(/version (\d+)/.exec(r.content[0].text)[1]));
  } catch (e) { writerFailures++; }
};
const loops = clients.map(async (c) => {
  while (running) {
    try {
      const text = `fed${c.i}-${c.calls}`;
      const r = await c.client.callTool({ name: 'up__echo', arguments: { text } });
      if (r.content[0].text !== text) throw new Error('echo mismatch');
    } catch (e) { c.failures++; c.lastError = String(e); }
    c.calls++;
    await sleep(20);
  }
});
let paused = false;
const writerLoop = (async () => { while (writing) { if (!paused) await write(); await sleep(25); } })();
await sleep(1500);
// Let the notifications written so far reach the clients (and their event ids the records):
// what is checked exactly-once from here is what the upstream sends during the failover.
paused = true;
await sleep(300);
kill(victim);
console.log(`kill -9 ${victim} (holding ${held} sessions) under echo load`);
paused = false;
await sleep(6000);
writing = false;
await writerLoop;
await sleep(3000);
running = false;
await Promise.all(loops);

let ok = true, lost = 0, dups = 0;
for (const c of clients) {
  const seen = new Map();
  for (const v of c.got) seen.set(v, (seen.get(v) || 0) + 1);
  for (const [v, n] of seen) if (n > 1) { dups += n - 1; console.log(`client ${c.i} (${c.node}): version ${v} x${n}`); }
  for (let v = 1; v <= published[c.k]; v++)
    if (!seen.has(v)) { lost++; if (lost < 10) console.log(`client ${c.i} (${c.node}): lost version ${v}`); }
  if (c.transport.sessionId !== c.sid) { ok = false; console.log(`client ${c.i}: session id changed`); }
  if (c.failures > 1) { ok = false; console.log(`client ${c.i}: ${c.failures} failed calls (${c.lastError})`); }
}
const after = await initializes();
const moved = clients.filter((c) => c.node === victim).length;
const calls = clients.reduce((a, c) => a + c.calls, 0), failures = clients.reduce((a, c) => a + c.failures, 0);
console.log(`notes versions published: ${published.join(',')} (writer failures ${writerFailures}); ` +
  `lost ${lost}; duplicated ${dups}; failed calls ${failures} of ${calls}; ${moved} sessions moved`);
console.log(`upstream initializes: ${before} before the kill, ${after} after`);
if (after !== before) { ok = false; console.log('the upstream saw a second initialize'); }
if (lost || dups) ok = false;
for (const c of clients) await c.client.close().catch(() => {});
await writer.client.close().catch(() => {});
if (!ok) fail('federation failover');
console.log('ok - federation failover: sessions kept, no second initialize, every notification once');
process.exit(0);
