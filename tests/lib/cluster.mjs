// tests/lib/cluster.mjs - start a local mcpgw cluster (redis-server, nodes, balancer) for
// integration tests, and connect official SDK clients to it. Everything binds to 127.0.0.1.
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import path from 'node:path';

const npm = process.env.MCPGW_NPM || path.join(process.env.HOME, '.cache/mcpgw-npm');
const require = createRequire(path.join(npm, 'node_modules/'));
export const sdkPath = (p) => require.resolve(`@modelcontextprotocol/sdk/${p}`);
const { Client } = await import(sdkPath('client/index.js'));
const { StreamableHTTPClientTransport } = await import(sdkPath('client/streamableHttp.js'));
export const types = await import(sdkPath('types.js'));

const root = process.env.MCPGW_ROOT || path.resolve(new URL('../..', import.meta.url).pathname);
const build = process.env.MCPGW_BUILD || path.join(root, 'build');
export const tmp = process.env.MCPGW_TMP || mkdtempSync('/tmp/mcpgw-cluster-');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const procs = new Map();

export function startProcess(name, cmd, args) {
  const log = openSync(path.join(tmp, `${name}.log`), 'a');
  const p = spawn(cmd, args, { stdio: ['ignore', log, log] });
  procs.set(name, p);
  return p;
}

export function exited(name) {
  const p = procs.get(name);
  return !p || p.exitCode !== null || p.signalCode !== null;
}

export const exitCode = (name) => procs.get(name)?.exitCode;

export function kill(name, signal = 'SIGKILL') {
  const p = procs.get(name);
  if (p && p.exitCode === null) p.kill(signal);
}

export function stopAll() {
  for (const p of procs.values()) if (p.exitCode === null) p.kill('SIGKILL');
}
process.on('exit', stopAll);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { stopAll(); process.exit(1); });

export async function waitHttp(url, ms = 10000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try { if ((await fetch(url)).ok) return; } catch { /* not yet */ }
    await sleep(50);
  }
  throw new Error(`${url} did not come up within ${ms} ms`);
}

// Wait until the balancer's admin /healthz (balancer/admin.h) says that every one of its
// `workers` can send new sessions to each of `nodes` nodes, in a table gossip has confirmed (not
// the --nodes list standing in before it): its first 200 comes with the first node, and sessions
// opened before the rest are found stay on the nodes found first.
export async function waitRoutable(adminPort, nodes, workers, ms = 20000) {
  const end = Date.now() + ms;
  let h = null;
  while (Date.now() < end) {
    try {
      h = await (await fetch(`http://127.0.0.1:${adminPort}/healthz`)).json();
      if (!h.fallback && h.nodes === nodes && h.routable === nodes && h.workers === workers) return h;
    } catch { /* not yet */ }
    await sleep(50);
  }
  throw new Error(`the balancer cannot route to all ${nodes} nodes from its ${workers} workers ` +
    `within ${ms} ms: ${JSON.stringify(h)}`);
}

// A cluster on ports base+0 (balancer), base+1.. (nodes), base+50 (redis), base+60.. (gossip).
export class Cluster {
  constructor({ base, nodes = 4, balancerArgs = [], nodeArgs = [], gossip = true }) {
    Object.assign(this, { base, n: nodes, balancerArgs, nodeArgs, gossip });
    this.redisPort = base + 50;
    this.url = `http://127.0.0.1:${base}/mcp`;
  }
  nodeId(i) { return `n${i}`; }
  nodePort(i) { return this.base + i; }
  // Redis keeps its data in tmp/redis-<port>/ only when told to save (SHUTDOWN SAVE).
  startRedis() {
    const dir = path.join(tmp, `redis-${this.redisPort}`);
    mkdirSync(dir, { recursive: true });
    startProcess('redis', 'redis-server', ['--port', String(this.redisPort), '--bind', '127.0.0.1',
      '--save', '', '--appendonly', 'no', '--dir', dir]);
  }
  startNode(i) {
    const args = ['--listen', `127.0.0.1:${this.nodePort(i)}`, '--node-id', this.nodeId(i),
      '--store', `redis://127.0.0.1:${this.redisPort}`];
    if (this.gossip)
      args.push('--gossip-bind', `127.0.0.1:${this.base + 60 + i}`,
        '--gossip-seeds', `127.0.0.1:${this.base + 61}`);
    startProcess(this.nodeId(i), path.join(build, 'node/mcpgw-node'), [...args, ...this.nodeArgs]);
    return waitHttp(`http://127.0.0.1:${this.nodePort(i)}/readyz`);
  }
  startBalancer() {
    const nodes = [];
    for (let i = 1; i <= this.n; i++) nodes.push(`${this.nodeId(i)}=127.0.0.1:${this.nodePort(i)}`);
    const args = ['--listen', `127.0.0.1:${this.base}`, '--nodes', nodes.join(','),
      '--workers', '2', '--admin', `127.0.0.1:${this.base + 40}`, ...this.balancerArgs];
    if (this.gossip && process.env.MCPGW_BALANCER_GOSSIP !== '0')
      args.push('--gossip-bind', `127.0.0.1:${this.base + 60}`,
        '--gossip-seeds', `127.0.0.1:${this.base + 61}`);
    startProcess('balancer', path.join(build, 'balancer/mcpgw-balancer'), args);
    const w = args.lastIndexOf('--workers'); // the last one given is the one in force
    return waitRoutable(this.base + 40, this.n, Number(args[w + 1]));
  }
  async waitRedis(ms = 10000) {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (spawnSync('redis-cli', ['-p', String(this.redisPort), 'ping']).stdout?.toString().trim() === 'PONG')
        return;
      await sleep(50);
    }
    throw new Error(`redis-server on port ${this.redisPort} did not answer within ${ms} ms`);
  }
  // Returns with Redis answering, every node ready (its store connected) and every balancer
  // worker routing to all of them.
  async start() {
    this.startRedis();
    await this.waitRedis();
    for (let i = 1; i <= this.n; i++) await this.startNode(i);
    await this.startBalancer();
  }
}

// An SDK 1.x client with its own transport; reconnects its GET stream with Last-Event-ID.
export async function connect(url, name = 'mcpgw-test') {
  const client = new Client({ name, version: '1.0.0' }, { capabilities: {} });
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    reconnectionOptions: { initialReconnectionDelay: 200, maxReconnectionDelay: 2000,
      reconnectionDelayGrowFactor: 1.5, maxRetries: 20 },
  });
  await client.connect(transport);
  return { client, transport };
}

export async function nodeOf(client) {
  const r = await client.callTool({ name: 'node_info', arguments: {} });
  return r.structuredContent.node;
}

// The standard workload: `clients` SDK sessions, each subscribed to one of `notes` notes and
// calling echo in a loop, plus a writer updating the notes. check() verifies that every version
// of a note reached each of its subscribers exactly once, sessions kept their ids, and no client
// saw more than `maxFailures` failed calls.
export class Workload {
  constructor(url, { clients = 40, notes = 4, prefix = 'wl', pauseMs = 20, writeMs = 25 } = {}) {
    Object.assign(this, { url, nClients: clients, nNotes: notes, prefix, pauseMs, writeMs });
    this.clients = [];
    this.published = Array(notes).fill(0);
    this.running = false;
    this.markAt = 0;
  }
  noteName(k) { return `${this.prefix}${k}`; }
  async open() {
    for (let i = 0; i < this.nClients; i++) {
      const { client, transport } = await connect(this.url, `${this.prefix}-${i}`);
      const k = i % this.nNotes, uri = `mcpgw://notes/${this.noteName(k)}`;
      const c = { i, k, client, transport, sid: transport.sessionId, got: [], failures: 0, calls: 0 };
      client.setNotificationHandler(types.ResourceUpdatedNotificationSchema, (n) => {
        if (n.params.uri === uri) c.got.push(n.params._meta['io.mcpgw/version']);
      });
      await client.subscribeResource({ uri });
      c.node = await nodeOf(client);
      this.clients.push(c);
    }
    this.writer = await connect(this.url, `${this.prefix}-writer`);
  }
  perNode() {
    const m = {};
    for (const c of this.clients) m[c.node] = (m[c.node] || 0) + 1;
    return m;
  }
  busiest() { return Object.entries(this.perNode()).sort((a, b) => b[1] - a[1])[0]; }
  start() {
    this.running = this.writing = true;
    this.loops = this.clients.map(async (c) => {
      while (this.running) {
        if (this.paused) { await sleep(20); continue; }
        this.inflight = (this.inflight || 0) + 1;
        try {
          const text = `${this.prefix}${c.i}-${c.calls}`;
          const r = await c.client.callTool({ name: 'echo', arguments: { text } });
          if (r.content[0].text !== text) throw new Error('echo mismatch');
          if (this.markAt && !c.servedAgain) c.servedAgain = Date.now();
        } catch (e) {
          c.failures++;
          c.lastError = String(e);
        }
        this.inflight--;
        c.calls++;
        await sleep(this.pauseMs);
      }
    });
    this.writerLoop = (async () => {
      let j = 0;
      while (this.writing) {
        if (this.paused) { await sleep(20); continue; }
        const k = j++ % this.nNotes;
        this.inflight = (this.inflight || 0) + 1;
        try {
          const r = await this.writer.client.callTool({ name: 'notes_write',
            arguments: { name: this.noteName(k), text: `t${j}` } });
          this.published[k] = Math.max(this.published[k], Number(/version (\d+)/.exec(r.content[0].text)[1]));
        } catch (e) { this.writerFailures = (this.writerFailures || 0) + 1; }
        this.inflight--;
        await sleep(this.writeMs);
      }
    })();
  }
  // Pause every client and the writer, and wait (at most timeoutMs) until no call is in flight:
  // after this, nothing the workload does reaches any node.
  async quiesce(timeoutMs = 10000) {
    this.paused = true;
    const end = Date.now() + timeoutMs;
    while ((this.inflight || 0) > 0 && Date.now() < end) await sleep(20);
    return (this.inflight || 0) === 0;
  }
  // Remember a fault's time: recovery is measured from here for the clients on `node`.
  mark(node) { this.markAt = Date.now(); this.markNode = node; for (const c of this.clients) c.servedAgain = 0; }
  async stop(settleMs = 3000) {
    this.writing = false;
    await this.writerLoop;
    await sleep(settleMs);
    this.running = false;
    await Promise.all(this.loops);
  }
  recovery() {
    const rec = this.clients.filter((c) => c.node === this.markNode)
      .map((c) => (c.servedAgain || Infinity) - this.markAt).sort((a, b) => a - b);
    const pct = (p) => rec[Math.min(rec.length - 1, Math.max(0, Math.ceil((p / 100) * rec.length) - 1))];
    return { n: rec.length, p50: pct(50), p99: pct(99), max: rec[rec.length - 1] };
  }
  check({ maxFailures = 1 } = {}) {
    let problems = 0, lost = 0, dups = 0;
    for (const c of this.clients) {
      const max = this.published[c.k], seen = new Map();
      for (const v of c.got) seen.set(v, (seen.get(v) || 0) + 1);
      for (const [v, k] of seen) if (k > 1) { dups += k - 1; if (dups < 10) console.log(`client ${c.i}: version ${v} x${k}`); }
      for (let v = 1; v <= max; v++) if (!seen.has(v)) { lost++; if (lost < 10) console.log(`client ${c.i} (${c.node}): lost version ${v}`); }
      if (c.transport.sessionId !== c.sid) { problems++; console.log(`client ${c.i}: session id changed`); }
      if (c.failures > maxFailures) { problems++; console.log(`client ${c.i}: ${c.failures} failed calls (${c.lastError})`); }
    }
    const received = this.clients.reduce((a, c) => a + c.got.length, 0);
    const failures = this.clients.reduce((a, c) => a + c.failures, 0);
    const calls = this.clients.reduce((a, c) => a + c.calls, 0);
    console.log(`notes versions published: ${this.published.join(',')}; notifications received ${received}; ` +
      `lost ${lost}; duplicated ${dups}; failed calls ${failures} of ${calls}`);
    return { ok: !problems && !lost && !dups, lost, dups, failures, calls, received };
  }
}

export async function metric(port, name) {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const m = new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
  return m ? Number(m[2]) : NaN;
}

export { rmSync };
