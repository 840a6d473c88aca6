// 76-fed-per-client.mjs - per-client upstream sessions as the default, and what they share with
// the shared session (docs/federation.md, "Per-client upstream sessions"), against real HTTP
// upstreams (tests/tools/fault-upstream.mjs) behind one node, with official SDK 1.x clients:
//   1. no session= on the line: a stateful upstream (it gives an Mcp-Session-Id) gets one session
//      per client session, a stateless one only the node's own;
//   2. per-client calls pass the upstream's bulkhead (max-inflight) and circuit breaker, and
//      count in its metrics;
//   3. two server-to-client requests of one call pending at once (sampling twice in parallel)
//      both reach the client and both answers reach the upstream;
//   4. SIGHUP: a changed header reaches the running per-client sessions on their next call
//      (no new initialize); a removed upstream's per-client sessions are DELETEd upstream.
// Ports 14700-14709.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { metric, sdkPath, sleep, startProcess, tmp, types, waitHttp } from '../lib/cluster.mjs';

const { Client } = await import(sdkPath('client/index.js'));
const { StreamableHTTPClientTransport } = await import(sdkPath('client/streamableHttp.js'));
const root = path.resolve(new URL('../..', import.meta.url).pathname);
const build = process.env.MCPGW_BUILD || path.join(root, 'build');
const nodeBin = process.execPath;
const fault = path.join(root, 'tests/tools/fault-upstream.mjs');
const GW = 14700, SF = 14701, SL = 14702, TIGHT = 14703, BRK = 14704;
const CLIENTS = 3;

const ok = (m) => console.log(`ok - ${m}`);
function check(c, m) {
    if (!c) throw new Error(m);
}
async function until(what, fn, ms = 20000) {
    const end = Date.now() + ms;
    for (;;) {
        const v = await fn();
        if (v) return v;
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await sleep(100);
    }
}
const stats = async (port) => (await fetch(`http://127.0.0.1:${port}/stats`)).json();
async function call(client, name, args = {}) {
    try {
        const r = await client.callTool({ name, arguments: args });
        if (r.isError) return { error: r.content?.[0]?.text ?? 'isError' };
        return { text: r.content?.[0]?.text };
    } catch (e) {
        return { error: e.message };
    }
}
// The metric line of one upstream's series (labels in any order).
async function series(name, upstream, extra = '') {
    const text = await (await fetch(`http://127.0.0.1:${GW}/metrics`)).text();
    let sum = 0;
    for (const line of text.split('\n'))
        if (line.startsWith(`${name}{`) && line.includes(`upstream="${upstream}"`) && line.includes(extra))
            sum += Number(line.split(' ').pop());
    return sum;
}

async function client(name) {
    const c = new Client({ name, version: '1.0.0' }, { capabilities: { sampling: {} } });
    c.setRequestHandler(types.CreateMessageRequestSchema, async (req) => {
        const q = req.params.messages[0].content.text;
        await sleep(q === 'first' ? 300 : 0); // the second is answered while the first waits
        return { role: 'assistant', model: 'test', content: { type: 'text', text: `${name} answers ${q}` } };
    });
    await c.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${GW}/mcp`)));
    return c;
}

const conf = path.join(tmp, 'gw.conf');
const lines = (mark) => [
    `upstream sf http http://127.0.0.1:${SF}/mcp prefix=sf header="X-Mark: ${mark}"`,
    `upstream sl http http://127.0.0.1:${SL}/mcp prefix=sl`,
    `upstream tight http http://127.0.0.1:${TIGHT}/mcp prefix=tight max-inflight=2`,
    `upstream brk http http://127.0.0.1:${BRK}/mcp prefix=brk breaker-min=3 breaker-open=30s`,
];

async function main() {
    startProcess('sf', nodeBin, [fault, '--port', String(SF), '--name', 'sf']);
    startProcess('sl', nodeBin, [fault, '--port', String(SL), '--name', 'sl', '--stateless']);
    startProcess('tight', nodeBin, [fault, '--port', String(TIGHT), '--name', 'tight']);
    startProcess('brk', nodeBin, [fault, '--port', String(BRK), '--name', 'brk']);
    for (const p of [SF, SL, TIGHT, BRK]) await waitHttp(`http://127.0.0.1:${p}/healthz`);
    fs.writeFileSync(conf, [...lines('one'), ''].join('\n'));
    const gwLog = path.join(tmp, 'gw.log');
    const fd = fs.openSync(gwLog, 'a');
    const gw = spawn(path.join(build, 'node/mcpgw-node'),
        ['--listen', `127.0.0.1:${GW}`, '--node-id', 'gw', '--store', 'memory', '--config', conf],
        { stdio: ['ignore', fd, fd] });
    process.on('exit', () => gw.kill('SIGKILL'));
    await waitHttp(`http://127.0.0.1:${GW}/healthz`);

    const clients = [];
    for (let i = 0; i < CLIENTS; i++) clients.push(await client(`c${i}`));
    await until('every upstream listed', async () => {
        const names = (await clients[0].listTools()).tools.map((t) => t.name);
        return ['sf__echo', 'sl__echo', 'tight__slow', 'brk__bad_json'].every((n) => names.includes(n));
    });

    // 1. The default follows the upstream.
    for (const [i, c] of clients.entries()) {
        const a = await call(c, 'sf__echo', { text: `a${i}` }), b = await call(c, 'sl__echo', { text: `b${i}` });
        check(a.text === `sf: a${i}` && b.text === `sl: b${i}`, `client ${i}: ${JSON.stringify([a, b])}`);
        check((await call(c, 'sf__echo', { text: 'again' })).text === 'sf: again', `client ${i}: second call`);
    }
    const sf = await stats(SF), sl = await stats(SL);
    check(sf.initializes === 1 + CLIENTS,
        `stateful upstream, no session=: ${sf.initializes} initializes, want 1 (the node's) + ${CLIENTS} (one per client)`);
    check(sl.initializes === 1, `stateless upstream, no session=: ${sl.initializes} initializes, want only the node's`);
    check(/upstream sf: connected \(revision [^,]+, stateful: per-client sessions\)/.test(fs.readFileSync(gwLog, 'utf8')),
        'the log says which mode the stateful upstream got');
    ok(`no session=: the stateful upstream saw ${sf.initializes} initializes (per-client), the stateless one ${sl.initializes} (shared)`);

    // 2. Bulkhead: max-inflight=2 holds per-client calls too (each client has its own session).
    const slow = await Promise.all(clients.map((c) => call(c, 'tight__slow', { ms: 2000 })));
    const busy = slow.filter((r) => r.error && /busy|max-inflight/.test(r.error));
    check(busy.length === 1 && slow.filter((r) => r.text === 'tight: slow done').length === 2,
        `max-inflight=2 with ${CLIENTS} per-client calls at once: ${JSON.stringify(slow)}`);
    check((await series('mcpgw_upstream_refused_total', 'tight', 'max_inflight')) === 1, 'refused_total{max_inflight} is 1');
    check((await series('mcpgw_upstream_calls_total', 'tight')) >= 2, 'the per-client calls count in calls_total');
    check((await stats(TIGHT)).initializes >= 3, 'tight is per-client');
    ok(`bulkhead: ${busy.length} of ${CLIENTS} per-client calls refused (${busy[0].error})`);

    // Breaker: failed per-client calls (bad JSON) open it (at least 3 outcomes, half of them
    // failures: the node's own list fetch counted as a success, so the second failure trips it);
    // the next call is refused at once, without reaching the upstream.
    for (let i = 0; i < 3; i++) {
        const r = await call(clients[i], 'brk__bad_json');
        check(r.error && /brk/.test(r.error), `bad_json ${i}: ${JSON.stringify(r)}`);
    }
    const callsBefore = (await stats(BRK)).calls.echo ?? 0;
    const refused = await call(clients[0], 'brk__echo', { text: 'x' });
    check(refused.error && /circuit breaker is open/.test(refused.error), `after 3 failures: ${JSON.stringify(refused)}`);
    check(((await stats(BRK)).calls.echo ?? 0) === callsBefore, 'the refused call did not reach the upstream');
    check((await series('mcpgw_upstream_breaker_state', 'brk')) === 1, 'breaker_state{brk} is 1 (open)');
    check((await series('mcpgw_upstream_errors_total', 'brk', 'bad_json')) >= 2, 'the per-client failures count in errors_total');
    ok(`breaker: per-client failures open it (${refused.error})`);

    // 3. Two sampling requests of one call pending at once.
    const both = await call(clients[1], 'sf__sample_twice');
    check(both.text === 'c1 answers first | c1 answers second', `sample_twice: ${JSON.stringify(both)}`);
    ok(`two concurrent server-to-client requests of one call: ${both.text}`);

    // 4. SIGHUP with another header: the sessions stay, the next call carries the new header.
    const initsBefore = (await stats(SF)).initializes;
    check((await stats(SF)).mark === 'one', 'the header before the reload');
    fs.writeFileSync(conf, [...lines('two'), ''].join('\n'));
    gw.kill('SIGHUP');
    await until('the reload', async () => /reload: upstream sf was changed/.test(fs.readFileSync(gwLog, 'utf8')));
    for (const c of clients) await until('sf listed again', async () =>
        (await c.listTools()).tools.some((t) => t.name === 'sf__echo'));
    for (const [i, c] of clients.entries()) {
        const r = await call(c, 'sf__echo', { text: `after${i}` });
        check(r.text === `sf: after${i}`, `after the reload, client ${i}: ${JSON.stringify(r)}`);
        check((await stats(SF)).mark === 'two', `client ${i}'s call after the reload carried the old header`);
    }
    const sfAfter = await stats(SF);
    // The node's own session is restarted (its line changed); the per-client ones are kept.
    check(sfAfter.initializes === initsBefore + 1,
        `after a header change: ${sfAfter.initializes - initsBefore} new initializes, want 1 (the node's own)`);
    ok('a reload that changes a header: per-client sessions kept, their next calls carry the new header');

    // SIGHUP without sf: its per-client sessions are closed (DELETE) at the upstream.
    const deletesBefore = sfAfter.deletes;
    fs.writeFileSync(conf, [...lines('two').slice(1), ''].join('\n'));
    gw.kill('SIGHUP');
    await until(`${CLIENTS} per-client sessions DELETEd`, async () => (await stats(SF)).deletes - deletesBefore >= CLIENTS + 1);
    check((await stats(SF)).deletes - deletesBefore === CLIENTS + 1, 'one DELETE per session, the node\'s own included');
    const gone = await call(clients[0], 'sf__echo', { text: 'x' });
    check(gone.error, `a removed upstream's tool still answers: ${JSON.stringify(gone)}`);
    check((await call(clients[0], 'sl__echo', { text: 'y' })).text === 'sl: y', 'the other upstreams still work');
    ok(`a reload that removes the upstream: its ${CLIENTS} per-client sessions DELETEd upstream`);

    for (const c of clients) await c.close();
}

main().then(() => process.exit(0), (e) => {
    console.error(`not ok - ${e.message}`);
    process.exit(1);
});
