// sdk-echo-server.mjs - the official TypeScript SDK 1.x server with one `echo` tool, as the
// peer bench/node.sh measures a node against: McpServer + StreamableHTTPServerTransport in
// stateful mode (one session id per initialize, as the node does) answering JSON
// (enableJsonResponse: true), so both servers do the same work per call.
//   node bench/sdk-echo-server.mjs PORT        listens on 127.0.0.1:PORT/mcp
// The SDK is taken from $MCPGW_NPM/node_modules (deploy/deps.sh installs it).
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';

const NPM = process.env.MCPGW_NPM ||
    path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'mcpgw-npm');
const mod = (p) => import(pathToFileURL(path.join(NPM, 'node_modules', p)).href);
const { McpServer } = await mod('@modelcontextprotocol/sdk/dist/esm/server/mcp.js');
const { StreamableHTTPServerTransport } =
    await mod('@modelcontextprotocol/sdk/dist/esm/server/streamableHttp.js');
const { isInitializeRequest } = await mod('@modelcontextprotocol/sdk/dist/esm/types.js');
const { z } = await mod('zod/index.js');

const port = Number(process.argv[2] || 8900);
const transports = new Map();

function newServer() {
    const server = new McpServer({ name: 'sdk-echo', version: '1.0.0' });
    server.registerTool('echo', {
        description: 'Returns the given text unchanged',
        inputSchema: { text: z.string() },
    }, async ({ text }) => ({ content: [{ type: 'text', text }] }));
    return server;
}

function refuse(res, status, message) {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message }, id: null }));
}

http.createServer(async (req, res) => {
    try {
        if (!req.url.startsWith('/mcp'))
            return refuse(res, 404, 'Not found');
        let body;
        if (req.method === 'POST') {
            const chunks = [];
            for await (const c of req)
                chunks.push(c);
            body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        }
        const sid = req.headers['mcp-session-id'];
        let t = sid ? transports.get(sid) : undefined;
        if (!t) {
            if (sid)
                return refuse(res, 404, 'Session not found');
            if (req.method !== 'POST' || !isInitializeRequest(body))
                return refuse(res, 400, 'Bad Request: no valid session id');
            t = new StreamableHTTPServerTransport({
                sessionIdGenerator: () => randomUUID(),
                enableJsonResponse: true,
                onsessioninitialized: (id) => transports.set(id, t),
            });
            t.onclose = () => {
                if (t.sessionId)
                    transports.delete(t.sessionId);
            };
            await newServer().connect(t);
        }
        await t.handleRequest(req, res, body);
    } catch (e) {
        if (!res.headersSent)
            refuse(res, 500, String(e && e.message || e));
    }
}).listen(port, '127.0.0.1', () => {
    console.log(`sdk-echo-server: http://127.0.0.1:${port}/mcp (SDK stateful, JSON responses)`);
});
