// openid-client (npm) as a machine client of keygate: private_key_jwt with
// RS256 and PS256 keys, client credentials, DPoP-bound tokens, a DPoP call
// to /v1 and introspection. Protocol with the test (one JSON object a line):
// this script prints {"jwks": …} (its public keys), reads
// {"issuer", "client_id"}, runs, and prints what happened, or {"error": …}.
import * as client from 'openid-client';
import { createInterface } from 'node:readline';

const { subtle } = globalThis.crypto;

async function rsaKey(name, kid) {
  const pair = await subtle.generateKey(
    { name, modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
    true,
    ['sign', 'verify'],
  );
  const jwk = await subtle.exportKey('jwk', pair.publicKey);
  return { privateKey: { key: pair.privateKey, kid }, jwk: { kty: jwk.kty, n: jwk.n, e: jwk.e, kid } };
}

function say(v) {
  process.stdout.write(JSON.stringify(v) + '\n');
}

async function run(issuer, clientId, rs, ps) {
  const options = { execute: [client.allowInsecureRequests], algorithm: 'oauth2' };
  const rsConfig = await client.discovery(new URL(issuer), clientId, undefined, client.PrivateKeyJwt(rs.privateKey), options);
  const dpop = client.getDPoPHandle(rsConfig, await client.randomDPoPKeyPair('ES256'));
  const token = await client.clientCredentialsGrant(rsConfig, { scope: 'workspace:read' }, { DPoP: dpop });
  const api = await client.fetchProtectedResource(rsConfig, token.access_token, new URL(`${issuer}/v1/workspace`), 'GET', undefined, undefined, { DPoP: dpop });
  const workspace = await api.json();
  const introspected = await client.tokenIntrospection(rsConfig, token.access_token);
  const psConfig = await client.discovery(new URL(issuer), clientId, undefined, client.PrivateKeyJwt(ps.privateKey), options);
  const edDpop = client.getDPoPHandle(psConfig, await client.randomDPoPKeyPair('EdDSA'));
  const second = await client.clientCredentialsGrant(psConfig, {}, { DPoP: edDpop });
  const again = await client.fetchProtectedResource(psConfig, second.access_token, new URL(`${issuer}/v1/workspace`), 'GET', undefined, undefined, { DPoP: edDpop });
  return {
    token_type: token.token_type,
    api_status: api.status,
    workspace_id: workspace.id,
    active: introspected.active,
    jkt: introspected.cnf?.jkt ?? null,
    ps256_token_type: second.token_type,
    eddsa_api_status: again.status,
  };
}

const rs = await rsaKey('RSASSA-PKCS1-v1_5', 'rs-1');
const ps = await rsaKey('RSA-PSS', 'ps-1');
say({ jwks: { keys: [rs.jwk, ps.jwk] } });
const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const { issuer, client_id: clientId } = JSON.parse(line);
  try {
    say(await run(issuer, clientId, rs, ps));
  } catch (e) {
    say({ error: `${e?.name}: ${e?.message} ${e?.cause ? JSON.stringify(e.cause) : ''}` });
  }
  break;
}
