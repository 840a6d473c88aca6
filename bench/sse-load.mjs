// sse-load.mjs - closed-loop tools/call load over the older HTTP+SSE transport (GET opens the
// event stream, whose first event names the POST endpoint; answers come on the stream), for
// gateways that speak only that one (mcp-hub). bench/federation.sh runs it.
//   node sse-load.mjs URL SESSIONS SECONDS TOOL ARG BYTES
// Prints "RESULT requests duration_us p50_us p99_us failures" like the wrk scripts.
import http from 'node:http';

const [url, nSessions, seconds, tool, arg, bytes] = process.argv.slice(2);
const base = new URL(url);
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(nSessions) * 2 });
const text = 'x'.repeat(Number(bytes));
const lat = [];
let failures = 0;

function post(path, body) {
    return new Promise((resolve, reject) => {
        const req = http.request(
            { host: base.hostname, port: base.port, path, method: 'POST', agent, headers: { 'content-type': 'application/json' } },
            (res) => {
                res.resume();
                res.on('end', () => (res.statusCode < 300 ? resolve() : reject(new Error(`POST ${res.statusCode}`))));
            },
        );
        req.on('error', reject);
        req.end(JSON.stringify(body));
    });
}

// One session: the event stream, its POST path, and the pending request's resolver.
function open() {
    return new Promise((resolve, reject) => {
        const s = { pending: new Map() };
        const req = http.get({ host: base.hostname, port: base.port, path: base.pathname, headers: { accept: 'text/event-stream' } }, (res) => {
            let buf = '';
            res.setEncoding('utf8');
            res.on('data', (d) => {
                buf += d;
                let i;
                while ((i = buf.indexOf('\n\n')) >= 0) {
                    const ev = buf.slice(0, i);
                    buf = buf.slice(i + 2);
                    const type = /^event: ?(.*)$/m.exec(ev)?.[1] ?? 'message';
                    const data = ev.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
                    if (type === 'endpoint') {
                        s.path = data;
                        resolve(s);
                    } else if (data) {
                        try {
                            const m = JSON.parse(data);
                            const p = s.pending.get(m.id);
                            if (p) {
                                s.pending.delete(m.id);
                                p(m);
                            }
                        } catch {
                            /* not ours */
                        }
                    }
                }
            });
            res.on('error', () => {});
        });
        req.on('error', reject);
        s.req = req;
    });
}

let nextId = 1;
function call(s, method, params) {
    const id = nextId++;
    const answer = new Promise((resolve) => s.pending.set(id, resolve));
    return post(s.path, { jsonrpc: '2.0', id, method, params }).then(() => answer);
}

const sessions = [];
for (let i = 0; i < Number(nSessions); i++) {
    const s = await open();
    await call(s, 'initialize', { protocolVersion: '2025-03-26', capabilities: {}, clientInfo: { name: 'bench', version: '1' } });
    await post(s.path, { jsonrpc: '2.0', method: 'notifications/initialized' });
    sessions.push(s);
}
const t0 = process.hrtime.bigint();
const end = t0 + BigInt(Math.round(Number(seconds) * 1e9));
await Promise.all(
    sessions.map(async (s) => {
        while (process.hrtime.bigint() < end) {
            const a = process.hrtime.bigint();
            try {
                const m = await call(s, 'tools/call', { name: tool, arguments: { [arg]: text } });
                if (!m.result || m.result.isError) failures++;
            } catch {
                failures++;
            }
            lat.push(Number(process.hrtime.bigint() - a) / 1000);
        }
    }),
);
const dur = Number(process.hrtime.bigint() - t0) / 1000;
lat.sort((a, b) => a - b);
const pct = (p) => Math.round(lat[Math.min(lat.length - 1, Math.floor((lat.length * p) / 100))] ?? 0);
console.log(`RESULT ${lat.length} ${Math.round(dur)} ${pct(50)} ${pct(99)} ${failures}`);
for (const s of sessions) s.req.destroy();
agent.destroy();
