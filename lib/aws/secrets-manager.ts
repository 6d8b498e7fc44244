/**
 * The Secrets Manager client and the one command this code base sends, alone in a module:
 * {@link lazySecretsManagerClient} and the secret cache (lib/credentials/secret-cache.ts) load it
 * with `import()` on the first secret read, so a Lambda bundle keeps it in a chunk of its own.
 */
export { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
