// A small MCP server of the 2026-07-28 revision, built on the official SDK 2.x
// (@modelcontextprotocol/server), served over Streamable HTTP: the upstream the gateway's
// 2026-07-28 upstream client is tested against (tests/integration/77-fed-up26.mjs).
//
//   PORT=N [LEGACY=reject|stateless] [LATE=N] node sdk2-upstream.mjs
//
// Tools: `add` (plain), `confirm` (asks an elicitation through an input_required result and
// answers with what the user said; two rounds when asked for `rounds: 2`), `nag` (input_required
// on every retry, for ever). Resource
// `demo://counter` (its text is the counter). Control endpoints for the test, beside /mcp:
//   POST /control/bump       counter + 1, then notifications/resources/updated for the resource
//   POST /control/add-tool   adds tool `lateN` (N = 1, 2...), then notifications/tools/list_changed
//   GET  /control/stats      {"requests": {method: count}, "sessionHeaders": n, "badHeaders": n}
// LEGACY=reject (the default) refuses session-era requests, so a gateway that talks 2025 to it
// fails visibly.
import http from 'node:http';
import path from 'node:path';

const npm = process.env.MCPGW_NPM || path.join(process.env.HOME, '.cache/mcpgw-npm');
const sdk = await import(path.join(npm, 'node_modules/@modelcontextprotocol/server/dist/index.mjs'));
const { McpServer, createMcpHandler, fromJsonSchema, inputRequired, acceptedContent } = sdk;

let counter = 0;
let late = Number(process.env.LATE || 0); // tools lateN the server starts with
const stats = { requests: {}, sessionHeaders: 0, badHeaders: 0, metaMissing: 0 };

function factory() {
  const s = new McpServer({ name: 'sdk2-upstream', version: '1.0.0' },
    { capabilities: { tools: { listChanged: true }, resources: { subscribe: true, listChanged: true } } });
  s.registerTool('add', {
    description: 'adds two numbers',
    inputSchema: fromJsonSchema({ type: 'object', properties: { a: { type: 'number' }, b: { type: 'number' } },
      required: ['a', 'b'] }),
  }, async ({ a, b }) => ({ content: [{ type: 'text', text: String(a + b) }] }));
  s.registerTool('confirm', {
    description: 'asks the user a question (elicitation through input_required)',
    inputSchema: fromJsonSchema({ type: 'object', properties: { question: { type: 'string' }, rounds: { type: 'number' } } }),
  }, async ({ question, rounds }, ctx) => {
    const responses = ctx.mcpReq.inputResponses;
    const state = ctx.mcpReq.requestState();
    const first = acceptedContent(responses, 'answer');
    const second = acceptedContent(responses, 'again');
    const form = (message) => inputRequired.elicit({
      message, requestedSchema: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] } });
    // Each retry carries the answers of its own round only; what came before is in the state.
    if (!state)
      return inputRequired({ inputRequests: { answer: form(question || 'Your name?') }, requestState: 'r1' });
    if (state === 'r1' && !first) // declined or cancelled
      return { content: [{ type: 'text', text: 'no answer' }] };
    if (state === 'r1' && (rounds || 1) >= 2)
      return inputRequired({ inputRequests: { again: form('Once more?') }, requestState: `r2:${first.name}` });
    const names = state.startsWith('r2:') ? [state.slice(3), second?.name] : [first.name];
    return { content: [{ type: 'text', text: `hello ${names.join(' and ')}` }] };
  });
  // Never satisfied: input_required with a new state on every retry (no input requests, so a
  // client retries at once).
  s.registerTool('nag', { description: 'asks for input forever' },
    async (ctx) => inputRequired({ requestState: `n${Number(String(ctx.mcpReq.requestState() ?? 'n0').slice(1)) + 1}` }));
  s.registerResource('counter', 'demo://counter', { mimeType: 'text/plain' },
    async (uri) => ({ contents: [{ uri: uri.href, text: String(counter) }] }));
  for (let i = 1; i <= late; i++)
    s.registerTool(`late${i}`, { description: 'added at run time' },
      async () => ({ content: [{ type: 'text', text: `late ${i}` }] }));
  return s;
}

const handler = createMcpHandler(factory, { legacy: process.env.LEGACY || 'reject' });

// node:http to the handler's web-standard fetch: the request (its body already read), the
// response streamed as it comes (SSE), aborted when the client goes.
async function serve(req, res, body) {
  const abort = new AbortController();
  res.on('close', () => abort.abort());
  const headers = new Headers();
  for (const [k, v] of Object.entries(req.headers)) headers.set(k, Array.isArray(v) ? v.join(', ') : v);
  const r = await handler.fetch(new Request(`http://${req.headers.host || '127.0.0.1'}${req.url}`,
    { method: req.method, headers, body: body ?? undefined, signal: abort.signal }));
  res.writeHead(r.status, Object.fromEntries(r.headers));
  if (!r.body) { res.end(); return; }
  try {
    for await (const chunk of r.body) res.write(chunk);
  } catch { /* the client went */ }
  res.end();
}

const server = http.createServer(async (req, res) => {
  if (req.url.startsWith('/control/')) {
    if (req.url === '/control/bump') {
      counter++;
      handler.notify.resourceUpdated('demo://counter');
    } else if (req.url === '/control/add-tool') {
      late++;
      handler.notify.toolsChanged();
    } else if (req.url !== '/control/stats') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ counter, late, ...stats }));
    return;
  }
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const body = Buffer.concat(chunks).toString();
  if (req.method === 'POST') {
    let msg = null;
    try { msg = JSON.parse(body); } catch { /* the handler answers it */ }
    if (msg && msg.method) {
      stats.requests[msg.method] = (stats.requests[msg.method] || 0) + 1;
      if (req.headers['mcp-session-id']) stats.sessionHeaders++;
      if (msg.id !== undefined && req.headers['mcp-method'] !== msg.method) stats.badHeaders++;
      if (msg.id !== undefined && !msg.params?._meta?.['io.modelcontextprotocol/protocolVersion']) stats.metaMissing++;
    }
  }
  serve(req, res, req.method === 'POST' ? body : null).catch((e) => {
    console.error(e);
    if (!res.headersSent) res.writeHead(500);
    res.end();
  });
});
server.listen(Number(process.env.PORT), '127.0.0.1', () => console.log(`sdk2-upstream on ${process.env.PORT}`));
