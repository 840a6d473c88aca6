// Failover: redis + 4 nodes (Redis store, gossip) + balancer; 40 SDK 1.x clients, each
// subscribed to a notes URI and calling echo in a loop, a writer updating the notes; kill -9 the
// node holding the most sessions (at least a quarter). Every client keeps its session id and
// carries on; every notes version reaches every subscriber exactly once; no client sees more
// than one failed call. The balancer carries each of the dead node's GET streams on at another
// node (--stream-resume): the SDK's stream never breaks. Prints recovery time and Redis memory
// per session.
import { execFileSync } from 'node:child_process';
import { Cluster, Workload, kill, nodeOf, sleep } from '../lib/cluster.mjs';

const cluster = new Cluster({ base: 16100, nodes: 4 });
await cluster.start();
const redisUsed = () => Number(/used_memory:(\d+)/.exec(
  execFileSync('redis-cli', ['-p', String(cluster.redisPort), 'info', 'memory']).toString())[1]);
const redisBase = redisUsed();

const wl = new Workload(cluster.url, { clients: 40, notes: 4, prefix: 'fo' });
await wl.open();
console.log('sessions per node before the kill:', JSON.stringify(wl.perNode()));
const [victim, held] = wl.busiest();
// The notes writer is an SDK client with a GET stream of its own: carried on too if it was there.
const writerThere = (await nodeOf(wl.writer.client)) === victim ? 1 : 0;
if (held < 40 / 4) throw new Error(`busiest node ${victim} holds fewer than a quarter`);
wl.start();
await sleep(2000);
wl.mark(victim);
kill(victim);
console.log(`kill -9 ${victim} (holding ${held} sessions)`);
await sleep(6000);
await wl.stop();

const res = wl.check({ maxFailures: 1 });
let ok = res.ok;
for (const c of wl.clients.filter((c) => c.node === victim)) {
  if ((await nodeOf(c.client)) === victim) { ok = false; console.log(`client ${c.i} still on ${victim}?`); }
}
const rec = wl.recovery();
console.log(`recovery of ${victim}'s ${rec.n} sessions after kill -9: p50 ${rec.p50} ms, p99 ${rec.p99} ms, max ${rec.max} ms`);
if (!(rec.p99 < 3000)) { ok = false; console.log('recovery p99 is not under 3 s'); }
const metrics = await (await fetch(`http://127.0.0.1:${cluster.base + 40}/metrics`)).text();
const resumed = [...metrics.matchAll(/^mcpgw_balancer_streams_resumed_total\{[^}]*\} (\d+)$/gm)]
  .reduce((a, m) => a + Number(m[1]), 0);
console.log(`the balancer carried ${resumed} of ${victim}'s ${held + writerThere} GET streams on at ` +
  `other nodes${writerThere ? ' (the notes writer\'s included)' : ''}`);
if (resumed !== held + writerThere) { ok = false; console.log('not every stream of the dead node was carried on'); }
const keys = execFileSync('redis-cli', ['-p', String(cluster.redisPort), 'dbsize']).toString().trim();
const used = redisUsed() - redisBase;
console.log(`redis: ${keys} keys, ${used} B over the empty server, ~${Math.round(used / 41)} B per session ` +
  `(record, subscriptions, recorded results; the notes' event streams, ${res.received} deliveries, are shared)`);
if (!ok) { console.log('FAIL'); process.exit(1); }
console.log('ok - failover: every session kept its id, 0 notifications lost, 0 duplicated');
process.exit(0);
