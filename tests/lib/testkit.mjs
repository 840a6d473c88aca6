// testkit.mjs - the small pieces the balancer's scripted integration tests share: TAP-style
// results, child processes killed at exit, a raw client connection to watch bytes arrive, and a
// scripted node's one port for HTTP/1.1 and h2c.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export const fail = (m) => {
    throw new Error(m);
};
export const pass = (m) => console.log(`ok - ${m}`);
export const check = (c, m) => {
    if (!c) fail(m);
};
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Wait until http://127.0.0.1:port/healthz answers 2xx (a balancer's admin listener, a node);
// fails the test, naming what, after ~5 s.
export async function waitHealthy(port, what) {
    for (let i = 0; ; i++) {
        try {
            if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) return;
        } catch {
            /* not yet */
        }
        if (i > 200) fail(`${what} did not start`);
        await sleep(25);
    }
}

const procs = [];
// Start bin with args, output to TMP/<name>.log; every process started is killed at exit.
export function start(tmp, name, bin, args) {
    check(fs.existsSync(bin), `${bin} not found (set MCPGW_BUILD)`);
    const out = fs.openSync(path.join(tmp, `${name}.log`), 'w');
    const p = spawn(bin, args, { stdio: ['ignore', out, out] });
    procs.push(p);
    return p;
}
export function stopAll() {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
}
process.on('exit', stopAll);

// Run a test's main: exit 0 when it returns; on a failure print it with the last lines of every
// process log in tmp, and exit 1. Every process started is killed either way.
export async function run(main, tmp) {
    try {
        await main();
        stopAll();
        process.exit(0);
    } catch (e) {
        console.error(`FAIL: ${e.message}`);
        for (const f of fs.readdirSync(tmp).filter((f) => f.endsWith('.log'))) {
            const text = fs.readFileSync(path.join(tmp, f), 'utf8').split('\n').slice(-20).join('\n');
            console.error(`== ${f}\n${text}`);
        }
        stopAll();
        process.exit(1);
    }
}

// A raw client connection to 127.0.0.1:port. Resolves to { sock, closed, data(), take(n),
// waitFor(pred, ms, what) }: the bytes so far are a Buffer, or a latin1 string with
// { text: true }; waitFor resolves once pred(bytes, closed) holds, and rejects after ms.
export function rawConnect(port, { text = false } = {}) {
    return new Promise((resolve, reject) => {
        const sock = net.connect({ port, host: '127.0.0.1' });
        let buf = text ? '' : Buffer.alloc(0);
        const state = { sock, closed: false, waiters: [] };
        const wake = () => {
            state.waiters = state.waiters.filter((w) => !w());
        };
        sock.on('data', (d) => {
            buf = text ? buf + d.toString('latin1') : Buffer.concat([buf, d]);
            wake();
        });
        sock.on('close', () => {
            state.closed = true;
            wake();
        });
        state.data = () => buf;
        state.take = (n) => {
            const b = buf.slice(0, n); // a Buffer's slice shares its memory, like subarray
            buf = buf.slice(n);
            return b;
        };
        state.waitFor = (pred, ms, what) =>
            new Promise((res, rej) => {
                const t = setTimeout(() => rej(new Error(`timed out (${ms} ms) waiting for ${what}`)), ms);
                const w = () => {
                    if (!pred(buf, state.closed)) return false;
                    clearTimeout(t);
                    res(buf);
                    return true;
                };
                if (!w()) state.waiters.push(w);
            });
        sock.on('connect', () => {
            sock.on('error', () => {});
            resolve(state);
        });
        sock.on('error', reject);
    });
}

const PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';

// One port for both, like a node: HTTP/1.1 connections are handed to the http.Server h1; HTTP/2
// ones (prior knowledge) are piped to an HTTP/2 server listening on h2port (Node's HTTP/2 server
// cannot take a socket already read from). onSocket, if given, sees every accepted socket.
export function h1h2Front(h1, h2port, onSocket) {
    return net.createServer((sock) => {
        if (onSocket) onSocket(sock);
        sock.on('error', () => {});
        sock.once('data', (d) => {
            const isH2 = d.toString('latin1').startsWith(PREFACE.slice(0, Math.min(d.length, PREFACE.length)));
            if (!isH2) {
                sock.pause();
                sock.unshift(d);
                h1.emit('connection', sock);
                sock.resume();
                return;
            }
            const inner = net.connect(h2port, '127.0.0.1');
            inner.on('error', () => sock.destroy());
            sock.on('close', () => inner.destroy());
            inner.on('close', () => sock.destroy());
            inner.write(d);
            sock.pipe(inner);
            inner.pipe(sock);
        });
    });
}
