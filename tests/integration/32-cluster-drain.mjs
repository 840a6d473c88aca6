// Graceful drain: SIGTERM on the busiest node under the failover workload. The node announces
// draining in gossip, stops taking sessions, ends its streams so clients reconnect through the
// balancer to other nodes, finishes its calls and exits 0. No client sees an error.
import { Cluster, Workload, exitCode, exited, kill, sleep } from '../lib/cluster.mjs';

let ok = true;
const check = (cond, what) => { console.log(`${cond ? 'ok' : 'FAIL'} - ${what}`); if (!cond) ok = false; };
const cluster = new Cluster({ base: 16400, nodes: 4 });
await cluster.start();
const wl = new Workload(cluster.url, { clients: 24, notes: 4, prefix: 'dr' });
await wl.open();
const [victim, held] = wl.busiest();
wl.start();
await sleep(1500);
wl.mark(victim);
const t0 = Date.now();
kill(victim, 'SIGTERM');
console.log(`SIGTERM ${victim} (holding ${held} sessions)`);
for (let t = 0; t < 150 && !exited(victim); t++) await sleep(100);
check(exited(victim) && exitCode(victim) === 0, `${victim} exited 0 after draining (${Date.now() - t0} ms)`);
await sleep(3000);
await wl.stop();
const res = wl.check({ maxFailures: 0 });
const rec = wl.recovery();
console.log(`sessions of ${victim} served elsewhere after SIGTERM: p50 ${rec.p50} ms, p99 ${rec.p99} ms`);
check(res.ok && res.failures === 0, 'zero client-visible errors; every notes version arrived exactly once');
process.exit(ok ? 0 : 1);
