// 46-fed-passthru.mjs - an upstream's plain tools/call result reaches the client byte for byte
// as the upstream wrote it, with only the id rewritten (docs/federation.md, "Answers passed
// through"), over a shared and a per-client upstream session, in a JSON body and on an event
// stream; answers that cannot pass (other members, text the strict scanner refuses but json-c
// reads) still arrive with the same meaning; broken answers (invalid JSON, bad UTF-8, a lone
// surrogate escape, a huge integer, a wrong id) still get today's clear errors. The same over stdio
// children, shared and per-client (the answers the full parse takes; a broken line from a child
// is dropped and logged, as before, so the call waits for its timeout: not repeated here).
// The upstream here is a small HTTP server in this file, so that every byte of its answers is
// chosen. Ports 12100-12119.
import http from 'node:http';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import readline from 'node:readline';

// `--stdio`: this script is also the stdio upstream (one JSON-RPC message per line), answering
// the same hand-written bytes; the test itself runs without the flag.
const stdioMode = process.argv.includes('--stdio');
const { tmp, waitHttp } = stdioMode ? {} : await import('../lib/cluster.mjs');

const root = path.resolve(new URL('../..', import.meta.url).pathname);
const build = process.env.MCPGW_BUILD || path.join(root, 'build');
const GW = 12100, SHARED = 12101, OWN = 12102;

const ok = (m) => console.log(`ok - ${m}`);
function check(c, m) {
    if (!c) throw new Error(m);
}

// ---- the upstream: answers written by hand ----
const big = 'x'.repeat(150000) + ' caf\u00e9 \\u00e9 ' + 'y'.repeat(150000);
const RESULTS = {
    // escapes json-c would rewrite (\u00e9 and a surrogate pair decoded, \/ unescaped), numbers
    // it keeps as written, deep nesting, a nested key given twice
    rich: '{"content":[{"type":"text","text":"caf\\u00e9 \\ud83d\\ude00 a\\/b \\"q\\" \\\\ \\n caf\u00e9 \ud83d\ude00"}],' +
        '"structuredContent":{"n":[1.50,1e2,-0.0,0,-7,18446744073709551615,2.5E-3],' +
        '"deep":{"a":{"b":{"c":[[{}],[],{"d":null}]}}},"t":true,"f":false,"dup":1,"dup":2},' +
        '"isError":false}',
    large: `{"content":[{"type":"text","text":"${big}"}]}`,
    sse: '{"content":[{"type":"text","text":"on a stream \\u2713"}]}',
    spaced: '{ "content" : [ { "type" : "text" , "text" : "spaced" } ] }',
};
// Whole messages that must not pass through; {id} is the request's id.
const OTHERS = {
    extra: '{"jsonrpc":"2.0","id":{id},"result":{"content":[{"type":"text","text":"extra"}]},"x":1}',
    raw_tab: '{"jsonrpc":"2.0","id":{id},"result":{"content":[{"type":"text","text":"a\tb"}]}}',
    escaped_key: '{"jsonrpc":"2.0","id":{id},"r\\u0065sult":{"content":[{"type":"text","text":"esc"}]}}',
    upstream_error: '{"jsonrpc":"2.0","id":{id},"error":{"code":-32042,"message":"upstream says no","data":{"k":1}}}',
    truncated: '{"jsonrpc":"2.0","id":{id},"result":{"content":[',
    bad_utf8: '{"jsonrpc":"2.0","id":{id},"result":{"content":[{"type":"text","text":"\xff"}]}}',
    lone_surrogate: '{"jsonrpc":"2.0","id":{id},"result":{"content":[{"type":"text","text":"\\ud800"}]}}',
    big_int: '{"jsonrpc":"2.0","id":{id},"result":{"n":18446744073709551616}}',
    wrong_id: '{"jsonrpc":"2.0","id":{other},"result":{"content":[]}}',
    string_id: '{"jsonrpc":"2.0","id":"{id}","result":{"content":[]}}',
};
const TOOLS = [...Object.keys(RESULTS), ...Object.keys(OTHERS)];
const PROMPT = '{"description":"d\\u00e9","messages":[{"role":"user","content":{"type":"text","text":"hi \\/ \\ud83d\\ude00"}}]}';
const READ = (port) => `{"contents":[{"uri":"hand://${port}/r","mimeType":"text/plain","text":"r\\u00e9ad \\/"}]}`;

// The answer's text to msg (a request), or null for a notification.
function answerText(msg, port) {
    if (msg.id === undefined) return null;
    if (msg.method === 'initialize')
        return JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: {
            protocolVersion: '2025-11-25', capabilities: { tools: {} },
            serverInfo: { name: 'handmade', version: '1' } } });
    if (msg.method === 'tools/list')
        return JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { tools: TOOLS.map((name) => (
            { name, description: name, inputSchema: { type: 'object' } })) } });
    const tool = msg.params?.name;
    if (RESULTS[tool]) return `{"jsonrpc":"2.0","id":${msg.id},"result":${RESULTS[tool]}}`;
    if (OTHERS[tool]) return OTHERS[tool].replace('{id}', String(msg.id)).replace('{other}', String(msg.id + 1000));
    return JSON.stringify({ jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: `no ${msg.method} ${tool}` } });
}

function serveStdio() {
    const rl = readline.createInterface({ input: process.stdin });
    rl.on('line', (line) => {
        const text = answerText(JSON.parse(line));
        if (text !== null) process.stdout.write(`${text}\n`);
    });
}

function upstream(port, stateful) {
    const server = http.createServer((req, res) => {
        if (req.url === '/healthz') return void res.writeHead(200).end('ok');
        if (req.method === 'DELETE') return void res.writeHead(200).end();
        if (req.method !== 'POST') return void res.writeHead(405, { allow: 'POST' }).end();
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => {
            const msg = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            const head = { 'content-type': 'application/json' };
            if (stateful) head['mcp-session-id'] = 'sess-1';
            const send = (text, type = 'application/json') => {
                // bad_utf8 carries a lone 0xFF byte: written as is, not as UTF-8
                const body = text.includes('\xff') ? Buffer.from(text, 'latin1') : Buffer.from(text, 'utf8');
                res.writeHead(200, { ...head, 'content-type': type, 'content-length': body.length });
                res.end(body);
            };
            if (msg.id === undefined) return void res.writeHead(202, head).end();
            if (msg.method === 'initialize')
                return send(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: {
                    protocolVersion: '2025-11-25', capabilities: { tools: {}, prompts: {}, resources: {} },
                    serverInfo: { name: 'handmade', version: '1' } } }));
            if (msg.method === 'tools/list')
                return send(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { tools: TOOLS.map((name) => (
                    { name, description: name, inputSchema: { type: 'object' } })) } }));
            if (msg.method === 'prompts/list')
                return send(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { prompts: [{ name: 'p', description: 'p' }] } }));
            if (msg.method === 'resources/list')
                return send(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { resources: [{ uri: `hand://${port}/r`, name: 'r' }] } }));
            if (msg.method === 'resources/templates/list')
                return send(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { resourceTemplates: [] } }));
            if (msg.method === 'prompts/get') return send(`{"jsonrpc":"2.0","id":${msg.id},"result":${PROMPT}}`);
            if (msg.method === 'resources/read') return send(`{"jsonrpc":"2.0","id":${msg.id},"result":${READ(port)}}`);
            const tool = msg.params?.name;
            if (RESULTS[tool] && tool === 'sse') {
                const note = '{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"before"}}';
                const ans = `{"jsonrpc":"2.0","id":${msg.id},"result":${RESULTS.sse}}`;
                return send(`event: message\ndata: ${note}\n\nevent: message\ndata: ${ans}\n\n`, 'text/event-stream');
            }
            if (RESULTS[tool]) return send(`{"jsonrpc":"2.0","id":${msg.id},"result":${RESULTS[tool]}}`);
            if (OTHERS[tool]) return send(OTHERS[tool].replace('{id}', String(msg.id)).replace('{other}', String(msg.id + 1000)));
            send(JSON.stringify({ jsonrpc: '2.0', id: msg.id, error: { code: -32602, message: `no ${tool}` } }));
        });
    });
    server.keepAliveTimeout = 60000;
    server.listen(port, '127.0.0.1');
    return server;
}

// ---- a client that sees the bytes ----
async function post(sid, body) {
    const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream',
        'mcp-protocol-version': '2025-11-25' };
    if (sid) headers['mcp-session-id'] = sid;
    const r = await fetch(`http://127.0.0.1:${GW}/mcp`, { method: 'POST', headers, body });
    const text = Buffer.from(await r.arrayBuffer()).toString('utf8');
    if (!(r.headers.get('content-type') ?? '').startsWith('text/event-stream'))
        return { r, json: text, events: [] };
    // the last data: line is the answer; the others are the call's notifications
    const events = text.split('\n').filter((l) => l.startsWith('data: ') && l.length > 6).map((l) => l.slice(6));
    return { r, json: events[events.length - 1], events };
}

async function session() {
    const { r } = await post(null, JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: {
        protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'passthru-test', version: '1' } } }));
    const sid = r.headers.get('mcp-session-id');
    check(sid, 'no session id');
    await post(sid, '{"jsonrpc":"2.0","method":"notifications/initialized"}');
    return sid;
}

let nextId = 100;
async function call(sid, tool, id = nextId++) {
    const idText = typeof id === 'string' ? JSON.stringify(id) : String(id);
    const res = await post(sid, `{"jsonrpc":"2.0","id":${idText},"method":"tools/call","params":{"name":"${tool}","arguments":{}}}`);
    return { ...res, idText, msg: JSON.parse(res.json) };
}

// stdio: the answers the full parse would take (pass-through and fallbacks), with their ids
const STDIO_OK = ['rich', 'large', 'spaced'];

async function stdioChecks(sid) {
    for (const prefix of ['st', 'pst']) {
        const mode = prefix === 'st' ? 'stdio shared child' : 'stdio per-client child';
        for (const tool of STDIO_OK) {
            const c = await call(sid, `${prefix}__${tool}`);
            const want = `{"jsonrpc":"2.0","id":${c.idText},"result":${RESULTS[tool]}}`;
            check(c.json === want, `${mode} ${tool}: not passed through byte for byte:\n got ${c.json.slice(0, 300)}\nwant ${want.slice(0, 300)}`);
        }
        let c = await call(sid, `${prefix}__extra`);
        check(c.msg.result?.content?.[0]?.text === 'extra' && c.msg.x === undefined, `${mode} extra: ${c.json}`);
        c = await call(sid, `${prefix}__raw_tab`);
        check(c.msg.result?.content?.[0]?.text === 'a\tb' && c.json.includes('a\\tb'), `${mode} raw_tab: ${c.json}`);
        c = await call(sid, `${prefix}__upstream_error`);
        check(c.msg.error?.code === -32042 && c.msg.error?.message === 'upstream says no', `${mode} upstream_error: ${c.json}`);
        ok(`${mode}: ${STDIO_OK.join(', ')} passed through byte for byte; an extra member, a raw tab, an error take the full parse`);
    }
}

async function main() {
    const servers = [upstream(SHARED, false), upstream(OWN, true)];
    await waitHttp(`http://127.0.0.1:${SHARED}/healthz`);
    await waitHttp(`http://127.0.0.1:${OWN}/healthz`);
    const conf = path.join(tmp, 'gw.conf');
    fs.writeFileSync(conf, [
        `upstream sh http http://127.0.0.1:${SHARED}/mcp prefix=sh breaker-min=1000`,
        `upstream own http http://127.0.0.1:${OWN}/mcp prefix=own breaker-min=1000`,
        `upstream st stdio "${process.execPath} ${fileURLToPath(import.meta.url)} --stdio" prefix=st timeout=5s`,
        `upstream pst stdio "${process.execPath} ${fileURLToPath(import.meta.url)} --stdio" prefix=pst session=per-client timeout=5s`,
        '',
    ].join('\n'));
    const gwLog = fs.openSync(path.join(tmp, 'gw.log'), 'a');
    const gw = spawn(path.join(build, 'node/mcpgw-node'),
        ['--listen', `127.0.0.1:${GW}`, '--node-id', 'gw', '--store', 'memory', '--config', conf, '--log-level', 'info'],
        { stdio: ['ignore', gwLog, gwLog] });
    process.on('exit', () => gw.kill('SIGKILL'));
    await waitHttp(`http://127.0.0.1:${GW}/healthz`);
    const sid = await session();
    for (const end = Date.now() + 20000; ;) {
        const l = JSON.parse((await post(sid, '{"jsonrpc":"2.0","id":1,"method":"tools/list"}')).json);
        const names = (l.result?.tools ?? []).map((t) => t.name);
        if (['sh__rich', 'own__rich', 'st__rich', 'pst__rich'].every((n) => names.includes(n))) break;
        check(Date.now() < end, `the gateway never listed both upstreams: ${JSON.stringify(names.slice(0, 5))}`);
        await new Promise((r) => setTimeout(r, 100));
    }
    const log = fs.readFileSync(path.join(tmp, 'gw.log'), 'utf8');
    check(/upstream sh: connected.*shared/.test(log) && /upstream own: connected.*per-client/.test(log),
        `the two upstreams are not one shared and one per-client:\n${log}`);

    for (const prefix of ['sh', 'own']) {
        const mode = prefix === 'sh' ? 'shared session' : 'per-client session';
        // Passed through: the client's answer is the envelope around the upstream's bytes.
        for (const tool of Object.keys(RESULTS)) {
            for (const id of [nextId++, `str-\u00e9-/-${nextId++}`]) {
                const c = await call(sid, `${prefix}__${tool}`, id);
                const want = `{"jsonrpc":"2.0","id":${c.idText},"result":${RESULTS[tool]}}`;
                check(c.json === want, `${mode} ${tool}: not passed through byte for byte:\n got ${c.json.slice(0, 300)}\nwant ${want.slice(0, 300)}`);
                check(JSON.stringify(c.msg.id) === JSON.stringify(id), `${mode} ${tool}: id ${JSON.stringify(c.msg.id)}`);
                if (tool === 'sse')
                    check(c.events.length === 2 && c.events[0].includes('before'), `${mode} sse: the notification before the answer was lost: ${c.events}`);
            }
            ok(`${mode}: ${tool} (${RESULTS[tool].length} bytes) passed through byte for byte, integer and string ids`);
        }
        // prompts/get and resources/read answers pass through as well.
        const port = prefix === 'sh' ? SHARED : OWN;
        for (const [method, params, result] of [
            ['prompts/get', { name: `${prefix}__p` }, PROMPT],
            ['resources/read', { uri: `hand://${port}/r` }, READ(port)],
        ]) {
            const id = nextId++;
            const res = await post(sid, JSON.stringify({ jsonrpc: '2.0', id, method, params }));
            const want = `{"jsonrpc":"2.0","id":${id},"result":${result}}`;
            check(res.json === want, `${mode} ${method}: not passed through:\n got ${res.json}\nwant ${want}`);
        }
        ok(`${mode}: prompts/get and resources/read passed through byte for byte`);
        // Not passed through, answered as before with the same meaning.
        let c = await call(sid, `${prefix}__extra`);
        check(c.msg.result?.content?.[0]?.text === 'extra' && c.msg.x === undefined, `${mode} extra: ${c.json}`);
        c = await call(sid, `${prefix}__raw_tab`);
        check(c.msg.result?.content?.[0]?.text === 'a\tb' && c.json.includes('a\\tb'), `${mode} raw_tab: ${c.json}`);
        c = await call(sid, `${prefix}__escaped_key`);
        check(c.msg.result?.content?.[0]?.text === 'esc', `${mode} escaped_key: ${c.json}`);
        c = await call(sid, `${prefix}__upstream_error`);
        check(c.msg.error?.code === -32042 && c.msg.error?.message === 'upstream says no', `${mode} upstream_error: ${c.json}`);
        ok(`${mode}: an extra member, a raw tab, an escaped key and an error answer take the full parse, same meaning as before`);
        // Broken answers: the errors of the fault table.
        for (const [tool, words] of [
            ['truncated', ['invalid JSON-RPC in the answer to tools/call', 'not valid JSON']],
            ['bad_utf8', ['invalid JSON-RPC', 'not valid UTF-8']],
            ['lone_surrogate', ['invalid JSON-RPC', 'unpaired surrogate']],
            ['big_int', ['invalid JSON-RPC', 'integer outside']],
            ['wrong_id', ['carries id']],
            ['string_id', ['carries id']],
        ]) {
            c = await call(sid, `${prefix}__${tool}`);
            const m = c.msg.error?.message ?? '';
            check(c.msg.error?.code === -32603 && m.includes(`upstream ${prefix}`) && words.every((w) => m.includes(w)),
                `${mode} ${tool}: not the clear error: ${c.json}`);
        }
        ok(`${mode}: invalid JSON, bad UTF-8, a lone surrogate, a huge integer, a wrong id: clear errors naming the upstream`);
    }
    await stdioChecks(sid);
    for (const s of servers) s.close();
}

if (stdioMode) serveStdio();
else main()
    .then(() => {
        console.log('46-fed-passthru: all passed');
        process.exit(0);
    })
    .catch((e) => {
        console.error(`FAIL: ${e.message}`);
        for (const f of fs.readdirSync(tmp).filter((f) => f.endsWith('.log'))) {
            const text = fs.readFileSync(path.join(tmp, f), 'utf8').split('\n').slice(-25).join('\n');
            console.error(`== ${f}\n${text}`);
        }
        process.exit(1);
    });
