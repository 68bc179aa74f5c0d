// A real OpenID Connect provider (node `oidc-provider`) on loopback for the sign-in tests.
// Its development interactions give a log-in form (any password) and a consent page.
// Environment: PORT, ISSUER (default http://127.0.0.1:PORT), CLIENT_ID, CLIENT_SECRET,
// REDIRECT_URI, ACCOUNTS (JSON: login → claims; a login not listed gets
// {email: login@corp.example}).
import Provider from "oidc-provider";

const port = Number(process.env.PORT);
const issuer = process.env.ISSUER || `http://127.0.0.1:${port}`;
const accounts = JSON.parse(process.env.ACCOUNTS || "{}");

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: process.env.CLIENT_ID,
      client_secret: process.env.CLIENT_SECRET,
      redirect_uris: [process.env.REDIRECT_URI],
      response_types: ["code"],
      grant_types: ["authorization_code"],
      token_endpoint_auth_method: "client_secret_post",
    },
  ],
  scopes: ["openid", "email", "profile", "groups"],
  claims: {
    openid: ["sub"],
    email: ["email", "email_verified"],
    profile: ["name", "preferred_username"],
    groups: ["groups"],
  },
  async findAccount(ctx, id) {
    const claims = accounts[id] ?? { email: `${id}@corp.example` };
    return {
      accountId: id,
      async claims() {
        return { sub: id, preferred_username: id, ...claims };
      },
    };
  },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ["flowgate-test-only"] },
});
provider.proxy = false;
provider.listen(port, "127.0.0.1", () => console.log(`oidc provider at ${issuer}`));
