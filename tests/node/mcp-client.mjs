// A real third-party OAuth client: the official MCP TypeScript SDK's client
// auth (`auth()` from @modelcontextprotocol/sdk/client/auth.js), driven by
// tests/it/mcp_sdk.rs, which plays the person in the browser.
//
//   node mcp-client.mjs RESOURCE_URL REDIRECT_URL [CLIENT_METADATA_URL]
//
// With CLIENT_METADATA_URL the SDK uses it as a client ID metadata document
// client id; without, it registers through RFC 7591. Protocol on stdio, one
// JSON object per line:
//   stdout {"authorize": URL}   the SDK's redirectToAuthorization
//   stdin  {"code": CODE}       the code the person's approval produced
//   stdout {"done": {...}}      what happened, for the test to check
//   stdout {"error": MESSAGE}   and exit 1 on any failure
import { auth, extractWWWAuthenticateParams } from '@modelcontextprotocol/sdk/client/auth.js';
import { createInterface } from 'node:readline';

const [resourceUrl, redirectUrl, clientMetadataUrl] = process.argv.slice(2);
const say = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

/** An OAuthClientProvider that keeps everything in memory. */
class MemoryProvider {
  constructor() {
    this.client = undefined;
    this.stored = undefined;
    this.verifier = undefined;
    this.registrations = 0;
    if (clientMetadataUrl) this.clientMetadataUrl = clientMetadataUrl;
  }
  get redirectUrl() { return redirectUrl; }
  get clientMetadata() {
    return {
      client_name: 'MCP SDK test client',
      redirect_uris: [redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
    };
  }
  clientInformation() { return this.client; }
  saveClientInformation(info) {
    if (!clientMetadataUrl) this.registrations += 1;
    this.client = info;
  }
  tokens() { return this.stored; }
  saveTokens(tokens) { this.stored = tokens; }
  redirectToAuthorization(url) { say({ authorize: url.toString() }); }
  saveCodeVerifier(v) { this.verifier = v; }
  codeVerifier() { return this.verifier; }
}

async function callResource(token) {
  const res = await fetch(resourceUrl, token ? { headers: { Authorization: `Bearer ${token}` } } : {});
  return { status: res.status, res, body: await res.text() };
}

async function main() {
  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  // Start as any MCP client does: the resource answers 401 and names its
  // RFC 9728 metadata in WWW-Authenticate.
  const first = await callResource();
  const { resourceMetadataUrl } = extractWWWAuthenticateParams(first.res);
  if (first.status !== 401 || !resourceMetadataUrl) {
    throw new Error(`expected 401 with resource_metadata, got ${first.status}`);
  }
  const provider = new MemoryProvider();
  const opts = { serverUrl: resourceUrl, resourceMetadataUrl };

  const started = await auth(provider, opts);
  if (started !== 'REDIRECT') throw new Error(`auth() returned ${started}, not REDIRECT`);
  const next = await lines.next();
  const { code } = JSON.parse(next.value);
  const exchanged = await auth(provider, { ...opts, authorizationCode: code });
  const firstTokens = provider.tokens();
  const withToken = await callResource(firstTokens.access_token);

  // With a refresh token stored, auth() refreshes.
  const refreshed = await auth(provider, opts);
  const secondTokens = provider.tokens();
  const afterRefresh = await callResource(secondTokens.access_token);

  say({
    done: {
      first_status: first.status,
      resource_metadata: resourceMetadataUrl.toString(),
      started,
      exchanged,
      refreshed,
      client_id: provider.client.client_id,
      had_secret: provider.client.client_secret !== undefined,
      registrations: provider.registrations,
      scope: firstTokens.scope,
      status_with_token: withToken.status,
      body_with_token: JSON.parse(withToken.body),
      refresh_rotated: firstTokens.refresh_token !== secondTokens.refresh_token,
      access_changed: firstTokens.access_token !== secondTokens.access_token,
      status_after_refresh: afterRefresh.status,
    },
  });
  process.exit(0);
}

main().catch((e) => {
  say({ error: String(e && e.stack ? e.stack : e) });
  process.exit(1);
});
