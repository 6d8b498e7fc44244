import {
  GetSecretValueCommand,
  PutSecretValueCommand,
  ResourceExistsException,
  SecretsManagerClient,
} from "@aws-sdk/client-secrets-manager";
import { mockClient } from "aws-sdk-client-mock";

/**
 * Secrets Manager as aws-sdk-client-mock: one secret that GetSecretValue reads and
 * PutSecretValue replaces, with ClientRequestToken idempotency as AWS has it (the same token
 * with other content is refused), so the token store runs its real code paths.
 */
export function mockSecretStore(initial: Record<string, unknown>) {
  const sm = mockClient(SecretsManagerClient);
  let value = JSON.stringify(initial);
  let version = 1;
  const tokens = new Map<string, string>();
  sm.on(GetSecretValueCommand).callsFake(() => ({ SecretString: value, VersionId: `v${version}` }));
  sm.on(PutSecretValueCommand).callsFake(
    (input: { SecretString?: string; ClientRequestToken?: string }) => {
      const token = input.ClientRequestToken;
      if (token && tokens.has(token) && tokens.get(token) !== input.SecretString) {
        throw new ResourceExistsException({
          message: "You can't modify an existing version.",
          $metadata: {},
        });
      }
      if (token) tokens.set(token, input.SecretString ?? "");
      value = input.SecretString ?? "";
      version++;
      return { VersionId: `v${version}` };
    },
  );
  return {
    sm,
    current: () => JSON.parse(value) as Record<string, unknown>,
    set(next: Record<string, unknown>) {
      value = JSON.stringify(next);
      version++;
    },
  };
}
