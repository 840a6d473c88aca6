// 74-fed-faults.mjs - each row of the federation fault table (docs/federation.md, "Failure
// handling") against real misbehaving upstreams (tests/tools/fault-upstream.mjs, HTTP and stdio):
// the official SDK client gets what the table says, and a second, healthy upstream keeps working
// after every row. Also the circuit breaker (open, half-open probe, closed), the bulkhead
// (max-inflight), per-upstream metrics and /readyz.
// Ports 17600-17619.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { connect, metric, sleep, startProcess, kill, tmp, waitHttp } from '../lib/cluster.mjs';

const root = path.resolve(new URL('../..', import.meta.url).pathname);
const build = process.env.MCPGW_BUILD || path.join(root, 'build');
const nodeBin = process.execPath;
const fault = path.join(root, 'tests/tools/fault-upstream.mjs');
const GW = 17600, BAD = 17601, GOOD = 17602, GONE = 17603, BRK = 17604, TIGHT = 17605, RESTART = 17606;
const starts = path.join(tmp, 'stdio-starts');

let failed = false;
const ok = (m) => console.log(`ok - ${m}`);
function check(c, m) {
    if (!c) throw new Error(m);
}

const up = (name, port) => startProcess(name, nodeBin, [fault, '--port', String(port), '--name', name]);
const stats = async (port) => (await fetch(`http://127.0.0.1:${port}/stats`)).json();

// The client's view of one call: { text } or { error, ms }.
async function call(client, name, args = {}) {
    const t0 = Date.now();
    try {
        const r = await client.callTool({ name, arguments: args });
        if (r.isError) return { error: r.content?.[0]?.text ?? 'isError', ms: Date.now() - t0 };
        return { text: r.content?.[0]?.text, ms: Date.now() - t0 };
    } catch (e) {
        return { error: e.message, ms: Date.now() - t0 };
    }
}

async function healthyStillWorks(client, row) {
    const r = await call(client, 'good__echo', { text: row });
    check(r.text === `good: ${row}`, `after "${row}" the healthy upstream failed: ${JSON.stringify(r)}`);
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

async function main() {
    up('bad', BAD);
    up('good', GOOD);
    up('gone', GONE);
    up('brk', BRK);
    up('tight', TIGHT);
    up('restart', RESTART);
    for (const p of [BAD, GOOD, GONE, BRK, TIGHT, RESTART]) await waitHttp(`http://127.0.0.1:${p}/healthz`);
    const conf = path.join(tmp, 'gw.conf');
    // bad's breaker must not open while its faults are exercised one by one.
    fs.writeFileSync(
        conf,
        [
            `upstream bad http http://127.0.0.1:${BAD}/mcp prefix=bad timeout=1500ms breaker-min=1000`,
            `upstream good http http://127.0.0.1:${GOOD}/mcp prefix=good`,
            `upstream gone http http://127.0.0.1:${GONE}/mcp prefix=gone timeout=2s breaker-min=1000`,
            `upstream restart http http://127.0.0.1:${RESTART}/mcp prefix=restart breaker-min=1000`,
            `upstream brk http http://127.0.0.1:${BRK}/mcp prefix=brk breaker-min=3 breaker-open=1s`,
            `upstream tight http http://127.0.0.1:${TIGHT}/mcp prefix=tight max-inflight=2`,
            `upstream proc stdio "${nodeBin} ${fault} --stdio --name proc" prefix=proc timeout=3s breaker-min=4 breaker-open=500ms`,
            '',
        ].join('\n'),
    );
    const gwEnv = { ...process.env, FAULT_UPSTREAM_STARTS: starts };
    const gwLog = fs.openSync(path.join(tmp, 'gw.log'), 'a');
    const gw = spawn(path.join(build, 'node/mcpgw-node'),
        ['--listen', `127.0.0.1:${GW}`, '--node-id', 'gw', '--store', 'memory', '--config', conf],
        { stdio: ['ignore', gwLog, gwLog], env: gwEnv });
    process.on('exit', () => gw.kill('SIGKILL'));
    await waitHttp(`http://127.0.0.1:${GW}/healthz`);
    const { client } = await connect(`http://127.0.0.1:${GW}/mcp`);
    await until('every upstream listed', async () => {
        const names = (await client.listTools()).tools.map((t) => t.name);
        return ['bad__echo', 'good__echo', 'gone__echo', 'restart__echo', 'brk__echo', 'tight__slow', 'proc__echo']
            .every((n) => names.includes(n));
    });
    await healthyStillWorks(client, 'start');
    ok('the gateway lists the tools of all seven upstreams');

    // Row: connection refused. The upstream was up (its tools are listed), then is gone.
    // The first call may find its kept-alive connection reset; the next one is refused.
    kill('gone');
    let r;
    for (let i = 0; i < 2; i++) {
        r = await call(client, 'gone__echo', { text: 'x' });
        check(r.error && r.error.includes('gone'), `refused: the error does not name the upstream: ${JSON.stringify(r)}`);
        check(r.ms < 2000, `refused: the error took ${r.ms} ms, more than the timeout`);
    }
    check(/refused|connect/i.test(r.error), `refused: ${r.error}`);
    await healthyStillWorks(client, 'refused');
    ok(`connection refused: error naming the upstream in ${r.ms} ms (${r.error})`);

    // Row: reset mid-call.
    r = await call(client, 'bad__reset');
    check(r.error && r.error.includes('bad'), `reset: ${JSON.stringify(r)}`);
    check(r.ms < 1500 + 1000, `reset: the error took ${r.ms} ms`);
    await healthyStillWorks(client, 'reset');
    ok(`reset mid-call: error naming the upstream in ${r.ms} ms (${r.error})`);

    // Row: slower than its timeout (1.5 s): error at the timeout, notifications/cancelled upstream.
    r = await call(client, 'bad__slow', { ms: 8000 });
    check(r.error && /bad/.test(r.error), `slow: ${JSON.stringify(r)}`);
    check(r.ms >= 1400 && r.ms < 4000, `slow: the error came after ${r.ms} ms, not at the 1.5 s timeout`);
    await until('notifications/cancelled at the upstream', async () => (await stats(BAD)).cancelled.length >= 1);
    await healthyStillWorks(client, 'slow');
    ok(`slower than the timeout: error after ${r.ms} ms, notifications/cancelled received upstream`);

    // Rows: too big, invalid JSON, wrong id.
    for (const [tool, args, word] of [
        ['big', { bytes: 17 * 1024 * 1024 }, 'cap'],
        ['bad_json', {}, 'JSON'],
        ['wrong_id', {}, 'id'],
    ]) {
        r = await call(client, `bad__${tool}`, args);
        check(r.error && r.error.includes('bad') && r.error.includes(word), `${tool}: ${JSON.stringify(r)}`);
        await healthyStillWorks(client, tool);
        const again = await call(client, 'bad__echo', { text: 'after' });
        check(again.text === 'bad: after', `${tool}: the faulty upstream's next call failed: ${JSON.stringify(again)}`);
        ok(`${tool}: error (${r.error}); nothing else affected`);
    }

    // Row: 404 for the session (the upstream restarted) on a call that had not reached it: the
    // gateway initializes again once and retries; the tool runs exactly once.
    const before = await stats(RESTART);
    await fetch(`http://127.0.0.1:${RESTART}/forget`, { method: 'POST' });
    r = await call(client, 'restart__echo', { text: 'retried' });
    check(r.text === 'restart: retried', `404 before the call: not retried: ${JSON.stringify(r)}`);
    const after = await stats(RESTART);
    check(after.initializes === before.initializes + 1, `404: ${after.initializes - before.initializes} initializes, not 1`);
    check((after.calls.echo ?? 0) === (before.calls.echo ?? 0) + 1, '404: the tool ran more or less than once');
    await healthyStillWorks(client, '404');
    ok('404 before the call reached the upstream: initialized again once, retried, answered');

    // ... and on a call that had reached it (its stream is cut as the upstream restarts): a clear
    // error, no retry (the tool is not run twice).
    r = await call(client, 'restart__forget_midcall');
    check(r.error && r.error.includes('restart'), `404 mid-call: ${JSON.stringify(r)}`);
    check((await stats(RESTART)).calls.forget_midcall === 1, 'the call that had reached the upstream was retried');
    r = await until('the restarted upstream serving again', async () => {
        const x = await call(client, 'restart__echo', { text: 'back' });
        return x.text === 'restart: back' && x;
    });
    await healthyStillWorks(client, '404 mid-call');
    ok('a call that had reached the restarted upstream: a clear error, not retried; the next call works');

    // Circuit breaker: three failures open it (breaker-min=3): the next call is refused at once
    // naming the upstream; after breaker-open (1 s) a probe goes through and closes it.
    for (let i = 0; i < 3; i++) await call(client, 'brk__bad_json');
    r = await call(client, 'brk__echo', { text: 'x' });
    check(r.error && r.error.includes("upstream 'brk'") && r.error.includes('circuit breaker is open'),
        `breaker: not open after 3 failures: ${JSON.stringify(r)}`);
    check(r.ms < 1000, `breaker: the refusal took ${r.ms} ms`);
    const echoesWhileOpen = (await stats(BRK)).calls.echo ?? 0;
    check(echoesWhileOpen === 0, 'breaker: a refused call reached the upstream');
    let ready = await (await fetch(`http://127.0.0.1:${GW}/readyz`)).text();
    check(/upstream brk: open/.test(ready), `readyz does not show brk open:\n${ready}`);
    check(ready.startsWith('ready'), `one open upstream made the node not ready:\n${ready}`);
    await healthyStillWorks(client, 'breaker open');
    await sleep(1100);
    r = await call(client, 'brk__echo', { text: 'probe' });
    check(r.text === 'brk: probe', `breaker: the half-open probe failed: ${JSON.stringify(r)}`);
    ready = await (await fetch(`http://127.0.0.1:${GW}/readyz`)).text();
    check(/upstream brk: closed/.test(ready), `breaker: not closed after the probe:\n${ready}`);
    ok('circuit breaker: opened after 3 failures, refused at once, half-open probe closed it; readyz shows it');

    // Bulkhead: max-inflight=2; a third call at once is refused, saying so; none is queued.
    const slow = [call(client, 'tight__slow', { ms: 1500 }), call(client, 'tight__slow', { ms: 1500 })];
    await until('two calls in flight at tight', async () => (await stats(TIGHT)).calls.slow === 2);
    r = await call(client, 'tight__echo', { text: 'third' });
    check(r.error && r.error.includes("upstream 'tight'") && r.error.includes('max-inflight'),
        `bulkhead: ${JSON.stringify(r)}`);
    check(r.ms < 1000, `bulkhead: the refusal took ${r.ms} ms (the calls it waited behind take 1.5 s)`);
    for (const s of await Promise.all(slow)) check(s.text === 'tight: slow done', `bulkhead: ${JSON.stringify(s)}`);
    r = await call(client, 'tight__echo', { text: 'after' });
    check(r.text === 'tight: after', `bulkhead: not admitted after the others ended: ${JSON.stringify(r)}`);
    await healthyStillWorks(client, 'bulkhead');
    ok('bulkhead: the call beyond max-inflight refused at once, saying so; admitted again after');

    // stdio child exits mid-call: that call fails, the child restarts (backoff), calls work again.
    const startsBefore = fs.readFileSync(starts, 'utf8').trim().split('\n').length;
    r = await call(client, 'proc__exit');
    check(r.error && r.error.includes('proc'), `stdio exit: ${JSON.stringify(r)}`);
    await until('the stdio child restarted', async () =>
        fs.readFileSync(starts, 'utf8').trim().split('\n').length > startsBefore);
    await until('the restarted child answering', async () => (await call(client, 'proc__echo', { text: 'y' })).text === 'proc: y');
    await healthyStillWorks(client, 'stdio exit');
    ok('stdio child exits: error for its call, restarted, serving again');

    // stdio child hangs: its calls time out; the breaker opens and the child is restarted; once
    // the probe succeeds, calls work again.
    // That the breaker opened is read from its counter, not from a call refused while it was
    // open: with breaker-open=500ms and the restarted child's own list fetches passing the
    // breaker as probes, it may be closed again before any client call sees it open.
    const procOpened = async () => Number(/^mcpgw_upstream_breaker_opened_total\{upstream="proc",kind="stdio"\} (\d+)$/m
        .exec(await (await fetch(`http://127.0.0.1:${GW}/metrics`)).text())?.[1] ?? NaN);
    const openedBefore = await procOpened();
    const startsHang = fs.readFileSync(starts, 'utf8').trim().split('\n').length;
    r = await call(client, 'proc__hang');
    check(r.error && r.error.includes('proc'), `stdio hang: ${JSON.stringify(r)}`);
    check(r.ms >= 2900 && r.ms < 8000, `stdio hang: the error came after ${r.ms} ms, not at the 3 s timeout`);
    await until('the hung child replaced', async () => {
        const x = await call(client, 'proc__echo', { text: 'z' });
        return fs.readFileSync(starts, 'utf8').trim().split('\n').length > startsHang && x.text === 'proc: z';
    }, 60000);
    const openedAfter = await procOpened();
    check(openedAfter > openedBefore, `stdio hang: the breaker never opened (opened_total ${openedBefore} -> ${openedAfter})`);
    await healthyStillWorks(client, 'stdio hang');
    ok(`stdio child hangs: its calls time out, the breaker opens (opened_total ${openedBefore} -> ${openedAfter}) and restarts it, it serves again`);

    // Metrics: per upstream, calls, errors by class, latency, breaker state, processes, restarts.
    const m = await (await fetch(`http://127.0.0.1:${GW}/metrics`)).text();
    for (const want of [
        /mcpgw_upstream_calls_total\{upstream="good",kind="http"\} [1-9]/,
        /mcpgw_upstream_errors_total\{upstream="bad",kind="http",class="timeout"\} 1/,
        /mcpgw_upstream_errors_total\{upstream="bad",kind="http",class="too_big"\} 1/,
        /mcpgw_upstream_errors_total\{upstream="bad",kind="http",class="bad_json"\} 1/,
        /mcpgw_upstream_errors_total\{upstream="bad",kind="http",class="bad_id"\} 1/,
        /mcpgw_upstream_call_seconds_count\{upstream="good",kind="http"\} [1-9]/,
        /mcpgw_upstream_breaker_opened_total\{upstream="brk",kind="http"\} 1/,
        /mcpgw_upstream_breaker_state\{upstream="brk",kind="http"\} 0/,
        /mcpgw_upstream_refused_total\{upstream="tight",kind="http",reason="max_inflight"\} 1/,
        /mcpgw_upstream_processes\{upstream="proc",kind="stdio"\} 1/,
        /mcpgw_upstream_restarts_total\{upstream="proc",kind="stdio"\} [2-9]/,
    ]) check(want.test(m), `metrics: no line matching ${want}`);
    ok('metrics: calls, errors by class, latency, breaker state, refusals, processes, restarts');
    await client.close();
}

main()
    .then(() => {
        console.log('74-fed-faults: all rows passed');
        process.exit(0);
    })
    .catch((e) => {
        failed = true;
        console.error(`FAIL: ${e.message}`);
        for (const f of fs.readdirSync(tmp).filter((f) => f.endsWith('.log'))) {
            const text = fs.readFileSync(path.join(tmp, f), 'utf8').split('\n').slice(-25).join('\n');
            console.error(`== ${f}\n${text}`);
        }
        process.exit(1);
    });
