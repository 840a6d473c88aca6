// 81-2026-sdk2.mjs - the official TypeScript SDK 2.x client (@modelcontextprotocol/client) as a
// real 2026-07-28 client of two nodes: pinned to 2026-07-28 and in 'auto' negotiation it
// discovers, lists, calls and reads, and fulfils an MRTR elicitation round whose retry is sent to
// the other node, which continues it from the sealed requestState because both nodes hold the
// same --state-keyring. The control: the same round across nodes with different key rings
// fails, so the shared key is what carries the round. A session-era client (legacy mode) still
// gets a session from the same endpoint.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { check, pass, run, start, waitHealthy } from '../lib/testkit.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BUILD = process.env.MCPGW_BUILD || path.join(ROOT, 'build');
const NPM = process.env.MCPGW_NPM ||
    path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'mcpgw-npm');
const TMP = process.env.MCPGW_TMP || fs.mkdtempSync(path.join(os.tmpdir(), 'mcpgw-test.'));
const PORTS = { a: 17720, b: 17721, c: 17722 };

const sdk = await import(
    pathToFileURL(path.join(NPM, 'node_modules/@modelcontextprotocol/client/dist/index.mjs')).href);
const { Client, StreamableHTTPClientTransport } = sdk;

// A fetch that sends each request to the next of `ports` in turn, and records where each
// JSON-RPC method went, so a retry's node can be checked.
function roundRobin(ports, log) {
    let i = 0;
    return async (url, init) => {
        const port = ports[i++ % ports.length];
        const u = new URL(url);
        u.port = String(port);
        let body = null;
        try {
            body = init && typeof init.body === 'string' ? JSON.parse(init.body) : null;
        } catch {
            /* not JSON */
        }
        if (body && body.method) log.push({ port, method: body.method, name: body.params?.name });
        return fetch(u, init);
    };
}

async function connect(mode, ports, log) {
    const client = new Client({ name: 'mcpgw-81', version: '1.0.0' },
        { capabilities: { elicitation: {} }, versionNegotiation: { mode } });
    client.setRequestHandler('elicitation/create', async () => ({
        action: 'accept', content: { name: 'Ada' },
    }));
    const transport = new StreamableHTTPClientTransport(
        new URL(`http://127.0.0.1:${ports[0]}/mcp`), { fetch: roundRobin(ports, log) });
    await client.connect(transport);
    return client;
}

async function scenario(label, mode) {
    const log = [];
    const client = await connect(mode, [PORTS.a, PORTS.b], log);
    check(client.getNegotiatedProtocolVersion() === '2026-07-28',
        `${label}: negotiated ${client.getNegotiatedProtocolVersion()}, expected 2026-07-28`);
    check(log[0]?.method === 'server/discover', `${label}: the first request was ${log[0]?.method}`);
    const disc = await client.discover();
    check(disc.supportedVersions.includes('2026-07-28'), `${label}: discover lists ${disc.supportedVersions}`);
    const tools = await client.listTools();
    check(tools.tools.some((t) => t.name === 'echo'), `${label}: tools/list has no echo`);
    const echo = await client.callTool({ name: 'echo', arguments: { text: 'hi 2026' } });
    check(echo.content?.[0]?.text === 'hi 2026', `${label}: echo answered ${JSON.stringify(echo)}`);
    const res = await client.listResources();
    check(Array.isArray(res.resources), `${label}: resources/list failed`);

    // The MRTR round: the first tools/call gets input_required, the SDK asks our handler and
    // retries with inputResponses and the requestState, through the next node.
    const from = log.length;
    const r = await client.callTool({ name: 'test_input_required_result_request_state', arguments: {} });
    const text = r.content?.[0]?.text || '';
    check(text.includes('state-ok'), `${label}: the MRTR round ended with ${JSON.stringify(r)}`);
    const calls = log.slice(from).filter((e) => e.method === 'tools/call');
    check(calls.length === 2, `${label}: expected 2 tools/call requests, saw ${JSON.stringify(calls)}`);
    check(calls[0].port !== calls[1].port,
        `${label}: the retry went to the same node (${calls[0].port}); the test proves nothing`);
    pass(`${label}: discover, list, call; an MRTR elicitation round began on :${calls[0].port} ` +
        `and completed on :${calls[1].port}`);
    await client.close();
}

async function main() {
    const bin = path.join(BUILD, 'node/mcpgw-node');
    const shared = path.join(TMP, 'state.keys'), other = path.join(TMP, 'other.keys');
    fs.writeFileSync(shared, crypto.randomBytes(32).toString('hex') + '\n');
    fs.writeFileSync(other, crypto.randomBytes(32).toString('hex') + '\n');
    for (const [name, port, keys] of [['a', PORTS.a, shared], ['b', PORTS.b, shared], ['c', PORTS.c, other]])
        start(TMP, name, bin, ['--listen', `127.0.0.1:${port}`, '--node-id', name, '--store', 'memory',
            '--state-keyring', keys]);
    for (const [name, port] of Object.entries(PORTS)) await waitHealthy(port, `node ${name}`);

    await scenario('pinned 2026-07-28', { pin: '2026-07-28' });
    await scenario('auto', 'auto');

    // Control: nodes with different key rings cannot continue each other's rounds.
    {
        const log = [];
        const client = await connect({ pin: '2026-07-28' }, [PORTS.a, PORTS.c], log);
        let err = null;
        try {
            // discover went to a; the first call goes to c and its retry to a.
            await client.callTool({ name: 'test_input_required_result_request_state', arguments: {} });
        } catch (e) {
            err = e;
        }
        check(err && /integrity/.test(String(err.message)),
            `across different key rings the round should fail its integrity check, got ${err ? err.message : 'a result'}`);
        pass('across nodes with different key rings the retry is refused (-32602, integrity)');
        await client.close();
    }

    // The same endpoint still speaks the session era to a session-era client.
    {
        const log = [];
        const client = await connect('legacy', [PORTS.a], log);
        check(log[0]?.method === 'initialize', `legacy mode began with ${log[0]?.method}`);
        const echo = await client.callTool({ name: 'echo', arguments: { text: 'old era' } });
        check(echo.content?.[0]?.text === 'old era', `legacy echo answered ${JSON.stringify(echo)}`);
        pass(`legacy mode: initialize and a session (${client.getNegotiatedProtocolVersion()}) on the same /mcp`);
        await client.close();
    }
}

await run(main, TMP);
