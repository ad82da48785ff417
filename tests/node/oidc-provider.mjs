// A real OpenID provider for keygate's sign-in tests: node-oidc-provider
// (OpenID-certified) with its built-in login and consent pages, over https
// with the test's throwaway certificate. Driven by tests/it/oidc_provider.rs
// and the browser tests.
//
//   node oidc-provider.mjs PORT CERT_PEM KEY_PEM CONFIG_JSON
//
// CONFIG_JSON: {"client_id", "client_secret", "redirect_uri",
//               "accounts": {SUB: {"email", "email_verified"}},
//               "alg": the ID token's algorithm, RS256 (default), PS256, ES256 or EdDSA,
//               "email_only_at_userinfo": true to leave the email out of ID tokens}
// Prints {"issuer": URL} on stdout once it listens; logs go to stderr.
import Provider from 'oidc-provider';
import { createServer } from 'node:https';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';

const [port, certFile, keyFile, configJson] = process.argv.slice(2);
const config = JSON.parse(configJson);
const issuer = `https://127.0.0.1:${port}`;

// A fresh key for the algorithm each run: the provider's JWKS.
const alg = config.alg || 'RS256';
const keyType = {
  RS256: ['rsa', { modulusLength: 2048 }],
  PS256: ['rsa', { modulusLength: 2048 }],
  ES256: ['ec', { namedCurve: 'P-256' }],
  EdDSA: ['ed25519', {}],
}[alg];
const key = generateKeyPairSync(...keyType).privateKey.export({ format: 'jwk' });

const provider = new Provider(issuer, {
  clients: [{
    client_id: config.client_id,
    client_secret: config.client_secret,
    redirect_uris: [config.redirect_uri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: alg,
  }],
  jwks: { keys: [{ ...key, kid: `test-${alg}`, use: 'sig', alg }] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'] },
  // The email claims in the ID token too, unless asked to give them only at
  // UserInfo (OpenID Connect Core §5.4: scope claims belong there).
  conformIdTokenClaims: Boolean(config.email_only_at_userinfo),
  pkce: { required: () => true },
  cookies: { keys: ['keygate-test-cookie-key'] },
  features: { devInteractions: { enabled: true } },
  findAccount: async (ctx, sub) => {
    const account = config.accounts[sub];
    if (!account) return undefined;
    return { accountId: sub, claims: async () => ({ sub, ...account }) };
  },
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));

createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, provider.callback())
  .listen(Number(port), '127.0.0.1', () => {
    process.stdout.write(JSON.stringify({ issuer }) + '\n');
  });
