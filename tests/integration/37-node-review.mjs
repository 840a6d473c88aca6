// 37-node-review.mjs - node defects a review found, checked over real HTTP against real nodes
// (one on the memory store, three on one redis-server). Every check here failed before its fix:
//   - after a session moves, its event ids and server-to-client request ids restarted at 0, so
//     ids were used twice within one session; an event id of the earlier owner named another
//     request's stream on the new one;
//   - resources/list on a node listed only the notes written through that node, and
//     notifications/resources/list_changed (advertised) was never sent;
//   - a request reusing the id of a recorded side-effecting request got that request's result
//     without being executed.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { check, fail, pass, run, sleep, start, waitHealthy } from '../lib/testkit.mjs';

const tmp = process.env.MCPGW_TMP || '/tmp';
const build = process.env.MCPGW_BUILD || path.resolve('build');
const nodeBin = path.join(build, 'node/mcpgw-node');
const BASE = 16700; // 16701: memory node, 16711-16713: redis nodes, 16750: redis-server
const REDIS = BASE + 50;

const PV = '2025-11-25';
const H = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream',
    'MCP-Protocol-Version': PV };
const LIST_CHANGED = 'notifications/resources/list_changed';

function startNode(name, port, extra = []) {
    start(tmp, name, nodeBin, ['--listen', `127.0.0.1:${port}`, '--node-id', name, ...extra]);
    return waitHealthy(port, name);
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

// One SSE block to {id, msg} (msg null for a priming event), or null for a comment only.
function sseBlock(block) {
    let id = null;
    const data = [];
    for (const line of block.split(/\r?\n/)) {
        if (line.startsWith('id:')) id = line.slice(3).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    }
    if (data.length && data.join('') !== '') return { id, msg: JSON.parse(data.join('\n')) };
    return id !== null ? { id, msg: null } : null;
}

// Read an SSE response body as it arrives: .events grows, .ended is set at its end.
function sseReader(resp) {
    const st = { events: [], ended: false, status: resp.status, headers: resp.headers };
    const reader = resp.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    (async () => {
        try {
            for (;;) {
                const { value, done } = await reader.read();
                if (done) break;
                buf += dec.decode(value, { stream: true });
                let m;
                while ((m = buf.match(/\r?\n\r?\n/)) !== null) {
                    const ev = sseBlock(buf.slice(0, m.index));
                    buf = buf.slice(m.index + m[0].length);
                    if (ev) st.events.push(ev);
                }
            }
        } catch {
            /* aborted or reset: ended */
        }
        st.ended = true;
    })();
    return st;
}

// POST one message; resolves to { status, msg (the JSON-RPC answer or null), events (SSE) }.
async function post(port, sid, body) {
    const headers = { ...H };
    if (sid) headers['Mcp-Session-Id'] = sid;
    const r = await fetch(`http://127.0.0.1:${port}/mcp`, { method: 'POST', headers,
        body: typeof body === 'string' ? body : JSON.stringify(body) });
    const ct = r.headers.get('content-type') || '';
    if (ct.startsWith('text/event-stream')) {
        const st = sseReader(r);
        await until(() => st.ended, 20000, `the SSE answer on :${port} did not end`);
        const answer = st.events.find((e) => e.msg && 'id' in e.msg && !e.msg.method);
        return { status: r.status, msg: answer ? answer.msg : null, events: st.events, headers: r.headers };
    }
    const text = await r.text();
    return { status: r.status, msg: text ? JSON.parse(text) : null, events: [], headers: r.headers };
}

// POST a message whose answer streams (SSE): the reader, to follow while it runs.
async function postStream(port, sid, body) {
    const r = await fetch(`http://127.0.0.1:${port}/mcp`, { method: 'POST',
        headers: { ...H, 'Mcp-Session-Id': sid }, body: JSON.stringify(body) });
    check(r.status === 200 && (r.headers.get('content-type') || '').startsWith('text/event-stream'),
        `POST ${body.method} on :${port}: HTTP ${r.status} ${r.headers.get('content-type')}`);
    return sseReader(r);
}

// Open a GET stream (optionally resuming after lastId); the reader and its abort.
async function getStream(port, sid, lastId) {
    const ac = new AbortController();
    const headers = { Accept: 'text/event-stream', 'MCP-Protocol-Version': PV, 'Mcp-Session-Id': sid };
    if (lastId) headers['Last-Event-ID'] = lastId;
    const r = await fetch(`http://127.0.0.1:${port}/mcp`, { headers, signal: ac.signal });
    check(r.status === 200, `GET on :${port}: HTTP ${r.status}`);
    const st = sseReader(r);
    st.close = () => ac.abort();
    return st;
}

async function session(port, capabilities = {}) {
    const r = await post(port, null, { jsonrpc: '2.0', id: 0, method: 'initialize', params: {
        protocolVersion: PV, capabilities, clientInfo: { name: 'review', version: '1' } } });
    const sid = r.headers.get('mcp-session-id');
    check(r.status === 200 && sid, `initialize on :${port}: HTTP ${r.status}`);
    const n = await post(port, sid, { jsonrpc: '2.0', method: 'notifications/initialized' });
    check(n.status === 202, `notifications/initialized: HTTP ${n.status}`);
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

async function noteUris(port, sid, id) {
    const r = await post(port, sid, { jsonrpc: '2.0', id, method: 'resources/list' });
    check(r.msg && r.msg.result, `resources/list on :${port}: ${JSON.stringify(r.msg)}`);
    return r.msg.result.resources.map((x) => x.uri).filter((u) => u.startsWith('mcpgw://notes/')).sort();
}

const countOf = (st, method) => st.events.filter((e) => e.msg && e.msg.method === method).length;

// The memory store: a new note sends list_changed (logged: a resume replays it), a rewrite not.
async function memoryChecks() {
    const P = BASE + 1;
    await startNode('m1', P, ['--store', 'memory']);
    const a = await session(P), b = await session(P);
    const g = await getStream(P, a);
    const w1 = await post(P, b, call(1, 'notes_write', { name: 'm-one', text: 'x' }));
    check(w1.msg && w1.msg.result, `notes_write m-one: ${JSON.stringify(w1.msg)}`);
    await until(() => countOf(g, LIST_CHANGED) === 1, 10000,
        `no ${LIST_CHANGED} on the GET stream after a new note (memory store)`);
    const listed = g.events.find((e) => e.msg && e.msg.method === LIST_CHANGED);
    check(listed.id, 'the memory store\'s list_changed has no event id');
    await post(P, b, call(2, 'notes_write', { name: 'm-one', text: 'y' })); // not a new name
    await post(P, b, call(3, 'notes_write', { name: 'm-two', text: 'z' }));
    await until(() => countOf(g, LIST_CHANGED) >= 2, 10000, `no ${LIST_CHANGED} for the second note`);
    await sleep(200);
    check(countOf(g, LIST_CHANGED) === 2, `${countOf(g, LIST_CHANGED)} list_changed for 2 new notes and a rewrite`);
    g.close();
    const uris = await noteUris(P, a, 4);
    check(uris.join() === 'mcpgw://notes/m-one,mcpgw://notes/m-two', `resources/list: ${uris}`);
    // A resume from before the first list_changed replays it.
    const before = g.events[0].id; // the priming event
    const r = await getStream(P, a, before);
    await until(() => countOf(r, LIST_CHANGED) === 2, 10000, `a resume from ${before} did not replay list_changed`);
    r.close();
    pass('memory store: each new note sends resources/list_changed once, logged for a resume');
}

// A tools/call of test_elicitation followed until its elicitation/create request arrives.
async function elicitationRequest(port, sid, id) {
    const st = await postStream(port, sid, call(id, 'test_elicitation', { message: 'ok?' }));
    await until(() => st.events.some((e) => e.msg && e.msg.method === 'elicitation/create'), 10000,
        `no elicitation/create from :${port}`);
    return { st, req: st.events.find((e) => e.msg && e.msg.method === 'elicitation/create') };
}

async function answerElicitation(port, sid, st, req) {
    const r = await post(port, sid, { jsonrpc: '2.0', id: req.msg.id,
        result: { action: 'accept', content: { name: 'x' } } });
    check(r.status === 202, `the elicitation answer: HTTP ${r.status}`);
    await until(() => st.ended, 10000, 'the elicitation call did not end after its answer');
    const res = st.events.find((e) => e.msg && e.msg.result);
    check(res && /action=accept/.test(JSON.stringify(res.msg.result)),
        `the elicitation call's result: ${JSON.stringify(res && res.msg)}`);
}

async function clusterChecks() {
    const P1 = BASE + 11, P2 = BASE + 12, P3 = BASE + 13;
    const redisBin = execFileSync('sh', ['-c', 'command -v redis-server']).toString().trim();
    start(tmp, 'redis', redisBin, ['--port', String(REDIS), '--bind', '127.0.0.1', '--save', '',
        '--appendonly', 'no']);
    const store = ['--store', `redis://127.0.0.1:${REDIS}`];
    const ready = async (p) => {
        try {
            return (await fetch(`http://127.0.0.1:${p}/readyz`)).ok;
        } catch {
            return false;
        }
    };
    await startNode('r1', P1, store);
    await startNode('r2', P2, store);
    await until(async () => await ready(P1) && await ready(P2), 20000, 'nodes not ready on redis');

    // (e) A recorded result answers a retry of the same request only.
    const s = await session(P1, { elicitation: {} });
    const a = await post(P1, s, call(5, 'notes_write', { name: 'ra', text: 'one' }));
    check(a.msg && a.msg.result, `notes_write ra: ${JSON.stringify(a.msg)}`);
    const b = await post(P1, s, call(5, 'notes_write', { name: 'rb', text: 'two' }));
    check(b.msg && b.msg.result && /notes\/rb/.test(JSON.stringify(b.msg.result)),
        `id 5 reused for another request: ${JSON.stringify(b.msg)} (the first got ${JSON.stringify(a.msg)})`);
    const read = await post(P2, s, { jsonrpc: '2.0', id: 6, method: 'resources/read',
        params: { uri: 'mcpgw://notes/rb' } });
    check(read.msg.result && read.msg.result.contents[0].text === 'two',
        `the second request with id 5 was not executed: note rb is ${JSON.stringify(read.msg)}`);
    const answered = await metric(P2, 'mcpgw_node_retries_answered_total');
    const retry = await post(P2, s, call(5, 'notes_write', { name: 'ra', text: 'one' }));
    check(JSON.stringify(retry.msg) === JSON.stringify(a.msg), `a true retry: ${JSON.stringify(retry.msg)}`);
    check(await metric(P2, 'mcpgw_node_retries_answered_total') === answered + 1,
        'the true retry (on another node) was not answered from its record');
    pass('a recorded result answers only a retry of the same request; another with its id is executed');

    // (a) No event id and no server-to-client request id used twice across moves.
    const seen = new Set(), reqIds = new Set();
    const collect = (events, where) => {
        for (const e of events) {
            if (!e.id) continue;
            check(!seen.has(e.id), `event id ${e.id} used twice in one session (${where})`);
            seen.add(e.id);
        }
    };
    const moves = [P1, P2, P1, P2]; // the session is on P2 now (the retry claimed it)
    let id = 20, r1Stream = null;
    for (let i = 0; i < moves.length; i++) {
        const p = moves[i];
        const l = await post(p, s, call(id++, 'test_tool_with_logging'));
        check(l.status === 200 && l.events.length >= 4, `logging tool on :${p}: HTTP ${l.status}, ${l.events.length} events`);
        collect(l.events, `move ${i} to :${p}`);
        const { st, req } = await elicitationRequest(p, s, id++);
        check(!reqIds.has(req.msg.id), `server-to-client request id ${req.msg.id} used twice (move ${i} to :${p})`);
        reqIds.add(req.msg.id);
        if (p === P2 && i === moves.length - 1 && r1Stream) {
            // An event id of the earlier owner names a stream number the new owner has given
            // to this running request: resuming it must not attach to (or replay) this one.
            const old = await getStream(p, s, r1Stream);
            await until(() => old.ended, 5000,
                `a resume of ${r1Stream} (the earlier owner's stream) stayed open on the new owner`);
            check(!old.events.some((e) => e.msg), `a resume of ${r1Stream} got another request's messages: ${
                JSON.stringify(old.events)}`);
            // Resuming the running request's own stream still works (it takes the stream over).
            const own = await getStream(p, s, st.events[0].id);
            await until(() => own.events.some((e) => e.msg && e.msg.method === 'elicitation/create'), 10000,
                'the resume of the running call\'s own stream did not replay its elicitation/create');
            const ans = await post(p, s, { jsonrpc: '2.0', id: req.msg.id, result: { action: 'accept',
                content: { name: 'x' } } });
            check(ans.status === 202, `the elicitation answer: HTTP ${ans.status}`);
            await until(() => own.ended, 10000, 'the resumed stream of the elicitation call did not end');
            check(own.events.some((e) => e.msg && e.msg.result && /action=accept/.test(JSON.stringify(e.msg))),
                `the resumed stream: ${JSON.stringify(own.events)}`);
            await until(() => st.ended, 10000, 'the stream taken over did not end');
        } else {
            await answerElicitation(p, s, st, req);
        }
        collect(st.events, `move ${i} to :${p}`);
        if (p === P1) r1Stream = st.events.filter((e) => e.id).pop().id;
    }
    pass(`over ${moves.length + 1} moves no event id (${seen.size}) and no request id (${reqIds.size}) was used twice`);

    // (c) Every node lists the same notes; a new note sends list_changed on every node.
    const s1 = await session(P1), s2 = await session(P2);
    const g1 = await getStream(P1, s1), g2 = await getStream(P2, s2);
    await startNode('r3', P3, store); // knows only what Redis tells it
    await until(() => ready(P3), 20000, 'r3 not ready on redis');
    const s3 = await session(P3);
    const g3 = await getStream(P3, s3);
    const w = await post(P1, s1, call(30, 'notes_write', { name: 'brand-new', text: 'hi' }));
    check(w.msg.result, 'notes_write brand-new');
    check((await noteUris(P1, s1, 34)).includes('mcpgw://notes/brand-new'),
        'resources/list right after the write, on the node that wrote, lacks the new note');
    for (const [g, where] of [[g1, 'r1'], [g2, 'r2'], [g3, 'r3']])
        await until(() => countOf(g, LIST_CHANGED) === 1, 10000,
            `a session on ${where} got no ${LIST_CHANGED} for a note created through r1`);
    const want = ['brand-new', 'ra', 'rb'].map((n) => `mcpgw://notes/${n}`).join();
    for (const [p, sid, where] of [[P1, s1, 'r1'], [P2, s2, 'r2'], [P3, s3, 'r3']]) {
        const uris = await noteUris(p, sid, 31);
        check(uris.join() === want, `${where} lists ${uris.join()}, not ${want}`);
    }
    await post(P2, s2, call(32, 'notes_write', { name: 'brand-new', text: 'again' })); // no new name
    await post(P3, s3, call(33, 'notes_write', { name: 'newer', text: 'x' }));
    for (const [g, where] of [[g1, 'r1'], [g2, 'r2'], [g3, 'r3']])
        await until(() => countOf(g, LIST_CHANGED) >= 2, 10000, `no second ${LIST_CHANGED} on ${where}`);
    await sleep(200);
    for (const [g, where] of [[g1, 'r1'], [g2, 'r2'], [g3, 'r3']])
        check(countOf(g, LIST_CHANGED) === 2, `${countOf(g, LIST_CHANGED)} list_changed on ${where} for 2 new notes`);
    for (const g of [g1, g2, g3]) g.close();
    pass('every node lists the same notes, and each new note sends resources/list_changed on every node');
}

await run(async () => {
    await memoryChecks();
    await clusterChecks();
}, tmp);
