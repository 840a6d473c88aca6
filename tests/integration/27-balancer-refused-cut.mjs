// 27-balancer-refused-cut.mjs - regression: a killed node's streams waited for its kernel.
// A node killed with kill -9 while it holds thousands of GET streams closes them one by one; on
// a busy machine that took over a second, and every stream still open meanwhile waited for it
// (or for the active checks / gossip, about a second later) before its client could resume on
// another node. A refused connect proves the node's listener is gone (a node keeps it until it
// exits, draining included), so the balancer now ends that worker's exchanges with the node at
// once. Here a scripted upstream holds an SSE stream, stops listening while keeping the stream
// open, and the next request through the balancer (refused) must end the held stream promptly,
// with active checks far too slow to be the cause. A reset marks a node down too; the worker then
// probes the node's listener and, finding it gone, ends the node's streams the same way.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { check, fail, pass, rawConnect, run, sleep, start, waitHealthy } from '../lib/testkit.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BUILD = process.env.MCPGW_BUILD || path.join(ROOT, 'build');
const TMP = process.env.MCPGW_TMP || fs.mkdtempSync(path.join(os.tmpdir(), 'mcpgw-test.'));
const BAL = 18570, UP1 = 18571, UP2 = 18572, ADMIN = 18579;


// Two scripted nodes: /sse holds a stream open after one event; anything else answers its name.
function upstream(name) {
    const srv = http.createServer((req, res) => {
        if (req.url === '/healthz') return res.end('ok');
        if (req.url === '/reset') {
            // Dying: the listener goes, then this connection is reset before any answer.
            srv.close();
            req.socket.resetAndDestroy();
            return;
        }
        if (req.url === '/sse') {
            res.writeHead(200, { 'Content-Type': 'text/event-stream' });
            res.write(`data: held by ${name}\n\n`);
            return; // never ends
        }
        res.end(name);
    });
    return srv;
}



async function main() {
    const u1 = upstream('u1'), u2 = upstream('u2');
    await new Promise((r) => u1.listen(UP1, '127.0.0.1', r));
    await new Promise((r) => u2.listen(UP2, '127.0.0.1', r));
    // One worker, active checks every 30 s: only the refused connect can end the stream soon.
    start(TMP, 'balancer', path.join(BUILD, 'balancer/mcpgw-balancer'), ['--listen', `127.0.0.1:${BAL}`,
        '--nodes', `u1=127.0.0.1:${UP1},u2=127.0.0.1:${UP2}`, '--workers', '1',
        '--admin', `127.0.0.1:${ADMIN}`, '--health-interval', '30s']);
    await waitHealthy(ADMIN, 'balancer');

    // A session of u1 (its id's prefix routes it there) holds its stream.
    const req = (p, sid) => `GET ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\nMcp-Session-Id: ${sid}\r\n` +
        'Accept: text/event-stream\r\n\r\n';
    const held = await rawConnect(BAL, { text: true });
    held.sock.write(req('/sse', 'u1.AAAAAAAAAAAAAAAAAAAAAA'));
    await held.waitFor((b) => b.includes('held by u1'), 3000, 'the held stream');
    pass('a stream to u1 is held open through the balancer');

    // u1 stops listening; its stream stays open (a killed node closes its sockets one by one).
    u1.close();
    await sleep(100);
    check(!held.closed, 'the held stream closed by itself');

    // The next request for u1 is refused there and moves to u2; the held stream ends now.
    const t0 = Date.now();
    const other = await rawConnect(BAL, { text: true });
    other.sock.write(req('/x', 'u1.BBBBBBBBBBBBBBBBBBBBBB'));
    await other.waitFor((b) => b.includes('\r\n\r\n') && b.endsWith('u2'), 3000, 'the moved request');
    check(other.data().startsWith('HTTP/1.1 200'), `the moved request got: ${other.data().slice(0, 40)}`);
    pass('a request refused by u1 is served by u2 (the client sees no error)');
    await held.waitFor((b, closed) => closed, 1000, 'the held stream to end after the refusal');
    const ms = Date.now() - t0;
    check(ms < 1000, `the held stream ended ${ms} ms after the refusal`);
    pass(`the refusal ended u1's held stream after ${ms} ms (active checks: every 30 s)`);

    const m = await (await fetch(`http://127.0.0.1:${ADMIN}/metrics`)).text();
    check(m.includes('mcpgw_balancer_node_passive_down_workers{node="u1"} 1'),
        'u1 is not passively down in the worker');
    check(m.includes('mcpgw_balancer_node_up{node="u1"} 1'), 'the active checks already saw u1 down');
    pass('u1 is marked down by the worker, before any active check noticed');

    // A reset (not a refusal) marks u2 down; the worker probes u2's listener, finds it gone, and
    // ends u2's held stream too.
    const held2 = await rawConnect(BAL, { text: true });
    held2.sock.write(req('/sse', 'u2.CCCCCCCCCCCCCCCCCCCCCC'));
    await held2.waitFor((b) => b.includes('held by u2'), 3000, 'the stream held by u2');
    const t1 = Date.now();
    const boom = await rawConnect(BAL, { text: true });
    boom.sock.write(req('/reset', 'u2.DDDDDDDDDDDDDDDDDDDDDD'));
    await boom.waitFor((b, closed) => b.includes('\r\n\r\n') || closed, 3000, 'the reset request');
    check(boom.data().startsWith('HTTP/1.1 502'), `the reset request got: ${boom.data().slice(0, 40)}`);
    await held2.waitFor((b, closed) => closed, 1000, 'the stream held by u2 to end after the reset');
    pass(`a reset by a node whose listener is gone ended its held stream after ${Date.now() - t1} ms`);
}

await run(main, TMP);
