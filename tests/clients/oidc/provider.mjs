// A real authorization server for tests/tests/auth.rs: panva's oidc-provider (a certified
// OpenID provider) on 127.0.0.1:<port>, with fresh signing keys per run.
//
//   node provider.mjs <port> <resource URI>
//
// Clients (all client_credentials, secret = "<client_id>-secret", scopes "mcp:tools other"):
//   mcp-client  RS256 JWT access tokens, 300 s
//   mcp-es256   ES256 JWT access tokens
//   mcp-short   RS256 JWT access tokens living 1 s (the expiry test)
//   mcp-opaque  opaque access tokens (checked through introspection)
//   gateway     no grants; authenticates the gateway at the introspection endpoint
// A token asked for with `resource=<R>` carries `aud` = R, whatever R is, so a test can get
// a token for another resource. Tokens carry a `groups` claim: mcp-client is in "eng",
// mcp-es256 in "ops" (policy tests tell the two principals apart by it).
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

const [port, resource] = process.argv.slice(2);
if (!port || !resource) {
  console.error('usage: node provider.mjs <port> <resource URI>');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;
const id = randomBytes(4).toString('hex');
const key = (type, options, alg) => ({
  ...generateKeyPairSync(type, options).privateKey.export({ format: 'jwk' }),
  kid: `${alg}-${id}`,
  alg,
  use: 'sig',
});

const scope = 'mcp:tools other';
const client = (client_id, grant_types = ['client_credentials']) => ({
  client_id,
  client_secret: `${client_id}-secret`,
  grant_types,
  redirect_uris: [],
  response_types: [],
  scope,
});

const groups = { 'mcp-client': ['eng'], 'mcp-es256': ['ops'] };

const provider = new Provider(issuer, {
  extraTokenClaims: (ctx, token) => ({ groups: groups[token.clientId] ?? [] }),
  scopes: ['openid', 'offline_access', 'mcp:tools', 'other'],
  clients: ['mcp-client', 'mcp-es256', 'mcp-short', 'mcp-opaque'].map((c) => client(c)).concat([client('gateway', [])]),
  jwks: {
    keys: [
      key('rsa', { modulusLength: 2048 }, 'RS256'),
      key('ec', { namedCurve: 'P-256' }, 'ES256'),
    ],
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, indicator, c) => {
        const info = { scope, audience: indicator, accessTokenTTL: 300, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } };
        switch (c.clientId) {
          case 'mcp-es256': return { ...info, jwt: { sign: { alg: 'ES256' } } };
          case 'mcp-short': return { ...info, accessTokenTTL: 1 };
          case 'mcp-opaque': return { scope, audience: indicator, accessTokenTTL: 300, accessTokenFormat: 'opaque' };
          default: return info;
        }
      },
    },
  },
});
provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`oidc-provider ready at ${issuer}`);
});
