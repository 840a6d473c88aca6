// 28-balancer-resume.mjs - the balancer carries a failed node's SSE streams on at another node
// (--stream-resume), against three scripted upstreams in this process that speak HTTP/1.1
// (health checks) and HTTP/2 (streams) on one port, like nodes. Shows: a live node that resets
// one stream keeps it (the client's stream ends, nothing is re-opened); when a node's
// connection is lost, its stream is re-opened elsewhere with Last-Event-ID set to the last
// whole event, and the client's one chunked body goes on after a ": resumed" comment; a
// re-opened request that the first candidate refuses (REFUSED_STREAM) moves on as the same
// resumption (a regression: it moved as a new request, whose head would have landed inside
// the client's body); a new node that answers 404 ends the client's stream without a final
// chunk, so the client resumes it itself.
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { check, fail, h1h2Front, pass, rawConnect, run, sleep, start } from '../lib/testkit.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BUILD = process.env.MCPGW_BUILD || path.join(ROOT, 'build');
const TMP = process.env.MCPGW_TMP || fs.mkdtempSync(path.join(os.tmpdir(), 'mcpgw-test.'));
const BAL = 18640, ADMIN = 18649;

const seen = []; // every GET any upstream got: { up, sid, lei }
const refused = new Set();

// One scripted node: HTTP/1.1 (health checks) and h2c (the balancer's streams) on port.
function upstream(name, port, h2port) {
    const up = { name, sessions: [], streams: new Map() };
    up.h1 = http.createServer((req, res) => res.end('ok'));
    up.h2 = http2.createServer();
    up.h2.on('session', (s) => up.sessions.push(s));
    up.h2.on('stream', (stream, headers) => {
        const sid = headers['mcp-session-id'], lei = headers['last-event-id'] || null;
        stream.on('error', () => {});
        seen.push({ up: name, sid, lei });
        if (!lei) { // the first GET of the session: its origin
            up.streams.set(sid, stream);
            stream.respond({ ':status': 200, 'content-type': 'text/event-stream' });
            stream.write('id: 1\ndata: one\n\n');
            return;
        }
        if (sid.endsWith('.gone')) {
            stream.respond({ ':status': 404, 'content-type': 'application/json' });
            return stream.end('{"error":"unknown session"}');
        }
        if (!refused.has(sid)) { // the first candidate refuses: the request must move on
            refused.add(sid);
            return stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
        }
        stream.respond({ ':status': 200, 'content-type': 'text/event-stream' });
        stream.write(`id: 2\ndata: two after ${lei} from ${name}\n\n`);
    });
    up.socks = new Set();
    up.front = h1h2Front(up.h1, h2port, (sock) => up.socks.add(sock));
    up.listen = async () => {
        await new Promise((r) => up.h2.listen(h2port, '127.0.0.1', r));
        await new Promise((r) => up.front.listen(port, '127.0.0.1', r));
    };
    // Die as a killed process does: the listener goes, and every connection is closed by the
    // kernel, with no HTTP/2 frame (no RST_STREAM, no GOAWAY) before.
    up.kill = () => {
        up.front.close();
        for (const s of up.socks) s.destroy();
    };
    return up;
}

// The decoded body of a chunked HTTP/1.1 response in text (after its head), and whether the
// framing held; throws on a second status line inside it.
function body(text) {
    const end = text.indexOf('\r\n\r\n');
    let rest = text.slice(end + 4), out = '';
    for (;;) {
        const nl = rest.indexOf('\r\n');
        if (nl < 0) return { out, whole: rest.length === 0 };
        const n = parseInt(rest.slice(0, nl), 16);
        if (Number.isNaN(n)) fail(`not a chunk size: ${JSON.stringify(rest.slice(0, 40))}`);
        if (rest.length < nl + 2 + n + 2) return { out, whole: false };
        out += rest.slice(nl + 2, nl + 2 + n);
        if (rest.slice(nl + 2 + n, nl + 4 + n) !== '\r\n') fail('a chunk without its CRLF');
        rest = rest.slice(nl + 4 + n);
        if (n === 0) return { out, whole: true, ended: true };
    }
}

const getReq = (sid) =>
    `GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nMcp-Session-Id: ${sid}\r\n\r\n`;

async function main() {
    const ups = [upstream('a', 18641, 18651), upstream('b', 18642, 18652), upstream('c', 18643, 18653)];
    for (const u of ups) await u.listen();
    start(TMP, 'balancer', path.join(BUILD, 'balancer/mcpgw-balancer'),
        ['--listen', `127.0.0.1:${BAL}`, '--nodes', 'a=127.0.0.1:18641,b=127.0.0.1:18642,c=127.0.0.1:18643',
            '--workers', '1', '--admin', `127.0.0.1:${ADMIN}`, '--log-level', process.env.LOGLEVEL || 'info']);
    for (let i = 0; ; i++) {
        try {
            if ((await fetch(`http://127.0.0.1:${ADMIN}/healthz`)).ok) break;
        } catch {
            /* not yet */
        }
        if (i > 200) fail('the balancer did not start');
        await sleep(25);
    }
    const open = async (sid) => {
        const c = await rawConnect(BAL, { text: true });
        c.sock.write(getReq(sid));
        await c.waitFor((b) => b.includes('data: one'), 5000, `first event of ${sid}`);
        return c;
    };
    const move = await open('a.move'), gone = await open('a.gone'), reset = await open('a.reset');

    // A live node resets one stream: that client's stream ends; nothing is re-opened.
    ups[0].streams.get('a.reset').destroy(new Error('reset by the test'));
    await reset.waitFor((b, closed) => closed, 3000, 'the reset stream to end');
    await sleep(200);
    check(!seen.some((s) => s.sid === 'a.reset' && s.lei), 'a stream reset by a live node was re-opened');
    check(!body(reset.data()).ended, 'a reset stream got a final chunk');
    pass('a live node that resets one stream keeps its session: the client\'s stream ends, nothing moves');

    // Node a dies: its streams move.
    ups[0].kill();
    await move.waitFor((b) => b.includes('data: two'), 5000, 'the carried-on stream');
    const m = body(move.data());
    check(!/HTTP\/1\.1/.test(move.data().slice(move.data().indexOf('\r\n\r\n'))), 'a second head inside the body');
    check(m.out === `id: 1\ndata: one\n\n: resumed\n\n${m.out.slice(m.out.indexOf('id: 2'))}` &&
        /^id: 2\ndata: two after 1 from [bc]\n\n$/.test(m.out.slice(m.out.indexOf('id: 2'))),
        `the client's body: ${JSON.stringify(m.out)}`);
    const tries = seen.filter((s) => s.sid === 'a.move' && s.lei);
    check(tries.length === 2 && tries.every((t) => t.lei === '1') && tries[0].up !== tries[1].up,
        `re-opened as ${JSON.stringify(tries)}`);
    check(!move.closed, 'the carried-on stream was closed');
    pass(`a dead node's stream went on in the client's one body after ": resumed", from the event after 1, ` +
        `at ${tries[1].up} after ${tries[0].up} refused it`);

    await gone.waitFor((b, closed) => closed, 5000, 'the stream the new node does not know to end');
    check(!body(gone.data()).ended, 'a stream the new node refused got a final chunk');
    check(!/HTTP\/1\.1 404/.test(gone.data()), 'the 404 reached the client inside its body');
    pass('a new node that answers 404 ends the client\'s stream without a final chunk (the client resumes)');

    const text = await (await fetch(`http://127.0.0.1:${ADMIN}/metrics`)).text();
    const resumed = [...text.matchAll(/^mcpgw_balancer_streams_resumed_total\{[^}]*\} (\d+)$/gm)]
        .reduce((a, x) => a + Number(x[1]), 0);
    check(resumed === 1, `mcpgw_balancer_streams_resumed_total is ${resumed}, want 1`);
    pass('mcpgw_balancer_streams_resumed_total counts the one stream carried on');
    for (const u of ups.slice(1)) u.kill();
}

await run(main, TMP);
