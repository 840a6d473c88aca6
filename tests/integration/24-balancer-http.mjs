// 24-balancer-http.mjs - the balancer as an HTTP/1.1 proxy, against a scripted upstream in this
// process: headers (Host/Origin unchanged, hop-by-hop stripped, X-Forwarded-For/Forwarded
// added), SSE passed through as each event arrives, a Connection: Upgrade request turned into
// a byte tunnel, pipelined keep-alive requests, a chunked request body, 100-continue, an
// HTTP/1.0 client, backpressure from a client that stops reading (bounded balancer memory), a
// node that never answers (504) and one that resets mid-response (client closed, no hang).
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { check, fail, pass, rawConnect, run, sleep, start, waitHealthy } from '../lib/testkit.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BUILD = process.env.MCPGW_BUILD || path.join(ROOT, 'build');
const TMP = process.env.MCPGW_TMP || fs.mkdtempSync(path.join(os.tmpdir(), 'mcpgw-test.'));
const BAL = 18540, UP = 18541, ADMIN = 18549;
const BIG = 64 * 1024 * 1024;


// ---- the scripted upstream ----
let lastHeaders = null;
const upstream = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/healthz') return res.end('ok');
    if (url.pathname === '/headers') {
        lastHeaders = { raw: req.rawHeaders, version: req.httpVersion };
        res.setHeader('Content-Type', 'application/json');
        res.setHeader('Connection', 'keep-alive, X-Secret-Hop');
        res.setHeader('X-Secret-Hop', 'must not reach the client');
        return res.end(JSON.stringify(lastHeaders));
    }
    if (url.pathname === '/n') return res.end(`n=${url.searchParams.get('i')}`);
    if (url.pathname === '/sse') {
        res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
        let i = 0;
        const t = setInterval(() => {
            res.write(`id: ${i}\ndata: event ${i}\n\n`);
            if (++i === 5) {
                clearInterval(t);
                res.end();
            }
        }, 300);
        return;
    }
    if (url.pathname === '/chunked') {
        res.write('hello ');
        setTimeout(() => res.end('world'), 50);
        return;
    }
    if (url.pathname === '/body') {
        const h = crypto.createHash('sha256');
        let n = 0;
        req.on('data', (d) => {
            h.update(d);
            n += d.length;
        });
        req.on('end', () => res.end(JSON.stringify({ n, sha: h.digest('hex') })));
        return;
    }
    if (url.pathname === '/big') {
        res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
        const chunk = Buffer.alloc(64 * 1024, 120);
        let sent = 0;
        const more = () => {
            while (sent < BIG) {
                sent += chunk.length;
                if (!res.write(chunk)) return res.once('drain', more);
            }
            res.end();
        };
        return more();
    }
    if (url.pathname === '/hang') return; // never answers
    if (url.pathname === '/reset') {
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        res.write('data: first\n\n');
        setTimeout(() => req.socket.resetAndDestroy(), 200);
        return;
    }
    res.statusCode = 404;
    res.end();
});
upstream.keepAliveTimeout = 120000;
upstream.on('upgrade', (req, sock, head) => {
    sock.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    if (head.length) sock.write(head.toString().toUpperCase());
    sock.on('data', (d) => sock.write(d.toString().toUpperCase()));
});

// ---- raw client helpers ----

// Parse one complete response (Content-Length or chunked) at the start of buf, or null.
function parseResponse(buf) {
    const s = buf.toString('latin1');
    const end = s.indexOf('\r\n\r\n');
    if (end < 0) return null;
    const head = s.slice(0, end);
    const status = Number(head.split(' ')[1]);
    const headers = {};
    for (const line of head.split('\r\n').slice(1)) {
        const i = line.indexOf(':');
        headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
    }
    let p = end + 4;
    if (headers['content-length'] !== undefined) {
        const n = Number(headers['content-length']);
        if (s.length < p + n) return null;
        return { status, headers, head, body: s.slice(p, p + n), len: p + n };
    }
    if ((headers['transfer-encoding'] || '').toLowerCase() === 'chunked') {
        let body = '';
        for (;;) {
            const le = s.indexOf('\r\n', p);
            if (le < 0) return null;
            const n = parseInt(s.slice(p, le), 16);
            if (s.length < le + 2 + n + 2) return null;
            body += s.slice(le + 2, le + 2 + n);
            p = le + 2 + n + 2;
            if (n === 0) return { status, headers, head, body, len: p };
        }
    }
    return { status, headers, head, body: s.slice(p), len: s.length, open: true };
}


function rssKb(pid) {
    const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/);
    return m ? Number(m[1]) : 0;
}
function workerPid(master) {
    for (const d of fs.readdirSync('/proc')) {
        if (!/^\d+$/.test(d)) continue;
        try {
            const st = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
            if (Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]) === master) return Number(d);
        } catch {
            /* gone */
        }
    }
    return 0;
}

async function main() {
    await new Promise((r) => upstream.listen(UP, '127.0.0.1', r));
    const bal = start(TMP, 'balancer', path.join(BUILD, 'balancer/mcpgw-balancer'),
        ['--listen', `127.0.0.1:${BAL}`, '--nodes', `u1=127.0.0.1:${UP}`, '--workers', '1',
            '--admin', `127.0.0.1:${ADMIN}`, '--response-timeout', '1s', '--buffer-size', '256k']);
    await waitHealthy(ADMIN, 'balancer');

    // Headers: end-to-end ones unchanged, hop-by-hop gone, forwarding headers added.
    {
        const c = await rawConnect(BAL);
        c.sock.write('GET /headers HTTP/1.1\r\nHost: mcp.example.test:8800\r\nOrigin: http://app.example\r\n' +
            'Connection: keep-alive, X-Hop\r\nX-Hop: private\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n' +
            'Proxy-Authorization: Basic eA==\r\nX-Forwarded-For: 203.0.113.7\r\nMcp-Session-Id: u1.abc\r\n\r\n');
        const buf = await c.waitFor((b) => parseResponse(b), 3000, 'headers response');
        const r = parseResponse(buf);
        check(r.status === 200, `headers: HTTP ${r.status}`);
        const raw = JSON.parse(r.body).raw;
        const h = {};
        for (let i = 0; i < raw.length; i += 2) (h[raw[i].toLowerCase()] ??= []).push(raw[i + 1]);
        check(h.host?.[0] === 'mcp.example.test:8800', `Host changed: ${h.host}`);
        check(h.origin?.[0] === 'http://app.example', `Origin changed: ${h.origin}`);
        check(h['mcp-session-id']?.[0] === 'u1.abc', 'Mcp-Session-Id not forwarded');
        for (const hop of ['x-hop', 'keep-alive', 'te', 'proxy-authorization'])
            check(!h[hop], `hop-by-hop ${hop} reached the node`);
        check(!h.connection || !/x-hop/i.test(h.connection.join()), 'Connection still names X-Hop');
        check(h['x-forwarded-for']?.length === 1 && h['x-forwarded-for'][0] === '203.0.113.7, 127.0.0.1',
            `X-Forwarded-For: ${h['x-forwarded-for']}`);
        check(/for=127\.0\.0\.1;proto=http/.test(h.forwarded?.[0] || ''), `Forwarded: ${h.forwarded}`);
        check(!r.headers['x-secret-hop'], 'a header the node listed in Connection reached the client');
        check(!r.headers['keep-alive'], 'the node\'s Keep-Alive reached the client');
        pass('Host/Origin forwarded unchanged, hop-by-hop stripped both ways, X-Forwarded-For appended');
        c.take(r.len);

        // Pipelined keep-alive requests on the same connection come back in order.
        c.sock.write('GET /n?i=1 HTTP/1.1\r\nHost: a\r\n\r\nGET /n?i=2 HTTP/1.1\r\nHost: a\r\n\r\n' +
            'GET /n?i=3 HTTP/1.1\r\nHost: a\r\n\r\n');
        const bodies = [];
        for (let i = 0; i < 3; i++) {
            await c.waitFor((b) => parseResponse(b), 3000, `pipelined response ${i + 1}`);
            const p = parseResponse(c.data());
            bodies.push(p.body);
            c.take(p.len);
        }
        check(bodies.join(',') === 'n=1,n=2,n=3', `pipelined answers: ${bodies}`);
        check(!c.closed, 'keep-alive connection closed');
        pass('keep-alive: pipelined requests answered in order on one connection');

        // A chunked request body arrives intact.
        const body = crypto.randomBytes(300000);
        c.sock.write('POST /body HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n');
        for (let off = 0; off < body.length; off += 70000) {
            const part = body.subarray(off, off + 70000);
            c.sock.write(`${part.length.toString(16)};ext=1\r\n`);
            c.sock.write(part);
            c.sock.write('\r\n');
        }
        c.sock.write('0\r\nX-Trailer: t\r\n\r\n');
        await c.waitFor((b) => parseResponse(b), 5000, 'chunked upload response');
        const pr = parseResponse(c.data());
        c.take(pr.len);
        const got = JSON.parse(pr.body);
        check(got.n === body.length && got.sha === crypto.createHash('sha256').update(body).digest('hex'),
            `chunked body arrived as ${JSON.stringify(got)}`);
        pass('a 300 KB chunked request body reaches the node intact');

        // Expect: 100-continue: the interim response comes through before the body is sent.
        c.sock.write('POST /body HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n');
        await c.waitFor((b) => b.toString().startsWith('HTTP/1.1 100'), 3000, '100 Continue');
        c.take(c.data().toString().indexOf('\r\n\r\n') + 4);
        c.sock.write('hello');
        await c.waitFor((b) => parseResponse(b), 3000, 'response after 100-continue');
        check(JSON.parse(parseResponse(c.data()).body).n === 5, '100-continue body');
        pass('Expect: 100-continue relayed');
        c.sock.destroy();
    }

    // SSE: each event reaches the client as the node sends it, not at the end.
    {
        const c = await rawConnect(BAL);
        const t0 = Date.now();
        c.sock.write('GET /sse HTTP/1.1\r\nHost: a\r\nAccept: text/event-stream\r\n\r\n');
        await c.waitFor((b) => b.toString().includes('data: event 0'), 2000, 'first SSE event');
        const first = Date.now() - t0;
        await c.waitFor((b) => b.toString().includes('data: event 1'), 2000, 'second SSE event');
        const second = Date.now() - t0;
        check(first < 600 && second - first > 150, `SSE events at ${first} and ${second} ms: buffered?`);
        await c.waitFor((b) => parseResponse(b) && !parseResponse(b).open, 4000, 'end of the SSE stream');
        check(/text\/event-stream/.test(parseResponse(c.data()).headers['content-type']), 'SSE content type');
        pass(`SSE passed through as events arrive (first after ${first} ms, next after ${second} ms)`);
        c.sock.destroy();
    }

    // Connection: Upgrade becomes a byte tunnel.
    {
        const c = await rawConnect(BAL);
        c.sock.write('GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
            'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
        await c.waitFor((b) => b.toString().includes('\r\n\r\n'), 3000, '101');
        const head = c.data().toString();
        check(head.startsWith('HTTP/1.1 101') && /\r\nUpgrade: websocket\r\n/i.test(head), `upgrade answer: ${head}`);
        c.take(head.indexOf('\r\n\r\n') + 4);
        c.sock.write('hello tunnel');
        await c.waitFor((b) => b.toString() === 'HELLO TUNNEL', 3000, 'tunnel echo');
        c.take(12);
        c.sock.write('again');
        await c.waitFor((b) => b.toString() === 'AGAIN', 3000, 'second tunnel echo');
        pass('Connection: Upgrade turned into a byte tunnel');
        c.sock.destroy();
    }

    // HTTP/1.0 client: a chunked answer is de-chunked and the connection closed at its end.
    {
        const c = await rawConnect(BAL);
        c.sock.write('GET /chunked HTTP/1.0\r\nHost: a\r\n\r\n');
        await c.waitFor((b, closed) => closed, 3000, 'HTTP/1.0 close');
        const s = c.data().toString();
        check(s.startsWith('HTTP/1.1 200') && !/transfer-encoding/i.test(s) && s.endsWith('\r\n\r\nhello world'),
            `HTTP/1.0 answer: ${JSON.stringify(s)}`);
        pass('HTTP/1.0 client gets a de-chunked body and a close');
    }

    // Backpressure: a client that stops reading a 64 MiB download does not make the balancer
    // buffer it; once it reads again, every byte arrives.
    {
        const w = workerPid(bal.pid);
        check(w, 'no worker process found');
        const before = rssKb(w);
        const c = await rawConnect(BAL);
        c.sock.pause();
        c.sock.write('GET /big HTTP/1.1\r\nHost: a\r\n\r\n');
        await sleep(1500);
        const during = rssKb(w);
        check(during - before < 16 * 1024, `balancer RSS grew ${during - before} kB while the client did not read`);
        let n = 0;
        let headSeen = false;
        c.sock.removeAllListeners('data'); /* count bytes only: no accumulation */
        const done = new Promise((res) => {
            c.sock.on('data', (d) => {
                if (!headSeen) {
                    const s = d.toString('latin1');
                    const e = s.indexOf('\r\n\r\n');
                    headSeen = true;
                    d = d.subarray(e + 4);
                }
                n += d.length;
                if (d.toString('latin1').endsWith('0\r\n\r\n')) res();
            });
        });
        c.sock.resume();
        await Promise.race([done, sleep(30000)]);
        // Chunk framing overhead is small; every payload byte must have come through.
        check(n >= BIG, `only ${n} of ${BIG} bytes arrived after the client resumed`);
        pass(`backpressure: RSS grew ${during - before} kB while a client stalled a 64 MiB stream; all bytes arrived after`);
        c.sock.destroy();
    }

    // A node that never answers: 504 after the response timeout; a reset mid-stream: closed.
    {
        const t0 = Date.now();
        const r = await fetch(`http://127.0.0.1:${BAL}/hang`);
        const ms = Date.now() - t0;
        const body = await r.json();
        check(r.status === 504 && body.jsonrpc === '2.0' && ms < 3000, `hang: ${r.status} after ${ms} ms`);
        pass(`a node that does not answer -> 504 after ${ms} ms`);

        const c = await rawConnect(BAL);
        c.sock.write('GET /reset HTTP/1.1\r\nHost: a\r\n\r\n');
        await c.waitFor((b, closed) => closed, 3000, 'close after a reset mid-response');
        check(c.data().toString().includes('data: first'), 'the part sent before the reset was lost');
        pass('a node reset mid-response closes the client connection (no hang)');
    }

    const m = await (await fetch(`http://127.0.0.1:${ADMIN}/metrics`)).text();
    for (const name of ['mcpgw_balancer_requests_total{node="u1"}', 'mcpgw_balancer_responses_total{node="u1",class="2xx"}',
        'mcpgw_balancer_request_duration_seconds_bucket{node="u1",le="0.001"}', 'mcpgw_balancer_node_up{node="u1"} 1',
        'mcpgw_balancer_upstream_active_connections{node="u1"}', 'mcpgw_balancer_client_errors_total{status="504"} 1'])
        check(m.includes(name), `/metrics lacks ${name}`);
    pass('/metrics: per-node requests, responses, latency histogram, up, active connections, errors');
}

await run(main, TMP);
