// A small MCP server of the 2026-07-28 revision, built on the official SDK 2.x
// (@modelcontextprotocol/server), served over Streamable HTTP: the upstream the gateway's
// 2026-07-28 upstream client is tested against (tests/integration/77-fed-up26.mjs).
//
//   PORT=N [LEGACY=reject|stateless] [LATE=N] [PROMPTS=N] [TTL=ms] node sdk2-upstream.mjs
//
// PROMPTS=N: the server starts with prompts prompt1..promptN (none by default: no prompts
// capability).
//
// TTL=ms: the server announces no list_changed (capabilities listChanged false, /control/add-tool
// notifies nobody) and gives its tools/list that ttlMs: a client must look again by itself.
//
// Tools: `add` (plain), `confirm` (asks an elicitation through an input_required result and
// answers with what the user said; two rounds when asked for `rounds: 2`), `nag` (input_required
// on every retry, for ever), `where` (its inputSchema marks `region`, `greeting`, `n`, `flag` and
// `opts.zone` with x-mcp-header: the SDK refuses a call whose Mcp-Param-* headers do not match),
// `chatty` (logs at debug, info and warning: sent only at the level the request's _meta asks).
// `shifty` (marks `key` with x-mcp-header `S<shift>`: /control/shift renames the header without
// telling anyone, as a redeployed server whose list_changed was missed), `flippy` (marks `key` with
// `F<n>`, n growing at each call of it: its headers never match). Tools whose x-mcp-header
// markings break the revision's rules, which a conforming client leaves out of its tools/list:
// `bad_dup` (two markings equal but for case), `bad_number` (on a `number`), `bad_items` (under
// `items`), `bad_token` (not a header token). Resources `demo://counter` (its text is the
// counter) and `demo://other`. Control endpoints for the test, beside /mcp:
//   POST /control/bump       counter + 1, then notifications/resources/updated for the resource
//   POST /control/add-tool   adds tool `lateN` (N = 1, 2...), then notifications/tools/list_changed
//   POST /control/add-prompt adds prompt `promptN` (N = 1, 2...), then notifications/prompts/list_changed
//   POST /control/shift      shifty's header name changes (no list_changed)
//   POST /control/hold       subscriptions/listen requests from now on wait (no answer yet)...
//   POST /control/release    ...until this (then they go on as usual)
//   POST /control/drop       cuts every open listen stream's connection (no final answer)
//   GET  /control/stats      {"requests": {method: count}, "sessionHeaders": n, "badHeaders": n,
//                             "paramHeaders": the last tools/call's Mcp-Param-* headers,
//                             "logLevels": the _meta log level of each tools/call,
//                             "listens": open listen streams, "held": listen requests waiting,
//                             "mismatches": tools/call answered 400}
// LEGACY=reject (the default) refuses session-era requests, so a gateway that talks 2025 to it
// fails visibly.
import http from 'node:http';
import path from 'node:path';

const npm = process.env.MCPGW_NPM || path.join(process.env.HOME, '.cache/mcpgw-npm');
const sdk = await import(path.join(npm, 'node_modules/@modelcontextprotocol/server/dist/index.mjs'));
const { McpServer, createMcpHandler, fromJsonSchema, inputRequired, acceptedContent } = sdk;

const ttl = process.env.TTL ? Number(process.env.TTL) : null;
let counter = 0;
let shift = 0, flip = 0; // the header names of shifty and flippy
let hold = false;
const held = [];          // listen requests waiting for /control/release
const listens = new Set(); // open listen streams (their responses)
let late = Number(process.env.LATE || 0); // tools lateN the server starts with
let prompts = Number(process.env.PROMPTS || 0); // prompts promptN
const stats = { requests: {}, sessionHeaders: 0, badHeaders: 0, metaMissing: 0, paramHeaders: {}, logLevels: [], mismatches: 0 };

function factory() {
  const s = new McpServer({ name: 'sdk2-upstream', version: '1.0.0' },
    { capabilities: { tools: { listChanged: ttl === null }, resources: { subscribe: true, listChanged: true }, logging: {} },
      ...(ttl === null ? {} : { cacheHints: { 'tools/list': { ttlMs: ttl, cacheScope: 'public' } } }) });
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
  s.registerTool('where', {
    description: 'echoes its arguments; its schema mirrors some into Mcp-Param-* headers',
    inputSchema: fromJsonSchema({ type: 'object', properties: {
      region: { type: 'string', 'x-mcp-header': 'Region' },
      greeting: { type: 'string', 'x-mcp-header': 'Greeting' },
      n: { type: 'integer', 'x-mcp-header': 'N' },
      flag: { type: 'boolean', 'x-mcp-header': 'Flag' },
      opts: { type: 'object', properties: { zone: { type: 'string', 'x-mcp-header': 'Zone' } } },
      note: { type: 'string' } } }),
  }, async (args) => ({ content: [{ type: 'text', text: JSON.stringify(args) }] }));
  s.registerTool('chatty', { description: 'logs at debug, info and warning, then answers' }, async (ctx) => {
    for (const level of ['debug', 'info', 'warning']) await ctx.mcpReq.log(level, `chatty ${level}`);
    return { content: [{ type: 'text', text: 'done' }] };
  });
  s.registerTool('shifty', {
    description: 'echoes key; its header name changes on /control/shift',
    inputSchema: fromJsonSchema({ type: 'object', properties: { key: { type: 'string', 'x-mcp-header': `S${shift}` } } }),
  }, async ({ key }) => ({ content: [{ type: 'text', text: `shifty ${key}` }] }));
  s.registerTool('flippy', {
    description: 'echoes key; its header name changes at every call',
    inputSchema: fromJsonSchema({ type: 'object', properties: { key: { type: 'string', 'x-mcp-header': `F${flip}` } } }),
  }, async ({ key }) => ({ content: [{ type: 'text', text: `flippy ${key}` }] }));
  const bad = {
    bad_dup: { type: 'object', properties: { a: { type: 'string', 'x-mcp-header': 'Dup' }, b: { type: 'string', 'x-mcp-header': 'dUP' } } },
    bad_number: { type: 'object', properties: { x: { type: 'number', 'x-mcp-header': 'X' } } },
    bad_items: { type: 'object', properties: { l: { type: 'array', items: { type: 'string', 'x-mcp-header': 'L' } } } },
    bad_token: { type: 'object', properties: { t: { type: 'string', 'x-mcp-header': 'Not A Token' } } },
  };
  for (const [name, schema] of Object.entries(bad))
    s.registerTool(name, { description: 'an invalid x-mcp-header marking', inputSchema: fromJsonSchema(schema) },
      async () => ({ content: [{ type: 'text', text: name }] }));
  s.registerResource('other', 'demo://other', { mimeType: 'text/plain' },
    async (uri) => ({ contents: [{ uri: uri.href, text: 'other' }] }));
  s.registerResource('counter', 'demo://counter', { mimeType: 'text/plain' },
    async (uri) => ({ contents: [{ uri: uri.href, text: String(counter) }] }));
  for (let i = 1; i <= late; i++)
    s.registerTool(`late${i}`, { description: 'added at run time' },
      async () => ({ content: [{ type: 'text', text: `late ${i}` }] }));
  for (let i = 1; i <= prompts; i++)
    s.registerPrompt(`prompt${i}`, { description: `prompt ${i}` },
      async () => ({ messages: [{ role: 'user', content: { type: 'text', text: `prompt ${i}` } }] }));
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
      if (ttl === null) handler.notify.toolsChanged();
    } else if (req.url === '/control/add-prompt') {
      prompts++;
      handler.notify.promptsChanged();
    } else if (req.url === '/control/shift') {
      shift++;
    } else if (req.url === '/control/hold') {
      hold = true;
    } else if (req.url === '/control/release') {
      hold = false;
      for (const go of held.splice(0)) go();
    } else if (req.url === '/control/drop') {
      for (const r of listens) r.socket?.destroy();
    } else if (req.url !== '/control/stats') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ counter, late, prompts, ...stats, listens: listens.size, held: held.length }));
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
      if (msg.method === 'tools/call') {
        stats.paramHeaders = Object.fromEntries(Object.entries(req.headers).filter(([k]) => k.startsWith('mcp-param-')));
        stats.logLevels.push(msg.params?._meta?.['io.modelcontextprotocol/logLevel'] ?? null);
        if (msg.params?.name === 'flippy') flip++;
        res.on('finish', () => { if (res.statusCode === 400) stats.mismatches++; });
      }
      if (msg.method === 'subscriptions/listen') {
        if (hold) await new Promise((go) => held.push(go));
        listens.add(res);
        res.on('close', () => listens.delete(res));
      }
    }
  }
  serve(req, res, req.method === 'POST' ? body : null).catch((e) => {
    console.error(e);
    if (!res.headersSent) res.writeHead(500);
    res.end();
  });
});
server.listen(Number(process.env.PORT), '127.0.0.1', () => console.log(`sdk2-upstream on ${process.env.PORT}`));
