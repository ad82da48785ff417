// node-oidc-provider as the benchmark's comparator for introspection (the
// performance issue's "≥ 10 × node-oidc-provider per request"): one
// confidential client with the client credentials grant, introspection on,
// plain HTTP on 127.0.0.1, its default in-memory storage.
//
//   node oidc-provider.mjs PORT NODE_MODULES_DIR
//
// NODE_MODULES_DIR holds oidc-provider (the tests' pinned copy:
// tests/node/node_modules, installed by ./scripts/test). Prints
// {"issuer": URL} on stdout once it listens; logs go to stderr.
import { createServer } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [port, modules] = process.argv.slice(2);
const { default: Provider } = await import(
  pathToFileURL(join(modules, 'oidc-provider', 'lib', 'index.js')).href
);
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'bench',
    client_secret: 'bench-secret',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  features: {
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    devInteractions: { enabled: false },
  },
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));

createServer(provider.callback()).listen(Number(port), '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ issuer }) + '\n');
});
