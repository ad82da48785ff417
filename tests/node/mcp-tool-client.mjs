// The official MCP TypeScript SDK's client (Client over Streamable HTTP with
// an OAuthClientProvider) against an MCP server registered with keygate as a
// protected resource (tests/node/mcp-server.mjs), driven by
// tests/it/resources/mcp.rs, which plays the person in the browser.
//
//   node mcp-tool-client.mjs MCP_URL REDIRECT_URL
//
// The SDK meets the server's 401, reads its RFC 9728 metadata (which names
// keygate), keygate's RFC 8414 metadata, registers (RFC 7591) and runs the
// code flow with PKCE and `resource` = the server's URL. Stdio protocol, one
// JSON object per line:
//   stdout {"authorize": URL}   stdin {"code": CODE}
//   stdout {"done": {...}}      stdout {"error": MESSAGE} and exit 1
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { createInterface } from 'node:readline';

const [mcpUrl, redirectUrl] = process.argv.slice(2);
const say = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

class MemoryProvider {
  constructor() {
    this.client = undefined;
    this.stored = undefined;
    this.verifier = undefined;
    this.authorizeUrl = undefined;
  }
  get redirectUrl() { return redirectUrl; }
  get clientMetadata() {
    return {
      client_name: 'MCP SDK tool client',
      redirect_uris: [redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
    };
  }
  clientInformation() { return this.client; }
  saveClientInformation(info) { this.client = info; }
  tokens() { return this.stored; }
  saveTokens(tokens) { this.stored = tokens; }
  redirectToAuthorization(url) {
    this.authorizeUrl = url.toString();
    say({ authorize: this.authorizeUrl });
  }
  saveCodeVerifier(v) { this.verifier = v; }
  codeVerifier() { return this.verifier; }
}

async function connect(provider) {
  const client = new Client({ name: 'keygate-test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider });
  await client.connect(transport);
  return { client, transport };
}

async function main() {
  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  const provider = new MemoryProvider();
  let first;
  try {
    await connect(provider);
    throw new Error('the MCP server let an unauthenticated client connect');
  } catch (e) {
    if (!(e instanceof UnauthorizedError)) throw e;
    first = 'unauthorized';
  }
  const { code } = JSON.parse((await lines.next()).value);
  const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider });
  await transport.finishAuth(code);
  const { client } = await connect(provider);
  const tools = await client.listTools();
  const result = await client.callTool({ name: 'whoami', arguments: {} });
  say({
    done: {
      first,
      resource: new URL(provider.authorizeUrl).searchParams.get('resource'),
      tools: tools.tools.map((t) => t.name),
      caller: JSON.parse(result.content[0].text),
      access_token: provider.tokens().access_token,
      client_id: provider.client.client_id,
    },
  });
  await client.close();
  process.exit(0);
}

main().catch((e) => {
  say({ error: String(e && e.stack ? e.stack : e) });
  process.exit(1);
});
