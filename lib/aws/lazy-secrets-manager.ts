import type { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { lazyClient } from "./lazy-client";

/**
 * A Secrets Manager client whose SDK module is loaded, and the client created, on its first
 * `send`. A container reads the Zoho secret only to grant a token (none usable in the ledger) or
 * for the default `organization_id`, and the webhook secret only on a webhook: the token refresh
 * finding a fresh token, a job naming its organization and `GET /activations/{job_id}` read none.
 * In a Lambda bundle the client's code is then a chunk parsed only on that first read
 * (docs/performance.md, "Cold start"). It serves what the secret cache calls (`send`) and
 * `destroy()`.
 */
export function lazySecretsManagerClient(): SecretsManagerClient {
  return lazyClient(() =>
    import("./secrets-manager").then(({ SecretsManagerClient }) => new SecretsManagerClient({})),
  );
}
