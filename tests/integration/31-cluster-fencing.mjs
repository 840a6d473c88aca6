// Fencing: SIGSTOP the busiest node, let its sessions move to other nodes while it is paused,
// SIGCONT it. It must write and deliver nothing for the moved sessions: it drops its copies
// (the "moved" messages reach it before it can act on them, and its stale-epoch writes would be
// refused), then claims its own sessions back through the claim script (new epochs), and every
// client sees each notes version exactly once and at most one failed call.
import { execFileSync } from 'node:child_process';
import { Cluster, Workload, kill, metric, sleep } from '../lib/cluster.mjs';

let ok = true;
const check = (cond, what) => { console.log(`${cond ? 'ok' : 'FAIL'} - ${what}`); if (!cond) ok = false; };
const cluster = new Cluster({ base: 16200, nodes: 4 });
await cluster.start();
const redis = (...a) => execFileSync('redis-cli', ['-p', String(cluster.redisPort), ...a]).toString().trim();

const wl = new Workload(cluster.url, { clients: 16, notes: 4, prefix: 'fe' });
await wl.open();
const [victim, held] = wl.busiest();
const vi = Number(victim.slice(1));
wl.start();
await sleep(1500);
wl.mark(victim);
kill(victim, 'SIGSTOP');
console.log(`SIGSTOP ${victim} (holding ${held} sessions)`);
await sleep(5000);
const mine = wl.clients.filter((c) => c.node === victim);
const owners = mine.map((c) => redis('hget', `mcpgw:{${c.sid}}:s`, 'owner'));
const epochs = mine.map((c) => redis('hget', `mcpgw:{${c.sid}}:s`, 'epoch'));
check(owners.every((o) => o && o !== victim), `while ${victim} is paused its sessions are owned elsewhere (${owners.join(',')})`);
const rec = wl.recovery();
console.log(`sessions served again after SIGSTOP: p50 ${rec.p50} ms, p99 ${rec.p99} ms`);

// Resume it while clients are quiet, so that nothing but the node itself brings a session back
// to it. The writer too, and calls still in flight (an SDK retry can take a while).
check(await wl.quiesce(), 'the workload is quiet before SIGCONT');
kill(victim, 'SIGCONT');
await sleep(2500);
const moved = await metric(cluster.nodePort(vi), 'mcpgw_node_sessions_moved_total');
check(moved >= mine.length, `${victim} dropped the copies of its moved sessions (${moved} moved messages acted on)`);
// An owner changes only through a claim, which raises the epoch. Once its resync is over, the
// resumed node claims back its own sessions that moved while it was paused (all at once, not
// each on its next request): with the clients quiet, every one of them is the victim's again,
// claimed anew (a higher epoch than the takeover's), never kept by its old copy.
const after = mine.map((c) => redis('hmget', `mcpgw:{${c.sid}}:s`, 'owner', 'epoch').split('\n'));
check(after.every(([o, e], k) => o === victim && Number(e) > Number(epochs[k])),
  `after SIGCONT, ${victim} claimed back every session that moved while it was paused (${after.map(([o, e]) => `${o}@${e}`).join(',')})`);
// The victim holds exactly the sessions Redis names it owner of: none of its stale copies.
const all = [...wl.clients.map((c) => c.sid), wl.writer.transport.sessionId];
const ownedByVictim = all.filter((sid) => redis('hget', `mcpgw:{${sid}}:s`, 'owner') === victim).length;
const holds = await metric(cluster.nodePort(vi), 'mcpgw_node_sessions');
check(holds === ownedByVictim,
  `${victim} holds exactly what Redis names it owner of: ${holds} (it had ${held} before the pause)`);
wl.paused = false;
await sleep(2000);
await wl.stop();
const res = wl.check({ maxFailures: 1 });
check(res.ok, 'every session kept its id; every notes version arrived exactly once; at most one failed call each');
process.exit(ok ? 0 : 1);
