// 17-node-review.mjs - node defects a review found, each checked over real HTTP against a real
// node (memory store). Every check here failed before its fix:
//   - a second tools/call with an id still in flight is refused (-32600), the first goes on;
//   - a session that never sends notifications/initialized ends at its init deadline, and an
//     initialized one does not;
//   - a stream dropped for not reading counts in mcpgw_node_streams_dropped_total.
import net from 'node:net';
import path from 'node:path';
import { check, fail, pass, run, sleep, start, waitHealthy } from '../lib/testkit.mjs';

const tmp = process.env.MCPGW_TMP || '/tmp';
const build = process.env.MCPGW_BUILD || path.resolve('build');
const nodeBin = path.join(build, 'node/mcpgw-node');
const BASE = 18170; // 18171-18172: nodes (node test range)

const PV = '2025-11-25';
const H = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream',
    'MCP-Protocol-Version': PV };

function startNode(name, port, extra = []) {
    start(tmp, name, nodeBin, ['--listen', `127.0.0.1:${port}`, '--node-id', name, ...extra]);
    return waitHealthy(port, name);
}

// Parse an SSE body into [{id, data}] (comments dropped).
function sseEvents(text) {
    const out = [];
    for (const block of text.split(/\r?\n\r?\n/)) {
        let id = null;
        const data = [];
        for (const line of block.split(/\r?\n/)) {
            if (line.startsWith('id:')) id = line.slice(3).trim();
            else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        }
        if (data.length && data.join('') !== '') out.push({ id, msg: JSON.parse(data.join('\n')) });
        else if (id !== null) out.push({ id, msg: null }); // a priming event
    }
    return out;
}

// POST one message; resolves to { status, msg (the JSON-RPC answer or null), events (SSE) }.
async function post(port, sid, body) {
    const headers = { ...H };
    if (sid) headers['Mcp-Session-Id'] = sid;
    const r = await fetch(`http://127.0.0.1:${port}/mcp`, { method: 'POST', headers,
        body: typeof body === 'string' ? body : JSON.stringify(body) });
    const text = await r.text();
    const ct = r.headers.get('content-type') || '';
    if (ct.startsWith('text/event-stream')) {
        const events = sseEvents(text);
        const answer = events.find((e) => e.msg && 'id' in e.msg && !e.msg.method);
        return { status: r.status, msg: answer ? answer.msg : null, events, headers: r.headers };
    }
    return { status: r.status, msg: text ? JSON.parse(text) : null, events: [], headers: r.headers };
}

async function session(port, { ready = true } = {}) {
    const r = await post(port, null, { jsonrpc: '2.0', id: 0, method: 'initialize', params: {
        protocolVersion: PV, capabilities: {}, clientInfo: { name: 'review', version: '1' } } });
    const sid = r.headers.get('mcp-session-id');
    check(r.status === 200 && sid, `initialize on :${port}: HTTP ${r.status}`);
    if (ready) {
        const n = await post(port, sid, { jsonrpc: '2.0', method: 'notifications/initialized' });
        check(n.status === 202, `notifications/initialized: HTTP ${n.status}`);
    }
    return sid;
}

const call = (id, name, args = {}) =>
    ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });

async function metric(port, name) {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    for (const line of text.split('\n'))
        if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) return Number(line.split(' ').pop());
    return NaN;
}

// Poll pred() every 50 ms until it holds; fail after ms, naming what.
async function until(pred, ms, what) {
    const end = Date.now() + ms;
    for (;;) {
        if (await pred()) return;
        if (Date.now() > end) fail(`${what} (waited ${ms} ms)`);
        await sleep(50);
    }
}

// A GET stream read through a raw socket: .text is what arrived so far.
function getStream(port, sid, { read = true } = {}) {
    return new Promise((resolve, reject) => {
        const sock = net.connect({ port, host: '127.0.0.1' }, () => {
            sock.write(`GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\n` +
                `MCP-Protocol-Version: ${PV}\r\nMcp-Session-Id: ${sid}\r\n\r\n`);
            if (!read) sock.pause();
            resolve(st);
        });
        const st = { sock, text: '', closed: false };
        sock.setEncoding('latin1');
        sock.on('data', (d) => { st.text += d; });
        sock.on('close', () => { st.closed = true; });
        sock.on('error', () => { st.closed = true; });
        sock.on('connect', () => {});
        setTimeout(() => reject(new Error('connect timeout')), 5000).unref();
    });
}

async function memoryChecks() {
    const P = BASE + 1;
    await startNode('m1', P, ['--store', 'memory', '--init-timeout', '1s']);

    // A duplicate request id while the first is in flight.
    const sid = await session(P);
    const first = post(P, sid, call(7, 'sleep', { ms: 1500 }));
    await sleep(200);
    const dup = await post(P, sid, call(7, 'echo', { text: 'dup' }));
    check(dup.msg && dup.msg.error && dup.msg.error.code === -32600 &&
        /duplicate request id/i.test(dup.msg.error.message),
    `a second tools/call with id 7 in flight: ${JSON.stringify(dup.msg)}`);
    const f = await first;
    check(f.msg && f.msg.result && !f.msg.result.isError, `the first call 7: ${JSON.stringify(f.msg)}`);
    pass('a second request with an id in flight is refused (-32600), the first finishes');
    const again = await post(P, sid, call(7, 'echo', { text: 'later' }));
    check(again.msg.result && again.msg.result.content[0].text === 'later', 'id 7 after the first ended');

    // The init deadline.
    const lazy = await session(P, { ready: false });
    await until(async () => (await post(P, lazy, { jsonrpc: '2.0', id: 1, method: 'tools/list' })).status === 404,
        10000, 'a session without notifications/initialized still answers after its 1 s init deadline');
    const alive = await post(P, sid, call(8, 'echo', { text: 'still' }));
    check(alive.status === 200 && alive.msg.result, 'the initialized session outlived the init deadline');
    pass('a session that never sent notifications/initialized ends at its init deadline');

}

async function droppedStream() {
    const P = BASE + 2;
    // --tcp-user-timeout 0: a window kept closed that long would end the stream first (Linux
    // aborts it), and a slow build can take longer than that to fill the buffer.
    await startNode('m2', P, ['--store', 'memory', '--max-stream-buffer', '64k',
        '--tcp-user-timeout', '0']);
    const sid = await session(P);
    const sub = await post(P, sid, { jsonrpc: '2.0', id: 2, method: 'resources/subscribe',
        params: { uri: 'mcpgw://notes/flood' } });
    check(sub.msg && sub.msg.result, `subscribe: ${JSON.stringify(sub.msg)}`);
    const g = await getStream(P, sid, { read: false });
    const w = await session(P);
    const before = await metric(P, 'mcpgw_node_streams_dropped_total');
    check(before === 0, `streams_dropped before: ${before}`);
    const text = 'x'.repeat(100);
    for (let i = 0; i < 40000 && !g.closed; i++) {
        const r = await post(P, w, call(100 + i, 'notes_write', { name: 'flood', text }));
        check(r.status === 200, `notes_write ${i}: HTTP ${r.status}`);
        if (i % 500 === 499 && await metric(P, 'mcpgw_node_streams_dropped_total') > 0) break;
    }
    await until(async () => await metric(P, 'mcpgw_node_streams_dropped_total') === 1, 5000,
        'mcpgw_node_streams_dropped_total did not count the stream dropped for not reading');
    g.sock.destroy();
    pass('a GET stream dropped for not reading counts in mcpgw_node_streams_dropped_total');
}

await run(async () => {
    await memoryChecks();
    await droppedStream();
}, tmp);
