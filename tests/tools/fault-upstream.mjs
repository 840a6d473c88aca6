// fault-upstream.mjs - a real MCP server that misbehaves on demand, for the federation fault
// tests. Written without an SDK so that it can break the protocol in exactly the ways asked.
//
//   node fault-upstream.mjs --port P [--name N]     Streamable HTTP on 127.0.0.1:P/mcp
//   node fault-upstream.mjs --stdio [--name N]      newline-delimited JSON-RPC on stdin/stdout
//   --stateless (HTTP)                              issue no Mcp-Session-Id (a stateless server)
//
// Tools (all take an optional `text`):
//   echo                   answers "<name>: <text>"
//   slow {ms}              answers after ms (HTTP: a cancelled call is recorded)
//   reset                  HTTP: sends the response head, then cuts the connection (a reset
//                          mid-call: the call reached the upstream)
//   forget_midcall         HTTP: starts an event-stream answer (the call reached the tool), then
//                          forgets every session and cuts the connection
//   big {bytes}            answers with a text of that many bytes
//   bad_json               HTTP: answers 200 application/json with a body that is not JSON
//   wrong_id               answers with another JSON-RPC id
//   exit {code}            stdio: the process exits before answering
//   hang                   stdio: the process stops reading and answering (a busy loop)
//   sample_twice           HTTP: asks the client sampling/createMessage twice at once, on the
//                          call's event stream, and answers with both replies' texts
//   sample_then_notify     HTTP: asks sampling/createMessage once; once answered, sends on the
//                          call's stream notifications/progress (the call's progressToken, if
//                          any), notifications/message without a level, at debug and at info,
//                          then the reply's text
//
// GET /stats (HTTP) answers the counters as JSON: initializes, calls per tool, cancellations,
// 404s sent, DELETEs of a known session, and the X-Mark header of the last tools/call. POST /forget forgets every session, as a restarted server would: the next request
// with an old session id gets 404 without reaching any tool. On stdio, each start appends a line to the file named by FAULT_UPSTREAM_STARTS.
import fs from 'node:fs';
import http from 'node:http';
import readline from 'node:readline';

const args = process.argv.slice(2);
const opt = (k, d) => {
    const i = args.indexOf(k);
    return i >= 0 ? args[i + 1] : d;
};
const name = opt('--name', 'fault');
const stdio = args.includes('--stdio');
const stateless = args.includes('--stateless');

const TOOLS = ['echo', 'slow', 'reset', 'forget_midcall', 'big', 'bad_json', 'wrong_id', 'exit', 'hang', 'sample_twice', 'sample_then_notify'];
const stats = { initializes: 0, calls: {}, cancelled: [], gone404: 0, deletes: 0, mark: null };
const text = (s) => ({ content: [{ type: 'text', text: s }] });
const result = (id, r) => ({ jsonrpc: '2.0', id, result: r });
const error = (id, code, message) => ({ jsonrpc: '2.0', id, error: { code, message } });

function toolList() {
    return {
        tools: TOOLS.map((t) => ({
            name: t,
            description: `fault-upstream ${t}`,
            inputSchema: { type: 'object', properties: { text: { type: 'string' }, ms: { type: 'number' }, bytes: { type: 'number' }, code: { type: 'number' } } },
        })),
    };
}

function initializeResult(params) {
    const asked = params?.protocolVersion;
    const known = ['2025-03-26', '2025-06-18', '2025-11-25'];
    return {
        protocolVersion: known.includes(asked) ? asked : '2025-11-25',
        capabilities: { tools: {} },
        serverInfo: { name: `fault-upstream-${name}`, version: '1.0.0' },
    };
}

// What every transport shares: the answer to a request, or null for "handled specially"
// (the caller gets { fault, msg }).
function answer(msg) {
    const { id, method, params } = msg;
    if (method === 'initialize') {
        stats.initializes++;
        return { reply: result(id, initializeResult(params)) };
    }
    if (method === 'ping') return { reply: result(id, {}) };
    if (method === 'tools/list') return { reply: result(id, toolList()) };
    if (method !== 'tools/call') return { reply: error(id, -32601, `Method not found: ${method}`) };
    const tool = params?.name;
    const a = params?.arguments ?? {};
    stats.calls[tool] = (stats.calls[tool] ?? 0) + 1;
    switch (tool) {
    case 'echo':
        return { reply: result(id, text(`${name}: ${a.text ?? ''}`)) };
    case 'big':
        if (!stdio) return { fault: tool, args: a };
        return { reply: result(id, text('x'.repeat(a.bytes ?? 1024))) };
    case 'wrong_id':
        return { reply: result(typeof id === 'number' ? id + 1000 : `${id}-other`, text('wrong id')) };
    case 'slow':
    case 'sample_twice':
    case 'sample_then_notify':
    case 'reset':
    case 'forget_midcall':
    case 'bad_json':
    case 'exit':
    case 'hang':
        return { fault: tool, args: a };
    default:
        return { reply: result(id, { ...text(`unknown tool ${tool}`), isError: true }) };
    }
}

// ---- stdio ----
function serveStdio() {
    const starts = process.env.FAULT_UPSTREAM_STARTS;
    if (starts) fs.appendFileSync(starts, `${process.pid}\n`);
    const send = (m) => process.stdout.write(`${JSON.stringify(m)}\n`);
    const rl = readline.createInterface({ input: process.stdin });
    rl.on('line', (line) => {
        let msg;
        try {
            msg = JSON.parse(line);
        } catch {
            return;
        }
        if (msg.id === undefined || msg.method === undefined) return; // notifications, responses
        const a = answer(msg);
        if (a.reply) return send(a.reply);
        switch (a.fault) {
        case 'slow':
            setTimeout(() => send(result(msg.id, text(`${name}: slow done`))), a.args.ms ?? 1000);
            break;
        case 'exit':
            process.exit(a.args.code ?? 3);
            break;
        case 'hang':
            for (;;); // a hung child: reads nothing, answers nothing, until it is killed
        default:
            send(error(msg.id, -32602, `${a.fault} is an HTTP fault`));
        }
    });
    rl.on('close', () => process.exit(0));
}

// ---- Streamable HTTP ----
const sessions = new Set();
let nextSession = 1;
let nextAsk = 1;
const asked = new Map(); // our request id -> resolve(the client's response)

function readBody(req) {
    return new Promise((resolve) => {
        const parts = [];
        req.on('data', (d) => parts.push(d));
        req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
        req.on('error', () => resolve(''));
    });
}

function json(res, status, body, headers = {}) {
    const s = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s), ...headers });
    res.end(s);
}

async function onPost(req, res) {
    let msg;
    try {
        msg = JSON.parse(await readBody(req));
    } catch {
        return json(res, 400, error(null, -32700, 'Parse error'));
    }
    const sid = req.headers['mcp-session-id'];
    if (msg.method === 'initialize') {
        if (stateless) return json(res, 200, answer(msg).reply);
        const id = `${name}-s${nextSession++}`;
        sessions.add(id);
        return json(res, 200, answer(msg).reply, { 'mcp-session-id': id });
    }
    if (msg.method === 'tools/call') stats.mark = req.headers['x-mark'] ?? null;
    if (msg.id !== undefined && msg.method === undefined && asked.has(msg.id)) {
        asked.get(msg.id)(msg); // the client's answer to one of our requests
        asked.delete(msg.id);
        res.writeHead(202).end();
        return;
    }
    if (!stateless && (!sid || !sessions.has(sid))) {
        stats.gone404++;
        return json(res, sid ? 404 : 400, error(msg.id ?? null, -32001, sid ? 'Session not found' : 'Missing session id'));
    }
    if (msg.id === undefined || msg.method === undefined) {
        if (msg.method === 'notifications/cancelled') stats.cancelled.push(msg.params?.requestId);
        res.writeHead(202).end();
        return;
    }
    const a = answer(msg);
    if (a.reply) return json(res, 200, a.reply);
    switch (a.fault) {
    case 'slow': {
        const t = setTimeout(() => {
            if (!res.destroyed) json(res, 200, result(msg.id, text(`${name}: slow done`)));
        }, a.args.ms ?? 1000);
        res.on('close', () => clearTimeout(t));
        break;
    }
    case 'sample_twice': {
        // Both requests are out before either is answered: the client must take them together.
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const ask = (q) => new Promise((resolve) => {
            const id = `ask-${nextAsk++}`;
            asked.set(id, resolve);
            const m = { jsonrpc: '2.0', id, method: 'sampling/createMessage',
                params: { messages: [{ role: 'user', content: { type: 'text', text: q } }], maxTokens: 10 } };
            res.write(`data: ${JSON.stringify(m)}\n\n`);
        });
        const replies = await Promise.all([ask('first'), ask('second')]);
        const texts = replies.map((r) => r.result?.content?.text ?? `error: ${r.error?.message}`);
        res.end(`data: ${JSON.stringify(result(msg.id, text(texts.join(' | '))))}\n\n`);
        break;
    }
    case 'sample_then_notify': {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const id = `ask-${nextAsk++}`;
        const reply = await new Promise((resolve) => {
            asked.set(id, resolve);
            const m = { jsonrpc: '2.0', id, method: 'sampling/createMessage',
                params: { messages: [{ role: 'user', content: { type: 'text', text: 'one' } }], maxTokens: 10 } };
            res.write(`data: ${JSON.stringify(m)}\n\n`);
        });
        const note = (method, params) => res.write(`data: ${JSON.stringify({ jsonrpc: '2.0', method, params })}\n\n`);
        const token = msg.params?._meta?.progressToken;
        if (token !== undefined) note('notifications/progress', { progressToken: token, progress: 1, total: 2, message: 'answered' });
        note('notifications/message', { logger: name, data: 'a message without a level' });
        note('notifications/message', { level: 'debug', logger: name, data: 'debug after the answer' });
        note('notifications/message', { level: 'info', logger: name, data: 'info after the answer' });
        res.end(`data: ${JSON.stringify(result(msg.id, text(reply.result?.content?.text ?? `error: ${reply.error?.message}`)))}\n\n`);
        break;
    }
    case 'reset':
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(': about to fail\n\n');
        setTimeout(() => req.socket.destroy(), 20);
        break;
    case 'forget_midcall':
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(': working\n\n');
        setTimeout(() => {
            sessions.clear();
            req.socket.destroy();
        }, 20);
        break;
    case 'big': {
        // Written in 1 MiB pieces from one buffer: building a 17 MiB string takes seconds here.
        const head = Buffer.from(JSON.stringify(result(msg.id, text('@'))).replace('"@"', '"'), 'utf8');
        const [pre, post] = [head.subarray(0, head.indexOf('"', head.indexOf('"text":') + 7) + 1), Buffer.from('"}]}}')];
        const piece = Buffer.alloc(1 << 20, 'x');
        const n = Math.ceil((a.args.bytes ?? 1024) / piece.length);
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': pre.length + n * piece.length + post.length });
        res.write(pre);
        let i = 0;
        const more = () => {
            while (i < n) {
                i++;
                if (!res.write(piece)) return void res.once('drain', more);
            }
            res.end(post);
        };
        res.on('error', () => {});
        more();
        break;
    }
    case 'bad_json': {
        const s = '{"jsonrpc":"2.0","id":' + JSON.stringify(msg.id) + ',"result":{"content":[';
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': s.length });
        res.end(s);
        break;
    }
    default:
        json(res, 200, error(msg.id, -32602, `${a.fault} is a stdio fault`));
    }
}

function serveHttp(port) {
    const server = http.createServer((req, res) => {
        const url = req.url.split('?')[0];
        if (url === '/stats' && req.method === 'GET') return json(res, 200, stats);
        if (url === '/healthz') return json(res, 200, { ok: true });
        if (url === '/forget' && req.method === 'POST') {
            sessions.clear();
            return json(res, 200, { forgotten: true });
        }
        if (url !== '/mcp') return json(res, 404, { error: 'not found' });
        if (req.method === 'POST') return void onPost(req, res);
        if (req.method === 'DELETE') {
            if (sessions.delete(req.headers['mcp-session-id'])) stats.deletes++;
            return void res.writeHead(200).end();
        }
        res.writeHead(405, { allow: 'POST, DELETE' }).end(); // no GET stream
    });
    server.keepAliveTimeout = 60000;
    server.listen(port, '127.0.0.1', () => console.log(`fault-upstream ${name} listening on 127.0.0.1:${port}`));
}

if (stdio) serveStdio();
else serveHttp(Number(opt('--port', '0')));
