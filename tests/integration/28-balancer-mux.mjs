// 28-balancer-mux.mjs - session GET streams carried to a node as HTTP/2 streams over one
// connection (--stream-mux), against a scripted upstream in this process that speaks HTTP/1.1
// and HTTP/2 (prior knowledge) on one port, like a node: many streams share one connection and
// each gets its own events; a client that leaves resets only its stream; a stream the node ends
// ends cleanly for the client (keep-alive kept); a stream the node resets, or the whole
// connection lost, closes the clients affected; one never answered gets a 504; a client that
// stops reading stalls only its own stream (per-stream flow control); POSTs keep their HTTP/1.1
// connections; after a GOAWAY new streams open a new connection; an upstream without HTTP/2
// gets its streams over HTTP/1.1.
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { check, fail, h1h2Front, pass, rawConnect, run, sleep, start, waitHealthy } from '../lib/testkit.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BUILD = process.env.MCPGW_BUILD || path.join(ROOT, 'build');
const TMP = process.env.MCPGW_TMP || fs.mkdtempSync(path.join(os.tmpdir(), 'mcpgw-test.'));
const BAL = 18580, UP = 18581, UP1 = 18582, BAL1 = 18585, ADMIN = 18589, ADMIN1 = 18588;

// ---- the scripted upstream: HTTP/1.1 and h2c on one port ----
const h2sessions = [];
const streams = new Map(); // sid -> { stream, closed, rst }
let h1gets = 0, h1posts = 0;

const h1 = http.createServer((req, res) => {
    if (req.url === '/healthz') return res.end('ok');
    if (req.method === 'GET') h1gets++;
    if (req.method === 'POST') h1posts++;
    req.resume();
    req.on('end', () => res.end('{"via":"http/1.1"}'));
});
const h2 = http2.createServer();
h2.on('session', (s) => h2sessions.push(s));
h2.on('stream', (stream, headers) => {
    const sid = headers['mcp-session-id'];
    if (headers[':method'] !== 'GET' || !sid) {
        stream.respond({ ':status': 400 });
        return stream.end();
    }
    if (sid === 'u1.hang') return; // never answers
    if (sid === 'notfound') {
        stream.respond({ ':status': 404, 'content-type': 'application/json' });
        return stream.end('{"error":"unknown session"}');
    }
    const st = { stream, closed: false, rst: null, headers };
    streams.set(sid, st);
    stream.on('close', () => {
        st.closed = true;
        st.rst = stream.rstCode;
    });
    stream.on('error', () => {});
    stream.respond({ ':status': 200, 'content-type': 'text/event-stream', 'x-sid': sid });
    stream.write(`data: hello ${sid}\n\n`);
});
// One port for both, like a node (testkit's h1h2Front).
const H2PORT = 18584;
const front = h1h2Front(h1, H2PORT);
// An upstream with HTTP/1.1 only, for the fallback.
let oldGets = 0;
const h1only = http.createServer((req, res) => {
    if (req.url === '/healthz') return res.end('ok');
    oldGets++;
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    res.write('data: over http/1.1\n\n');
});

// The body of a chunked HTTP/1.1 response in b (latin1), as far as it has arrived.
function dechunk(b) {
    let i = b.indexOf('\r\n\r\n') + 4, out = '';
    for (;;) {
        const e = b.indexOf('\r\n', i);
        if (e < 0) return out;
        const n = parseInt(b.slice(i, e), 16);
        if (!(n > 0) || b.length < e + 2 + n + 2) return out;
        out += b.slice(e + 2, e + 2 + n);
        i = e + 2 + n + 2;
    }
}

const tick = (sid, n) => streams.get(sid).stream.write(`data: tick ${n}\n\n`);
const getReq = (sid) => `GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nMcp-Session-Id: ${sid}\r\n\r\n`;
async function openStream(sid) {
    const c = await rawConnect(BAL, { text: true });
    c.sock.write(getReq(sid));
    await c.waitFor((b) => b.includes(`hello ${sid}`), 5000, `first event of ${sid}`);
    return c;
}

async function startBalancer(name, port, up, admin) {
    start(TMP, name, path.join(BUILD, 'balancer/mcpgw-balancer'),
        ['--listen', `127.0.0.1:${port}`, '--nodes', `u1=127.0.0.1:${up}`, '--workers', '1',
            '--admin', `127.0.0.1:${admin}`, '--stream-mux', '1', '--buffer-size', '64k', '--response-timeout', '2s',
            '--log-level', process.env.LOGLEVEL || 'info']);
    await waitHealthy(admin, name);
}

async function main() {
    await new Promise((r) => h2.listen(H2PORT, '127.0.0.1', r));
    await new Promise((r) => front.listen(UP, '127.0.0.1', r));
    await new Promise((r) => h1only.listen(UP1, '127.0.0.1', r));
    await startBalancer('balancer', BAL, UP, ADMIN);

    // Many streams, one connection, each its own events.
    const N = 40, sids = [], conns = new Map();
    for (let i = 0; i < N; i++) sids.push(`u1.s${i}`);
    await Promise.all(sids.map(async (s) => conns.set(s, await openStream(s))));
    check(h2sessions.length === 1, `${N} streams used ${h2sessions.length} HTTP/2 connections`);
    check(h1gets === 0, `${h1gets} GET streams took HTTP/1.1 connections`);
    for (const s of sids) tick(s, 1);
    await Promise.all(sids.map((s) => conns.get(s).waitFor((b) => b.includes('tick 1'), 3000, `tick 1 on ${s}`)));
    for (const s of sids) {
        const b = conns.get(s).data();
        check(/^HTTP\/1\.1 200 /.test(b) && /transfer-encoding: chunked/i.test(b) && /x-sid: (\S+)/i.exec(b)[1] === s,
            `${s}: head ${JSON.stringify(b.slice(0, 200))}`);
        check((b.match(/data: /g) || []).length === 2, `${s} got another stream's events`);
    }
    const hd = streams.get('u1.s0').headers;
    check(hd[':authority'] === '127.0.0.1' && hd['x-forwarded-for'] === '127.0.0.1' && !hd.connection,
        `request headers on the HTTP/2 side: ${JSON.stringify(hd)}`);
    const m = await (await fetch(`http://127.0.0.1:${ADMIN}/metrics`)).text();
    check(m.includes('mcpgw_balancer_upstream_mux_connections{node="u1"} 1') &&
        m.includes(`mcpgw_balancer_upstream_mux_streams{node="u1"} ${N}`), 'mux gauges in /metrics');
    pass(`${N} GET streams share one HTTP/2 connection to the node, each with its own events`);

    // An event stream's events reach the client whole: part of an event waits at the balancer
    // until its blank line arrives (clients act on nothing before it anyway).
    {
        const c = conns.get('u1.s14'), st = streams.get('u1.s14').stream;
        st.write('data: par');
        await sleep(200);
        check(!c.data().includes('data: par'), 'part of an event reached the client');
        st.write('tial\n\ndata: next');
        await c.waitFor((b) => dechunk(b).includes('data: partial\n\n'), 3000, 'the completed event');
        check(!dechunk(c.data()).includes('next'), 'part of the next event reached the client');
        st.write('\n\n');
        await c.waitFor((b) => dechunk(b).endsWith('data: partial\n\ndata: next\n\n'), 3000, 'the next event');
        pass('an event stream reaches the client a whole event at a time');
    }

    // The connection's window (--mux-window, 16 KiB by default) is small and always returned: a
    // burst much larger than it reaches every client whole, and the node never has more than
    // the window to send without the balancer's WINDOW_UPDATE (it starts at HTTP/2's 65,535).
    {
        const burst = ['u1.s10', 'u1.s11', 'u1.s12', 'u1.s13'];
        const ev = (s, i) => `data: ${s} ${i} ${'y'.repeat(1000)}\n\n`;
        const per = 1024; // ~1 MiB per stream, 4 MiB in all
        let maxWin = 0;
        const sampler = setInterval(() => { maxWin = Math.max(maxWin, h2sessions[0].state.remoteWindowSize); }, 1);
        for (const s of burst) for (let i = 0; i < per; i++) streams.get(s).stream.write(ev(s, i));
        await Promise.all(burst.map((s) => conns.get(s).waitFor((b) => dechunk(b).includes(`${s} ${per - 1} `), 20000, `the burst's end on ${s}`)));
        clearInterval(sampler);
        for (const s of burst) {
            const got = dechunk(conns.get(s).data()).match(/data: (\S+) (\d+) y+\n/g) || [];
            check(got.length === per && got.every((e, i) => e.startsWith(`data: ${s} ${i} `) && e.length === 1009 + s.length + String(i).length),
                `${s}: ${got.length} of ${per} events, in order and whole`);
        }
        const win = h2sessions[0].state.remoteWindowSize;
        check(win <= 16 * 1024, `the node may send ${win} B without a WINDOW_UPDATE (the window is 16 KiB)`);
        check(maxWin <= 65535, `the node could send ${maxWin} B at once during the burst`);
        pass(`a ${(4 * per * 1.0) | 0} KiB burst over a 16 KiB connection window: every event whole and in order; ` +
            `the node's send window ${win} B after it, at most ${maxWin} B during it`);
    }

    // A client that leaves resets its stream only.
    conns.get('u1.s1').sock.destroy();
    for (let i = 0; i < 100 && !streams.get('u1.s1').closed; i++) await sleep(20);
    check(streams.get('u1.s1').closed && streams.get('u1.s1').rst === http2.constants.NGHTTP2_CANCEL,
        `left client's stream: closed ${streams.get('u1.s1').closed}, rst ${streams.get('u1.s1').rst}`);
    tick('u1.s2', 2);
    await conns.get('u1.s2').waitFor((b) => b.includes('tick 2'), 3000, 'tick 2 after a neighbour left');
    check(!streams.get('u1.s2').closed && h2sessions.length === 1, 'a neighbour\'s exit hurt another stream');
    pass('a client that leaves resets its own stream (CANCEL); the others go on');

    // The node ends a stream: the client gets the final chunk and keeps its connection.
    {
        const c = conns.get('u1.s3');
        streams.get('u1.s3').stream.end('data: bye\n\n');
        await c.waitFor((b) => b.endsWith('0\r\n\r\n'), 3000, 'final chunk');
        check(!c.closed && c.data().includes('bye'), 'stream end: connection closed or last event lost');
        c.take(c.data().length);
        c.sock.write(getReq('notfound'));
        await c.waitFor((b) => b.includes('unknown session') && b.endsWith('0\r\n\r\n'), 3000, '404 on the same connection');
        check(/^HTTP\/1\.1 404 /.test(c.data()), `second request: ${c.data().slice(0, 40)}`);
        pass('a stream the node ends ends cleanly; the client\'s connection serves the next request');
    }

    // The node resets a stream: that client's connection closes without a final chunk.
    {
        const c = conns.get('u1.s4');
        streams.get('u1.s4').stream.destroy(new Error('reset by the test'));
        await c.waitFor((b, closed) => closed, 3000, 'close after a reset');
        check(!c.data().endsWith('0\r\n\r\n'), 'a reset stream looked complete to the client');
        tick('u1.s5', 3);
        await conns.get('u1.s5').waitFor((b) => b.includes('tick 3'), 3000, 'tick 3 after a reset');
        pass('a stream the node resets closes its client only (no final chunk)');
    }

    // Flow control is per stream: a client that stops reading stalls its own stream only.
    {
        const slow = conns.get('u1.s6');
        slow.sock.pause();
        const st = streams.get('u1.s6').stream;
        const big = 'data: ' + 'x'.repeat(16 * 1024) + '\n\n';
        const queued = 1024 * big.length; // 16 MiB: over the stream window, our buffers and the kernel's
        for (let i = 0; i < 1024; i++) st.write(big);
        await sleep(1000);
        const held = st.writableLength;
        check(held > 4 * 1024 * 1024, `the node sent ${queued - held} of ${queued} B to a client that reads nothing`);
        for (let i = 0; i < 5; i++) {
            const t = Date.now();
            tick('u1.s7', 100 + i);
            await conns.get('u1.s7').waitFor((b) => b.includes(`tick ${100 + i}`), 2000, 'events beside a stalled stream');
            check(Date.now() - t < 500, `an event beside a stalled stream took ${Date.now() - t} ms`);
        }
        slow.sock.resume();
        await slow.waitFor((b) => b.length >= queued, 20000, 'the stalled stream\'s bytes once it reads');
        await sleep(200);
        check(st.writableLength === 0, `${st.writableLength} B still held after the client read`);
        pass(`a client that stops reading stalls its own stream only (${(held / 1024) | 0} of ` +
            `${(queued / 1024) | 0} KiB held at the node), and gets every byte once it reads`);
    }

    // A stream without a response head within --response-timeout gets a 504.
    {
        const t0 = Date.now();
        const c = await rawConnect(BAL, { text: true });
        c.sock.write(getReq('u1.hang'));
        await c.waitFor((b) => / 504 /.test(b), 5000, '504 for a stream the node never answers');
        const ms = Date.now() - t0;
        check(ms >= 1900 && ms < 3500, `504 after ${ms} ms`);
        tick('u1.s9', 6);
        await conns.get('u1.s9').waitFor((b) => b.includes('tick 6'), 3000, 'the other streams after a timeout');
        pass(`a stream the node never answers gets a 504 after ${ms} ms; the others go on`);
    }

    // POSTs keep their own HTTP/1.1 connections.
    {
        const r = await fetch(`http://127.0.0.1:${BAL}/mcp`, { method: 'POST', body: '{}',
            headers: { 'Mcp-Session-Id': 'u1.s0', 'Content-Type': 'application/json' } });
        check(r.status === 200 && (await r.text()).includes('http/1.1') && h1posts === 1, 'POST did not go over HTTP/1.1');
        pass('POST requests keep HTTP/1.1 connections');
    }

    // GOAWAY: the streams on the old connection go on; new streams open a new one.
    {
        h2sessions[0].goaway(0);
        await sleep(200);
        const c = await openStream('u1.after-goaway');
        check(h2sessions.length === 2, `after GOAWAY: ${h2sessions.length} connections`);
        tick('u1.s8', 4);
        await conns.get('u1.s8').waitFor((b) => b.includes('tick 4'), 3000, 'tick on the old connection after GOAWAY');
        conns.set('u1.after-goaway', c);
        pass('after a GOAWAY the open streams go on and new ones open a new connection');
    }

    // The connection is lost: every stream on it ends for its client (they resume elsewhere).
    {
        const open = sids.filter((s, i) => i >= 8 && !streams.get(s).closed).map((s) => conns.get(s));
        h2sessions[0].destroy();
        await Promise.all(open.map((c) => c.waitFor((b, closed) => closed, 3000, 'close after the connection was lost')));
        const other = conns.get('u1.after-goaway');
        tick('u1.after-goaway', 5);
        await other.waitFor((b) => b.includes('tick 5'), 3000, 'a stream of the other connection');
        pass(`a lost connection closes its ${open.length} clients; the other connection's stream goes on`);
    }

    // An upstream without HTTP/2 gets its streams over HTTP/1.1.
    {
        await startBalancer('balancer-old', BAL1, UP1, ADMIN1);
        const cs = [];
        for (let i = 0; i < 3; i++) {
            const c = await rawConnect(BAL1, { text: true });
            c.sock.write(getReq(`u1.old${i}`));
            await c.waitFor((b) => b.includes('over http/1.1'), 5000, `stream ${i} over HTTP/1.1`);
            cs.push(c);
        }
        check(oldGets === 3, `old upstream saw ${oldGets} GETs`);
        const log = fs.readFileSync(path.join(TMP, 'balancer-old.log'), 'utf8');
        check(/does not speak HTTP\/2/.test(log) && !/marked down/.test(log), 'fallback not logged, or node marked down');
        pass('an upstream without HTTP/2 gets the streams over HTTP/1.1 (not marked down)');
    }
}

await run(main, TMP);
