import {
  GetSecretValueCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from "@aws-sdk/client-secrets-manager";
import { mockClient } from "aws-sdk-client-mock";

/**
 * Secrets Manager as aws-sdk-client-mock: one secret that GetSecretValue reads, with a new
 * VersionId at each `set` (the operator's write). PutSecretValue is refused as IAM refuses it
 * to every function role: the functions only read the secret.
 */
export function mockSecretStore(initial: Record<string, unknown>) {
  const sm = mockClient(SecretsManagerClient);
  let value = JSON.stringify(initial);
  let version = 1;
  sm.on(GetSecretValueCommand).callsFake(() => ({ SecretString: value, VersionId: `v${version}` }));
  sm.on(PutSecretValueCommand).rejects(
    Object.assign(new Error("not authorized to perform: secretsmanager:PutSecretValue"), {
      name: "AccessDeniedException",
    }),
  );
  return {
    sm,
    current: () => JSON.parse(value) as Record<string, unknown>,
    /** the operator writes a new version */
    set(next: Record<string, unknown>) {
      value = JSON.stringify(next);
      version++;
    },
  };
}
