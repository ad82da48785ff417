// An MCP server (the official TypeScript SDK's server side, Streamable HTTP,
// stateless) registered with keygate as a protected resource, as
// docs/gateways.md ("An MCP server") tells a product to build one:
//   - it serves its RFC 9728 metadata, naming keygate as its authorization
//     server, and answers a request without a valid token 401 with
//     `WWW-Authenticate: Bearer resource_metadata="…"`;
//   - it verifies every token by introspection at keygate, with the
//     resource's own credentials: active, and (for an access token) issued
//     for this resource, as keygate answers.
//
//   node mcp-server.mjs PORT KEYGATE_ISSUER CLIENT_ID CLIENT_SECRET
//
// Prints {"listening": URL} once it accepts connections; tool `whoami` answers
// the workspace and the kind of credential the caller presented.
import { createServer } from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

const [port, issuer, clientId, clientSecret] = process.argv.slice(2);
const base = `http://127.0.0.1:${port}`;
const resource = `${base}/mcp`;
const metadataPath = '/.well-known/oauth-protected-resource/mcp';

const metadata = {
  resource,
  authorization_servers: [issuer],
  scopes_supported: ['workspace:read'],
  bearer_methods_supported: ['header'],
  resource_name: 'Acme MCP',
};

/** RFC 7662 at keygate, with the resource's credentials. */
async function introspect(token) {
  const basic = Buffer.from(
    `${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`,
  ).toString('base64');
  const res = await fetch(`${issuer}/oauth/introspect`, {
    method: 'POST',
    headers: {
      Authorization: `Basic ${basic}`,
      'Content-Type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ token }),
  });
  if (res.status !== 200) throw new Error(`introspection answered ${res.status}`);
  return res.json();
}

function unauthorized(res, error) {
  const params = [`resource_metadata="${base}${metadataPath}"`];
  if (error) params.unshift(`error="${error}"`);
  res.writeHead(401, {
    'WWW-Authenticate': `Bearer ${params.join(', ')}`,
    'Content-Type': 'application/json',
  });
  res.end(JSON.stringify({ error: 'invalid_token' }));
}

function mcpServer(caller) {
  const server = new McpServer({ name: 'acme-mcp', version: '1.0.0' });
  server.registerTool('whoami', { description: 'Who is calling' }, async () => ({
    content: [{ type: 'text', text: JSON.stringify(caller) }],
  }));
  return server;
}

async function readBody(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : undefined;
}

const http = createServer(async (req, res) => {
  try {
    const path = new URL(req.url, base).pathname;
    if (req.method === 'GET' && (path === metadataPath || path === '/.well-known/oauth-protected-resource')) {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(metadata));
      return;
    }
    if (path !== '/mcp') {
      res.writeHead(404).end();
      return;
    }
    const auth = req.headers.authorization || '';
    const token = auth.startsWith('Bearer ') ? auth.slice(7).trim() : '';
    if (!token) return unauthorized(res);
    const seen = await introspect(token);
    if (!seen.active) return unauthorized(res, 'invalid_token');
    const caller = {
      workspace_id: seen.workspace_id,
      token_type: seen.token_type,
      client_id: seen.client_id,
      scope: seen.scope,
    };
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    const server = mcpServer(caller);
    res.on('close', () => {
      transport.close();
      server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, req.method === 'POST' ? await readBody(req) : undefined);
  } catch (e) {
    process.stderr.write(`mcp-server: ${e && e.stack ? e.stack : e}\n`);
    if (!res.headersSent) res.writeHead(500).end();
  }
});
http.listen(Number(port), '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ listening: resource }) + '\n');
});
