import { SANDBOX_CREDENTIALS } from "./seed";
import type { Sandbox } from "./types";

/** The secret a deployment against the sandbox holds; `fresh` adds a live access token. */
export function sandboxSecret(
  sandbox: Sandbox,
  options: { fresh?: boolean } = {},
): Record<string, unknown> {
  const base = {
    client_id: SANDBOX_CREDENTIALS.client_id,
    client_secret: SANDBOX_CREDENTIALS.client_secret,
    refresh_token: SANDBOX_CREDENTIALS.refresh_token,
    accounts_url: sandbox.url,
    organization_id: SANDBOX_CREDENTIALS.organization_id,
  };
  if (!options.fresh) return base;
  const token = sandbox.issueToken();
  return {
    ...base,
    access_token: token.access_token,
    api_domain: sandbox.url,
    access_token_expires_at: new Date(Date.now() + token.expires_in * 1000).toISOString(),
  };
}
