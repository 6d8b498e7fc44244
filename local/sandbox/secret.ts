import { SANDBOX_CREDENTIALS } from "./seed";
import type { Sandbox } from "./types";

/** The secret an operator writes for a deployment against the sandbox (the token lives in the ledger). */
export function sandboxSecret(sandbox: Sandbox): Record<string, unknown> {
  return {
    client_id: SANDBOX_CREDENTIALS.client_id,
    client_secret: SANDBOX_CREDENTIALS.client_secret,
    refresh_token: SANDBOX_CREDENTIALS.refresh_token,
    accounts_url: sandbox.url,
    organization_id: SANDBOX_CREDENTIALS.organization_id,
  };
}
