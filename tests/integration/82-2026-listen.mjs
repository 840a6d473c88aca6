// 82-2026-listen.mjs - subscriptions/listen (revision 2026-07-28) across the cluster: redis +
// 4 nodes + balancer. Listen streams opened through the balancer (raw HTTP: the acknowledgement
// first, the subscription id in every message, the filter honoured) receive the resource updates
// written through other nodes by session-era clients; then the node holding the listen streams
// is killed with -9 while a writer keeps updating: the balancer re-opens each stream at a live
// node, the client sees one acknowledgement in all, and every update arrives exactly once, as
// does the resource list change of a note created while the node was frozen.
import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Cluster, connect, kill, metric, sleep } from '../lib/cluster.mjs';

const NPM = process.env.MCPGW_NPM || path.join(process.env.HOME, '.cache/mcpgw-npm');
const sdk2 = await import(
  pathToFileURL(path.join(NPM, 'node_modules/@modelcontextprotocol/client/dist/index.mjs')).href);

const cluster = new Cluster({ base: 17800, nodes: 4 });
await cluster.start();
const fail = (m) => { console.log(`not ok - ${m}`); process.exit(1); };
const META = (ver = true) => ({
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientInfo': { name: 'listen-test', version: '1' },
  'io.modelcontextprotocol/clientCapabilities': {},
  ...(ver ? {} : {}),
});

// One listen stream over HTTP/1.1 through the balancer; its SSE events parsed as they come.
function listen(id, notifications, { header = true } = {}) {
  const body = JSON.stringify({ jsonrpc: '2.0', id, method: 'subscriptions/listen',
    params: { _meta: META(), notifications } });
  const s = { id, events: [], comments: 0, ended: false, status: 0 };
  const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream',
    'mcp-protocol-version': '2026-07-28', 'content-length': Buffer.byteLength(body) };
  if (header) headers['mcp-method'] = 'subscriptions/listen';
  s.req = http.request({ host: '127.0.0.1', port: cluster.base, path: '/mcp', method: 'POST', headers,
    agent: false }, (res) => {
    s.status = res.statusCode;
    let buf = '';
    res.setEncoding('utf8');
    res.on('data', (d) => {
      buf += d;
      let k;
      while ((k = buf.indexOf('\n\n')) >= 0) {
        const ev = buf.slice(0, k); buf = buf.slice(k + 2);
        const data = ev.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('\n');
        if (!data) { s.comments++; continue; }
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

async function waitFor(cond, what, ms = 20000) {
  const end = Date.now() + ms;
  while (Date.now() < end) { if (cond()) return; await sleep(25); }
  fail(`timed out waiting for ${what}`);
}

const N_STREAMS = 12, NOTES = ['l0', 'l1', 'l2'];
const uri = (k) => `mcpgw://notes/${k}`;
const streams = [];
for (let i = 0; i < N_STREAMS; i++)
  streams.push(listen(i % 2 ? `s-${i}` : i, { resourceSubscriptions: [uri(NOTES[i % 3])], toolsListChanged: true, resourcesListChanged: true }));
// The official SDK 2.x client, pinned to 2026-07-28, listens too (its listen() resolves on the
// acknowledgement; notifications reach its ordinary handlers).
const sdkClients = [];
for (let i = 0; i < 3; i++) {
  const k = NOTES[i % 3], got = [];
  const client = new sdk2.Client({ name: `sdk2-${i}`, version: '1.0.0' },
    { capabilities: {}, versionNegotiation: { mode: { pin: '2026-07-28' } } });
  client.setNotificationHandler('notifications/resources/updated', (n) => {
    if (n.params.uri === uri(k)) got.push(n.params._meta['io.mcpgw/version']);
  });
  await client.connect(new sdk2.StreamableHTTPClientTransport(new URL(cluster.url)));
  const sub = await client.listen({ resourceSubscriptions: [uri(k)] });
  if (JSON.stringify(sub.honoredFilter.resourceSubscriptions) !== JSON.stringify([uri(k)]))
    fail(`SDK 2.x client: honoured filter ${JSON.stringify(sub.honoredFilter)}`);
  let closed = null;
  sub.closed.then((why) => { closed = why; });
  sdkClients.push({ i, k, client, sub, got, closed: () => closed });
}
console.log('ok - the SDK 2.x client pinned to 2026-07-28 opens listen streams through the balancer');
// Filter: a stream that asked only for prompt list changes gets no resource update.
const narrow = listen(99, { promptsListChanged: true });
await waitFor(() => [...streams, narrow].every((s) => s.events.length >= 1), 'every acknowledgement');
for (const s of [...streams, narrow]) {
  const a = s.events[0];
  if (s.status !== 200 || a.method !== 'notifications/subscriptions/acknowledged')
    fail(`stream ${s.id}: first message is not the acknowledgement: ${JSON.stringify(a)}`);
  if (a.params._meta['io.modelcontextprotocol/subscriptionId'] !== s.id)
    fail(`stream ${s.id}: acknowledgement carries subscription id ${JSON.stringify(a.params._meta)}`);
}
if (JSON.stringify(streams[0].events[0].params.notifications) !==
    JSON.stringify({ toolsListChanged: true, resourcesListChanged: true, resourceSubscriptions: [uri('l0')] }))
  fail(`acknowledged filter: ${JSON.stringify(streams[0].events[0].params.notifications)}`);
console.log('ok - every listen stream is acknowledged first, with its subscription id and the filter it honours');

// Where the streams are: each node's gauge.
const perNode = {};
for (let i = 1; i <= 4; i++) perNode[cluster.nodeId(i)] = await metric(cluster.nodePort(i), 'mcpgw_node_listen_streams');
console.log('listen streams per node:', JSON.stringify(perNode));
const victim = Object.entries(perNode).sort((a, b) => b[1] - a[1])[0][0];
const held = perNode[victim];
if (Object.values(perNode).filter((v) => v > 0).length < 2) fail('the balancer did not spread listen streams by load');

// Writers: session-era SDK 1.x clients, on nodes other than the victim where possible.
const writers = [];
for (let i = 0; i < 8 && writers.length < 2; i++) {
  const w = await connect(cluster.url, `writer-${i}`);
  const node = (await w.client.callTool({ name: 'node_info', arguments: {} })).structuredContent.node;
  if (node !== victim) writers.push(w); else await w.client.close();
}
if (!writers.length) fail('no writer landed on a node other than the listen streams\' busiest');
const published = Object.fromEntries(NOTES.map((k) => [k, 0]));
let writing = true, j = 0, writeFailures = 0;
const writerLoop = (async () => {
  while (writing) {
    const k = NOTES[j % NOTES.length], w = writers[j++ % writers.length];
    try {
      const r = await w.client.callTool({ name: 'notes_write', arguments: { name: k, text: `t${j}` } });
      published[k] = Math.max(published[k], Number(/version (\d+)/.exec(r.content[0].text)[1]));
    } catch { writeFailures++; }
    await sleep(15);
  }
})();

const updates = (s) => s.events.filter((e) => e.method === 'notifications/resources/updated');
await waitFor(() => streams.every((s) => updates(s).length >= 3) && sdkClients.every((c) => c.got.length >= 3),
  'updates on every stream before the kill');
console.log('ok - updates written through other nodes reach the listen streams');
// Freeze the node first, so that updates are published while it holds the streams and cannot
// write them: they reach the clients only through the new node's replay (Last-Event-ID).
const before = { ...published };
const listChanges = (s) => s.events.filter((e) => e.method === 'notifications/resources/list_changed').length;
const listBefore = streams.map(listChanges);
kill(victim, 'SIGSTOP');
// A new note while the node is frozen: the resource list changes during the gap. The change
// has an event id of its own, so the new node's replay brings it to the moved streams too.
await writers[0].client.callTool({ name: 'notes_write', arguments: { name: `gap-${process.pid}`, text: 'new' } });
await waitFor(() => NOTES.every((k) => published[k] >= before[k] + 3), 'updates while the node is frozen');
kill(victim);
console.log(`kill -9 ${victim} (holding ${held} listen streams), frozen while ` +
  `${NOTES.map((k) => published[k] - before[k]).join('/')} updates were published`);
await sleep(3000);
writing = false;
await writerLoop;
// Every stream has caught up with the last version of its note.
await waitFor(() => streams.every((s) => {
  const k = NOTES[streams.indexOf(s) % 3];
  return updates(s).some((e) => e.params._meta['io.mcpgw/version'] === published[k]);
}) && sdkClients.every((c) => c.got.includes(published[c.k])), 'the last updates after the kill');
await sleep(500);

let lost = 0, dups = 0, bad = 0;
for (const [i, s] of streams.entries()) {
  const k = NOTES[i % 3], seen = new Map();
  const acks = s.events.filter((e) => e.method === 'notifications/subscriptions/acknowledged').length;
  if (acks !== 1) { bad++; console.log(`stream ${s.id}: ${acks} acknowledgements`); }
  if (s.ended) { bad++; console.log(`stream ${s.id}: ended`); }
  if (listChanges(s) !== listBefore[i] + 1) {
    bad++;
    console.log(`stream ${s.id}: ${listChanges(s) - listBefore[i]} resource list changes after the freeze, want 1`);
  }
  for (const e of s.events) {
    if (e.params?._meta?.['io.modelcontextprotocol/subscriptionId'] !== s.id) { bad++; console.log(`stream ${s.id}: message without its id: ${JSON.stringify(e)}`); }
    if (e.method === 'notifications/resources/updated' && e.params.uri !== uri(k)) { bad++; console.log(`stream ${s.id}: update of ${e.params.uri}`); }
  }
  for (const e of updates(s)) { const v = e.params._meta['io.mcpgw/version']; seen.set(v, (seen.get(v) || 0) + 1); }
  const first = Math.min(...seen.keys());
  for (const [v, n] of seen) if (n > 1) { dups += n - 1; console.log(`stream ${s.id}: version ${v} x${n}`); }
  for (let v = first; v <= published[k]; v++) if (!seen.has(v)) { lost++; if (lost < 10) console.log(`stream ${s.id}: lost ${k} version ${v}`); }
}
for (const c of sdkClients) {
  const seen = new Map();
  for (const v of c.got) seen.set(v, (seen.get(v) || 0) + 1);
  for (const [v, n] of seen) if (n > 1) { dups += n - 1; console.log(`SDK client ${c.i}: version ${v} x${n}`); }
  for (let v = Math.min(...seen.keys()); v <= published[c.k]; v++)
    if (!seen.has(v)) { lost++; if (lost < 10) console.log(`SDK client ${c.i}: lost ${c.k} version ${v}`); }
  if (c.closed()) { bad++; console.log(`SDK client ${c.i}: subscription closed (${c.closed()})`); }
}
if (updates(narrow).length || narrow.events.some((e) => e.method === 'notifications/tools/list_changed'))
  fail('a stream filtered to prompt list changes received other notifications');
const resumed = [...(await (await fetch(`http://127.0.0.1:${cluster.base + 40}/metrics`)).text())
  .matchAll(/^mcpgw_balancer_streams_resumed_total\{[^}]*\} (\d+)$/gm)].reduce((a, m) => a + Number(m[1]), 0);
console.log(`published ${JSON.stringify(published)}; write failures ${writeFailures}; streams carried on ${resumed}; ` +
  `lost ${lost}; duplicated ${dups}; other problems ${bad}`);
if (resumed < held) fail(`the balancer carried ${resumed} of ${held} listen streams on`);
if (lost || dups || bad) fail('listen streams across a node kill');
console.log('ok - kill -9 of the node holding the listen streams: one acknowledgement, no update lost, none twice');
for (const s of [...streams, narrow]) s.req.destroy();
for (const w of writers) await w.client.close().catch(() => {});
for (const c of sdkClients) await c.client.close().catch(() => {});
process.exit(0);
