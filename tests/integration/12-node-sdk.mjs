// 12-node-sdk.mjs - the official TypeScript SDK 1.x as a real client of one node: tools,
// resources, subscriptions, logging and progress, and a GET stream whose TCP connection is cut
// underneath the client and resumed by the SDK with Last-Event-ID without gap or duplicate.
//
// Client A talks to the node through a small TCP proxy in this process, so that the test can
// kill A's connections while the node keeps running; client B talks to the node directly.
// MCPGW_DEBUG=1 prints the stack and the request heads that went through the proxy on failure.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BUILD = process.env.MCPGW_BUILD || path.join(ROOT, 'build');
const NPM = process.env.MCPGW_NPM ||
    path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'mcpgw-npm');
const TMP = process.env.MCPGW_TMP || fs.mkdtempSync(path.join(os.tmpdir(), 'mcpgw-test.'));
const NODE_PORT = 18100;
const PROXY_PORT = 18101;
const URL_DIRECT = new URL(`http://127.0.0.1:${NODE_PORT}/mcp`);
const URL_PROXY = new URL(`http://127.0.0.1:${PROXY_PORT}/mcp`);
const LOG = path.join(TMP, 'n1.log');

// The SDK by absolute path, so the script runs from any working directory.
const sdk = (p) =>
    import(pathToFileURL(path.join(NPM, 'node_modules/@modelcontextprotocol/sdk/dist/esm', p)).href);
const { Client } = await sdk('client/index.js');
const { StreamableHTTPClientTransport } = await sdk('client/streamableHttp.js');
const { ResourceUpdatedNotificationSchema, LoggingMessageNotificationSchema } = await sdk('types.js');

let node = null;
let proxy = null;
const clients = [];

function fail(msg) {
    throw new Error(msg);
}
function pass(msg) {
    console.log(`ok - ${msg}`);
}
function check(cond, msg) {
    if (!cond) fail(msg);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Poll fn until it returns a truthy value; fail with what after ms.
async function waitFor(what, fn, ms = 5000) {
    const until = Date.now() + ms;
    for (;;) {
        const v = await fn();
        if (v) return v;
        if (Date.now() > until) fail(`timed out after ${ms} ms waiting for ${what}`);
        await sleep(25);
    }
}

// Bound a promise so a hung client cannot hang the test.
function within(ms, what, p) {
    let t;
    return Promise.race([
        p.finally(() => clearTimeout(t)),
        new Promise((_, rej) => {
            t = setTimeout(() => rej(new Error(`${what} did not finish within ${ms} ms`)), ms);
        }),
    ]);
}

async function metric(name) {
    const r = await fetch(`http://127.0.0.1:${NODE_PORT}/metrics`);
    const text = await r.text();
    const m = text.match(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm'));
    return m ? Number(m[1]) : NaN;
}

function startNode() {
    const bin = path.join(BUILD, 'node/mcpgw-node');
    check(fs.existsSync(bin), `${bin} not found (set MCPGW_BUILD)`);
    const out = fs.openSync(LOG, 'w');
    node = spawn(bin, ['--listen', `127.0.0.1:${NODE_PORT}`, '--node-id', 'n1', '--store', 'memory'],
        { stdio: ['ignore', out, out] });
    fs.closeSync(out);
    node.exitCode_ = null;
    node.on('exit', (code, sig) => { node.exitCode_ = code ?? sig; });
}

// A TCP proxy whose connections can be cut (cut()) and whose new connections can be held back
// (hold(true)) until released, so a reconnect happens exactly when the test wants it.
function startProxy() {
    const pairs = new Set();
    const held = [];
    let holding = false;
    const seen = []; // the first bytes of every client connection (request heads)
    let truncate = false;
    const connect = (c) => {
        const u = net.connect(NODE_PORT, '127.0.0.1');
        const pair = { c, u };
        pairs.add(pair);
        const drop = () => {
            c.destroy();
            u.destroy();
            pairs.delete(pair);
        };
        let first = true, cutAfterFirstEvent = false, buf = Buffer.alloc(0);
        c.on('data', (d) => {
            if (first) {
                seen.push(d.toString('latin1'));
                cutAfterFirstEvent = truncate && d.toString('latin1').startsWith('GET ');
                if (cutAfterFirstEvent) truncate = false;
            }
            first = false;
            u.write(d);
        });
        // Normally a plain pipe; a truncated GET passes its head and first SSE event (the
        // node writes one event per chunk), then both sides are cut.
        u.on('data', (d) => {
            if (!cutAfterFirstEvent) return void c.write(d);
            buf = Buffer.concat([buf, d]);
            const s = buf.toString('latin1');
            const h = s.indexOf('\r\n\r\n');
            const m = h < 0 ? null : /^([0-9a-f]+)\r\n/i.exec(s.slice(h + 4));
            if (!m) return;
            const end = h + 4 + m[0].length + parseInt(m[1], 16) + 2;
            if (buf.length < end) return;
            c.write(buf.subarray(0, end), drop);
        });
        c.on('error', drop).on('close', drop);
        u.on('error', drop).on('close', drop);
        c.resume();
    };
    const srv = net.createServer({ pauseOnConnect: true }, (c) => {
        if (holding) held.push(c);
        else connect(c);
    });
    return new Promise((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(PROXY_PORT, '127.0.0.1', () =>
            resolve({
                seen,
                cut() {
                    for (const { c, u } of pairs) {
                        c.destroy();
                        u.destroy();
                    }
                    pairs.clear();
                },
                hold(on) {
                    holding = on;
                    if (!on) held.splice(0).forEach(connect);
                },
                held: () => held.length,
                truncateNextGet() {
                    truncate = true;
                },
                close() {
                    this.cut();
                    held.splice(0).forEach((c) => c.destroy());
                    srv.close();
                },
            }));
    });
}

async function newClient(name, url) {
    const transport = new StreamableHTTPClientTransport(url, {
        reconnectionOptions: {
            initialReconnectionDelay: 200,
            maxReconnectionDelay: 1000,
            reconnectionDelayGrowFactor: 1.5,
            maxRetries: 10,
        },
    });
    const client = new Client({ name: `mcpgw-test-${name}`, version: '1.0.0' });
    client.errors = [];
    client.onerror = (e) => client.errors.push(String(e && e.message ? e.message : e));
    clients.push(client);
    await within(5000, `connect ${name}`, client.connect(transport));
    return client;
}

async function main() {
    startNode();
    await waitFor('the node to answer /healthz', async () => {
        if (node.exitCode_ !== null) fail(`mcpgw-node exited (${node.exitCode_})`);
        try {
            return (await fetch(`http://127.0.0.1:${NODE_PORT}/healthz`)).ok;
        } catch {
            return false;
        }
    }, 10000);
    proxy = await startProxy();

    const a = await newClient('a', URL_PROXY);
    const b = await newClient('b', URL_DIRECT);
    check(a.getServerVersion()?.name, 'initialize returned no serverInfo.name');
    pass(`connect: two SDK clients, server ${a.getServerVersion().name} ${a.getServerVersion().version}`);

    // Both clients open their GET stream after notifications/initialized; wait for both.
    await waitFor('two GET streams', async () => (await metric('mcpgw_node_get_streams')) === 2);

    const { tools } = await within(5000, 'listTools', a.listTools());
    for (const name of ['echo', 'node_info', 'notes_write']) {
        const t = tools.find((x) => x.name === name);
        check(t, `tools/list lacks ${name}`);
        check(typeof t.description === 'string' && t.description.length > 0,
            `tool ${name} has no description`);
    }
    pass(`listTools: ${tools.length} tools, echo/node_info/notes_write described`);

    const echo = await within(5000, 'echo', a.callTool({ name: 'echo', arguments: { text: 'héllo sdk ✓' } }));
    check(!echo.isError && echo.content?.[0]?.type === 'text' && echo.content[0].text === 'héllo sdk ✓',
        `echo returned ${JSON.stringify(echo)}`);
    pass('callTool echo round trip');

    const info = await within(5000, 'node_info', a.callTool({ name: 'node_info', arguments: {} }));
    check(info.structuredContent?.node === 'n1', `node_info returned ${JSON.stringify(info)}`);
    check(info.structuredContent.session === a.transport.sessionId,
        'node_info names another session than the client holds');
    pass('callTool node_info: structuredContent.node == n1');

    const note = `sdk-${process.pid}-${Date.now()}`;
    const uri = `mcpgw://notes/${note}`;
    const write = (i) =>
        within(5000, `notes_write ${i}`, b.callTool({ name: 'notes_write', arguments: { name: note, text: `v${i}` } }));

    const { resources } = await within(5000, 'listResources', a.listResources());
    check(resources.length > 0, 'resources/list is empty');
    const first = resources[0];
    const read = await within(5000, 'readResource', a.readResource({ uri: first.uri }));
    check(read.contents?.[0]?.uri === first.uri, `resources/read ${first.uri}: ${JSON.stringify(read)}`);
    pass(`listResources (${resources.length}) / readResource ${first.uri}`);

    // A subscribes; every notifications/resources/updated for the note is recorded in order.
    const versions = [];
    a.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
        if (n.params.uri === uri) versions.push(n.params._meta?.['io.mcpgw/version']);
    });
    await within(5000, 'subscribe', a.subscribeResource({ uri }));
    await write(1);
    await waitFor('the first update at A', () => versions.length >= 1);
    check(versions[0] === 1, `first update carries version ${versions[0]}`);
    const noteRead = await within(5000, 'read note', a.readResource({ uri }));
    check(noteRead.contents?.[0]?.text === 'v1', `read ${uri}: ${JSON.stringify(noteRead)}`);
    pass('subscribe A, notes_write from B: A gets notifications/resources/updated (version 1)');

    // Cut A's connections under the SDK while the node runs; B writes while A is away.
    const replayed0 = await metric('mcpgw_node_sse_replayed_total');
    await write(2);
    await waitFor('the live update 2 at A', () => versions.length >= 2);
    proxy.hold(true);
    proxy.cut();
    await waitFor('the node to see the GET stream go', async () =>
        (await metric('mcpgw_node_get_streams')) === 1);
    for (let i = 3; i <= 7; i++) await write(i);
    // The SDK reconnects on its own after retry: (1 s); hold it until the writes are done.
    await waitFor('the SDK to reconnect', () => proxy.held() > 0, 5000);
    const seenBefore = proxy.seen.length;
    proxy.hold(false);
    await waitFor('updates 3..7 replayed at A', () => versions.length >= 7, 5000);
    const resume = proxy.seen.slice(seenBefore).find((h) => /^GET /.test(h));
    check(resume, 'no GET went through the proxy after the cut');
    const lei = resume.match(/^last-event-id: *(\S+)\r$/im);
    check(lei, `the reconnecting GET has no Last-Event-ID:\n${resume}`);
    await waitFor('A\'s GET stream back', async () => (await metric('mcpgw_node_get_streams')) === 2);
    for (let i = 8; i <= 9; i++) await write(i);
    await waitFor('updates 8..9 live at A', () => versions.length >= 9, 5000);
    await sleep(200); // a duplicate would arrive now
    check(JSON.stringify(versions) === JSON.stringify([1, 2, 3, 4, 5, 6, 7, 8, 9]),
        `A received versions ${JSON.stringify(versions)}, want 1..9 once each in order`);
    const replayed = (await metric('mcpgw_node_sse_replayed_total')) - replayed0;
    check(replayed >= 5, `the node replayed ${replayed} events, want >= 5`);
    check((await metric('mcpgw_node_sse_replay_gaps_total')) === 0, 'the node counted a replay gap');
    pass(`GET stream cut under A, resumed with Last-Event-ID ${lei[1]}: versions 1..9 exactly once, in order`);

    // Regression: the resumed stream used to start with a fresh priming event whose id was newer
    // than the events replayed after it, so a client cut again right after that event resumed
    // past the replay and lost it. Cut A again, then cut its resumed GET after its first event.
    proxy.hold(true);
    proxy.cut();
    await waitFor('the node to see the GET stream go', async () =>
        (await metric('mcpgw_node_get_streams')) === 1);
    for (let i = 10; i <= 12; i++) await write(i);
    await waitFor('the SDK to reconnect', () => proxy.held() > 0, 5000);
    proxy.truncateNextGet();
    proxy.hold(false);
    await waitFor('updates 10..12 at A after two resumptions', () => versions.length >= 12, 5000);
    await waitFor('A\'s GET stream back', async () => (await metric('mcpgw_node_get_streams')) === 2);
    await write(13);
    await waitFor('update 13 live at A', () => versions.length >= 13, 5000);
    await sleep(200);
    check(JSON.stringify(versions) === JSON.stringify([...Array(13).keys()].map((i) => i + 1)),
        `A received versions ${JSON.stringify(versions)}, want 1..13 once each in order`);
    pass('resumed GET cut again after its first event: versions 10..13 exactly once, in order');

    // Logging and progress on the (new) connection through the proxy.
    const logs = [];
    a.setNotificationHandler(LoggingMessageNotificationSchema, (n) => logs.push(n.params));
    const lr = await within(5000, 'logging tool', a.callTool({ name: 'test_tool_with_logging', arguments: {} }));
    check(!lr.isError, `test_tool_with_logging: ${JSON.stringify(lr)}`);
    check(logs.length === 3, `got ${logs.length} notifications/message, want 3: ${JSON.stringify(logs)}`);
    check(logs.every((l) => l.level === 'info' && typeof l.data === 'string'), `log params: ${JSON.stringify(logs)}`);
    pass('test_tool_with_logging: 3 notifications/message before the result');

    const progress = [];
    const pr = await within(5000, 'progress tool', a.callTool({ name: 'test_tool_with_progress', arguments: {} },
        undefined, { onprogress: (p) => progress.push(p) }));
    check(!pr.isError, `test_tool_with_progress: ${JSON.stringify(pr)}`);
    check(progress.length === 3, `got ${progress.length} progress callbacks, want 3: ${JSON.stringify(progress)}`);
    check(progress.map((p) => p.progress).join() === '0,50,100', `progress values ${JSON.stringify(progress)}`);
    pass('test_tool_with_progress: 3 onprogress callbacks (0, 50, 100 of 100)');

    // The node is still healthy and its log has no sanitizer report.
    await within(5000, 'close', Promise.all(clients.map((c) => c.close())));
    clients.length = 0;
    check(node.exitCode_ === null, `mcpgw-node exited (${node.exitCode_})`);
}

// Stop the node with SIGTERM (a sanitized build reports leaks on a clean exit), then SIGKILL.
// Returns its exit status (a code, or a signal name).
async function stopNode() {
    if (!node) return 0;
    if (node.exitCode_ !== null) return node.exitCode_;
    node.kill('SIGTERM');
    const until = Date.now() + 15000; // the node drains for up to 10 s
    while (node.exitCode_ === null && Date.now() < until) await sleep(25);
    if (node.exitCode_ !== null) return node.exitCode_;
    node.kill('SIGKILL');
    return 'SIGKILL after 15 s';
}

function sanitizerReport() {
    const log = fs.existsSync(LOG) ? fs.readFileSync(LOG, 'utf8') : '';
    return /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:/.test(log);
}

process.on('exit', () => {
    if (node && node.exitCode_ === null) node.kill('SIGKILL');
});

let rc = 0;
let stopped = 0;
const t0 = Date.now();
try {
    await within(30000, 'the test', main());
} catch (e) {
    console.error(`FAIL: ${e.message}`);
    if (process.env.MCPGW_DEBUG) {
        console.error(e.stack, e.cause);
        for (const h of proxy?.seen ?? []) console.error(h.split('\r\n')[0], h.match(/last-event-id: *\S+/i)?.[0] ?? '');
    }
    rc = 1;
} finally {
    for (const c of clients) await c.close().catch(() => {});
    if (proxy) proxy.close();
    stopped = await stopNode();
}
if (stopped !== 0) {
    console.error(`FAIL: mcpgw-node did not exit cleanly on SIGTERM (${stopped})`);
    rc = 1;
}
if (sanitizerReport()) {
    console.error('FAIL: sanitizer report in the node log');
    rc = 1;
}
if (rc) {
    const lines = fs.existsSync(LOG) ? fs.readFileSync(LOG, 'utf8').split('\n') : [];
    console.error(`--- ${LOG} (last 30 lines) ---\n${lines.slice(-30).join('\n')}`);
} else {
    pass(`node stopped cleanly (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
}
if (!process.env.MCPGW_TMP) fs.rmSync(TMP, { recursive: true, force: true });
process.exit(rc);
