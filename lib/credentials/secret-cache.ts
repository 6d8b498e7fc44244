import type { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { awsError } from "../errors";

/** A secret's value as read, with its version (a failed grant blocks only that version). */
export interface ReadSecret<T> {
  value: T;
  versionId: string;
  fetchedAt: number;
}

export interface SecretCacheOptions<T> {
  secretsManager: SecretsManagerClient;
  /** the secret's name or ARN */
  secretId: string;
  /** what the secret is, for errors: "the Zoho secret" */
  what: string;
  /** how long a container trusts its copy (`SECRET_CACHE_TTL_SECONDS`) */
  maxAgeSeconds: number;
  /** the secret's JSON checked (a malformed one is a CONFIGURATION_ERROR naming its fields) */
  parse: (secretString: string | undefined, secretId: string) => T;
  now?: () => number;
}

/**
 * A Secrets Manager secret cached in the container: a rotation is picked up within
 * `maxAgeSeconds`, and callers at the same moment share one GetSecretValue. The one cache of
 * both secrets (the Zoho one and the webhooks'). Not Powertools Parameters' SecretsProvider:
 * its `BaseProvider.get` shares no read in flight (a cold container's concurrent calls would each
 * read), rewraps every failure as `GetParameterError` with the message only (losing the SDK
 * error that AWS_UNAVAILABLE is judged by), and does not return the secret's VersionId, which the
 * token store's grant block is keyed on.
 *
 * @example
 * const webhooks = secretCache({ secretsManager, secretId, what: "the webhook secret", maxAgeSeconds: 300, parse });
 * const { value } = await webhooks.get();
 */
export function secretCache<T>(options: SecretCacheOptions<T>) {
  const { secretsManager, secretId, now = Date.now } = options;
  let cached: ReadSecret<T> | undefined;
  let loading: Promise<ReadSecret<T>> | undefined;

  async function read(): Promise<ReadSecret<T>> {
    const fetchedAt = now();
    let output: { SecretString?: string; VersionId?: string };
    try {
      // the command's module with the client's (a chunk of its own in a Lambda bundle): loaded on
      // the first read, which many containers never make (lib/aws/lazy-secrets-manager.ts)
      const { GetSecretValueCommand } = await import("../aws/secrets-manager");
      output = await secretsManager.send(new GetSecretValueCommand({ SecretId: secretId }));
    } catch (error) {
      throw awsError(error, `read ${options.what} ${secretId} in Secrets Manager`);
    }
    const value = options.parse(output.SecretString, secretId);
    cached = { value, versionId: output.VersionId ?? "", fetchedAt };
    return cached;
  }

  return {
    /** The secret, from the cache unless it is older than `maxAgeSeconds` or `forceFetch`. */
    get(forceFetch = false): Promise<ReadSecret<T>> {
      if (!forceFetch && cached && now() - cached.fetchedAt < options.maxAgeSeconds * 1000) {
        return Promise.resolve(cached);
      }
      loading ??= read().finally(() => {
        loading = undefined;
      });
      return loading;
    },
  };
}
