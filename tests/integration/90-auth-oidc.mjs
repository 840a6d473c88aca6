// The whole OAuth flow with real parts: `oidc-provider` (a certified OpenID provider) as the
// authorization server, issuing JWT access tokens for the gateway's resource (RFC 8707 resource
// indicators), and the official SDK 1.x client with its OAuth support against the balancer and
// two nodes on Redis: the 401 names the protected resource metadata, the client discovers the
// authorization server from it, registers itself dynamically, runs authorization code + PKCE
// (the consent is given by this test, as the user would), gets a token, calls tools, and after
// the access token expires refreshes it and goes on. Ports 17900-17902, 17920, 17940, 17950, 17960-17962.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Cluster, sleep, tmp } from '../lib/cluster.mjs';

const npm = process.env.MCPGW_NPM || path.join(process.env.HOME, '.cache/mcpgw-npm');
const require = createRequire(path.join(npm, 'node_modules/'));
const imp = (p) => import(pathToFileURL(p).href);
const jose = await imp(require.resolve('jose'));
const { default: Provider, errors } = await imp(path.join(npm, 'node_modules/oidc-provider/lib/index.js'));
const { Client } = await imp(require.resolve('@modelcontextprotocol/sdk/client/index.js'));
const { StreamableHTTPClientTransport } = await imp(require.resolve('@modelcontextprotocol/sdk/client/streamableHttp.js'));
const { UnauthorizedError } = await imp(require.resolve('@modelcontextprotocol/sdk/client/auth.js'));

let ok = true;
const check = (cond, what) => { console.log(`${cond ? 'ok' : 'FAIL'} - ${what}`); if (!cond) ok = false; };

const BASE = 17900;
const ISSUER = 'http://127.0.0.1:17920';
const RESOURCE = `http://127.0.0.1:${BASE}/mcp`;
const SCOPE = 'mcp:tools';
const TOKEN_TTL = 4; // s: short, so the test sees a refresh
const REDIRECT = 'http://127.0.0.1:17921/callback';
const RS_SECRET = `rs-${Math.random().toString(36).slice(2)}`, M_SECRET = `m-${Math.random().toString(36).slice(2)}`; // never contacted: the test reads the code off the Location

// ---- the authorization server ----
const { privateKey } = await jose.generateKeyPair('ES256', { extractable: true });
const signing = { ...(await jose.exportJWK(privateKey)), kid: 'as-1', alg: 'ES256', use: 'sig' };
const provider = new Provider(ISSUER, {
  jwks: { keys: [signing] },
  clientDefaults: { id_token_signed_response_alg: 'ES256' },
  // The gateway introspects opaque tokens as mcpgw-rs; "machine" is a service that gets opaque
  // tokens for the gateway with client credentials.
  clients: [
    { client_id: 'mcpgw-rs', client_secret: RS_SECRET, grant_types: [], response_types: [], redirect_uris: [] },
    { client_id: 'machine', client_secret: M_SECRET, grant_types: ['client_credentials'], response_types: [], redirect_uris: [] },
  ],
  // SCOPE is listed so that a client may register with it (the SDK registers with the scope the
  // resource names); the access token's scope comes from getResourceServerInfo.
  scopes: ['openid', 'offline_access', SCOPE],
  features: {
    devInteractions: { enabled: false },
    registration: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resourceIndicator, client) => {
        if (resourceIndicator !== RESOURCE) throw new errors.InvalidTarget();
        if (client?.clientId === 'machine')
          return { scope: SCOPE, audience: RESOURCE, accessTokenTTL: 600, accessTokenFormat: 'opaque' };
        return { scope: SCOPE, audience: RESOURCE, accessTokenTTL: TOKEN_TTL, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } };
      },
    },
  },
  // A client that may refresh gets a refresh token (the SDK asks for the scope the resource
  // names, without offline_access).
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  findAccount: async (ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  pkce: { required: () => true },
});
let consents = 0, introspections = 0;
const callback = provider.callback();
const asServer = createServer(async (req, res) => {
  if (req.url.startsWith('/token/introspection')) introspections++;
  if (req.url.startsWith('/interaction/')) {
    // The user logs in as alice and approves what the client asked for.
    try {
      const { params, prompt } = await provider.interactionDetails(req, res);
      if (process.env.DEBUG_UA) console.log('prompt', prompt.name, prompt.reasons, JSON.stringify(prompt.details), params.scope, params.resource);
      const grant = new provider.Grant({ accountId: 'alice', clientId: params.client_id });
      const d = prompt.details;
      if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
      for (const [res, scopes] of Object.entries(d.missingResourceScopes || {})) grant.addResourceScope(res, scopes.join(' '));
      grant.addResourceScope(RESOURCE, SCOPE);
      const grantId = await grant.save();
      consents++;
      await provider.interactionFinished(req, res, { login: { accountId: 'alice' }, consent: { grantId } }, { mergeWithLastSubmission: false });
    } catch (e) {
      console.log(`interaction failed: ${e.stack}`);
      res.statusCode = 500;
      res.end(String(e));
    }
    return;
  }
  callback(req, res);
});
await new Promise((r) => asServer.listen(17920, '127.0.0.1', r));

// ---- the gateway ----
const cluster = new Cluster({
  base: BASE, nodes: 2,
  nodeArgs: ['--auth', 'jwt', '--auth-issuer', ISSUER, '--auth-jwks-url', `${ISSUER}/jwks`,
    '--auth-resource', RESOURCE, '--auth-scopes', SCOPE, '--auth-skew', '1s',
    '--auth-introspection-url', `${ISSUER}/token/introspection`, '--auth-introspection-client', 'mcpgw-rs',
    '--auth-introspection-secret', RS_SECRET, '--auth-introspection-cache', '2s'],
});
await cluster.start();

// ---- the client's side: an OAuthClientProvider keeping everything in memory ----
const saved = { tokens: [], client: undefined, verifier: undefined, authUrl: undefined, discovery: undefined };
const oauth = {
  get redirectUrl() { return REDIRECT; },
  get clientMetadata() {
    return { client_name: 'mcpgw oidc test', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'], token_endpoint_auth_method: 'none' };
  },
  clientInformation: () => saved.client,
  saveClientInformation: (c) => { saved.client = c; },
  tokens: () => saved.tokens.at(-1),
  saveTokens: (t) => { saved.tokens.push(t); },
  redirectToAuthorization: (url) => { saved.authUrl = url; },
  saveCodeVerifier: (v) => { saved.verifier = v; },
  codeVerifier: () => saved.verifier,
  saveDiscoveryState: (s) => { saved.discovery = s; },
  discoveryState: () => saved.discovery,
};

// The user agent: follow redirects through the authorization server with its cookies until it
// sends us back to the redirect URI with a code.
async function userAgent(start) {
  const jar = new Map();
  let url = String(start);
  for (let hop = 0; hop < 20; hop++) {
    if (url.startsWith(REDIRECT)) return new URL(url);
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const r = await fetch(url, { redirect: 'manual', headers: cookie ? { cookie } : {} });
    for (const c of r.headers.getSetCookie()) {
      const [kv] = c.split(';');
      const i = kv.indexOf('=');
      jar.set(kv.slice(0, i), kv.slice(i + 1));
    }
    const loc = r.headers.get('location');
    if (!loc) throw new Error(`the authorization server stopped at ${url}: ${r.status} ${(await r.text()).slice(0, 300)}`);
    if (process.env.DEBUG_UA) console.log(r.status, url.slice(0, 90), "->", loc.slice(0, 90), r.headers.getSetCookie().map((c) => c.slice(0, 60)));
    url = new URL(loc, url).href;
  }
  throw new Error('too many redirects');
}

const connect = async () => {
  const transport = new StreamableHTTPClientTransport(new URL(cluster.url), { authProvider: oauth });
  const client = new Client({ name: 'oidc-test', version: '1' }, { capabilities: {} });
  await client.connect(transport);
  return { client, transport };
};

try {
  // 1. No token yet: the SDK reads the 401, discovers and registers, and sends the user off.
  let first, err;
  try { first = await connect(); } catch (e) { err = e; }
  check(err instanceof UnauthorizedError || /Unauthorized/.test(String(err)), `without a token the SDK stops at the 401 (${err})`);
  check(saved.discovery?.resourceMetadata?.resource === RESOURCE && saved.discovery?.authorizationServerUrl?.startsWith(ISSUER),
    `it found the authorization server through the protected resource metadata (${saved.discovery?.authorizationServerUrl})`);
  check(saved.discovery?.authorizationServerMetadata?.token_endpoint?.startsWith(ISSUER), 'and read the authorization server metadata');
  check(!!saved.client?.client_id, `it registered itself dynamically (client_id ${saved.client?.client_id})`);
  const au = saved.authUrl;
  check(au && au.searchParams.get('code_challenge_method') === 'S256' && au.searchParams.get('resource') === RESOURCE &&
    au.searchParams.get('scope')?.split(' ').includes(SCOPE),
    `the authorization request uses PKCE (S256), names the resource and the scope (${au?.search.slice(0, 200)})`);

  // 2. The user approves; the client exchanges the code.
  const back = await userAgent(au);
  const code = back.searchParams.get('code');
  const interactions = consents;
  check(!!code && interactions >= 1, `the user logged in and consented (${interactions} interactions) and the client got an authorization code`);
  const t0 = new StreamableHTTPClientTransport(new URL(cluster.url), { authProvider: oauth });
  await t0.finishAuth(code);
  const tok = saved.tokens.at(-1);
  const claims = tok ? jose.decodeJwt(tok.access_token) : {};
  check(claims.aud === RESOURCE && claims.iss === ISSUER && !!tok.refresh_token,
    `the token endpoint issued a JWT access token for the gateway (aud ${claims.aud}) and a refresh token`);

  // 3. Calls through the balancer.
  const s = await connect();
  const r1 = await s.client.callTool({ name: 'echo', arguments: { text: 'with a token' } });
  check(JSON.stringify(r1).includes('with a token'), 'the SDK client initializes and calls echo through the balancer');
  const tools = await s.client.listTools();
  check(tools.tools.length > 0, `and lists tools (${tools.tools.length})`);

  // 4. The access token expires; the next call gets a 401 and the SDK refreshes.
  const nTokens = saved.tokens.length, sid = s.transport.sessionId;
  await sleep(Math.max(0, (claims.exp + 1 + 1) * 1000 - Date.now())); // exp + the gateway's skew
  const r2 = await s.client.callTool({ name: 'echo', arguments: { text: 'after expiry' } });
  const fresh = saved.tokens.at(-1);
  check(JSON.stringify(r2).includes('after expiry') && saved.tokens.length === nTokens + 1 && fresh.access_token !== tok.access_token && s.transport.sessionId === sid,
    `after expiry the SDK refreshed its token (tokens saved: ${saved.tokens.length}) and the call went through on the same session`);
  check(consents === interactions, 'the refresh needed no new consent');
  const logs = ['n1', 'n2'].map((n) => { try { return readFileSync(path.join(tmp, `${n}.log`), 'utf8'); } catch { return ''; } }).join('');
  check(/audit=auth status=401 reason=expired principal="-"/.test(logs), 'the gateway refused the expired token (audit line reason=expired) before the refresh');
  check(!logs.includes(tok.access_token.split('.')[2]) && !logs.includes(fresh.access_token.split('.')[2]), 'no token appears in the node logs');
  const r3 = await s.client.callTool({ name: 'echo', arguments: { text: 'again' } });
  check(JSON.stringify(r3).includes('again'), 'later calls use the new token');
  await s.client.close();

  // 5. Opaque tokens (RFC 7662): a service gets one with client credentials; the gateway asks
  // the authorization server about it once, then uses the answer for a while.
  const basic = (id, secret) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
  const form = (o) => new URLSearchParams(o).toString();
  const tr = await (await fetch(`${ISSUER}/token`, { method: 'POST', headers: { authorization: basic('machine', M_SECRET), 'content-type': 'application/x-www-form-urlencoded' },
    body: form({ grant_type: 'client_credentials', scope: SCOPE, resource: RESOURCE }) })).json();
  const opaque = tr.access_token || '';
  check(opaque && !opaque.includes('.'), `client credentials gave an opaque token (${opaque.length} characters)`);
  const mcp = async (body, token, sid) => {
    const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}` };
    if (sid) headers['mcp-session-id'] = sid;
    const r = await fetch(cluster.url, { method: 'POST', headers, body: JSON.stringify(body) });
    return { status: r.status, sid: r.headers.get('mcp-session-id'), text: await r.text(), www: r.headers.get('www-authenticate') || '' };
  };
  const i0 = introspections;
  const init = await mcp({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'machine', version: '1' } } }, opaque);
  check(init.status === 200 && init.sid && introspections === i0 + 1, `an opaque token is introspected and accepted (${init.status}, ${introspections - i0} introspection)`);
  await mcp({ jsonrpc: '2.0', method: 'notifications/initialized' }, opaque, init.sid);
  const call = { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { text: 'opaque' } } };
  const c1 = await mcp(call, opaque, init.sid);
  check(c1.status === 200 && c1.text.includes('opaque') && introspections === i0 + 1, 'the next call uses the cached answer (no second introspection)');
  const bogus = await mcp(call, 'not-a-real-token-but-long-enough-to-look-like-one', init.sid);
  check(bogus.status === 401 && bogus.www.includes('error="invalid_token"'), `an opaque token the server does not know: 401 (${bogus.status})`);
  await fetch(`${ISSUER}/token/revocation`, { method: 'POST', headers: { authorization: basic('machine', M_SECRET), 'content-type': 'application/x-www-form-urlencoded' }, body: form({ token: opaque }) });
  let c2;
  for (let t = 0; t < 100; t++) { // the cached answer lasts 2 s: wait for the revocation to count
    c2 = await mcp(call, opaque, init.sid);
    if (c2.status !== 200) break;
    await sleep(100);
  }
  check(c2.status === 401, `once revoked and the cached answer aged out, the token is refused (${c2.status})`);
  const logs2 = ['n1', 'n2'].map((n) => { try { return readFileSync(path.join(tmp, `${n}.log`), 'utf8'); } catch { return ''; } }).join('');
  check(/audit=auth status=401 reason=inactive/.test(logs2) && !logs2.includes(opaque) && !logs2.includes(RS_SECRET),
    'the refusal is audited as inactive; neither the token nor the introspection secret is logged');
} catch (e) {
  check(false, `unexpected: ${e.stack}`);
} finally {
  asServer.close();
}
process.exit(ok ? 0 : 1);
