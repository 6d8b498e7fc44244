import { randomBytes, randomUUID } from "node:crypto";
import { AwsError, type Json } from "./protocol";

interface Secret {
  name: string;
  arn: string;
  description?: string;
  createdAt: number;
  /** versions by id; the current one is `current` */
  versions: Map<string, string>;
  current: string;
}

/**
 * Secrets Manager, as much as the service uses: CreateSecret, GetSecretValue, PutSecretValue
 * (with ClientRequestToken idempotency: the same token with other content is refused, which
 * the token store relies on), DescribeSecret, UpdateSecret, ListSecrets.
 */
export class SecretsManager {
  readonly #secrets = new Map<string, Secret>();
  /** GetSecretValue calls per secret name */
  readonly reads = new Map<string, number>();

  constructor(
    readonly region: string,
    readonly account: string,
  ) {}

  reset(): void {
    this.#secrets.clear();
    this.reads.clear();
  }

  value(nameOrArn: string): string | undefined {
    const secret = this.#find(nameOrArn);
    return secret?.versions.get(secret.current);
  }

  handle(operation: string, input: Json): Json {
    switch (operation) {
      case "CreateSecret": {
        const name = String(input.Name ?? "");
        if (!name) throw new AwsError("InvalidParameterException", "Name is required.");
        if (this.#secrets.has(name))
          throw new AwsError("ResourceExistsException", `The secret ${name} already exists.`);
        const versionId = String(input.ClientRequestToken ?? randomUUID());
        const secret: Secret = {
          name,
          arn: `arn:aws:secretsmanager:${this.region}:${this.account}:secret:${name}-${randomBytes(3).toString("hex")}`,
          ...(typeof input.Description === "string" ? { description: input.Description } : {}),
          createdAt: Date.now(),
          versions: new Map([[versionId, String(input.SecretString ?? "")]]),
          current: versionId,
        };
        this.#secrets.set(name, secret);
        return { ARN: secret.arn, Name: name, VersionId: versionId };
      }
      case "GetSecretValue": {
        const secret = this.#get(input.SecretId);
        this.reads.set(secret.name, (this.reads.get(secret.name) ?? 0) + 1);
        const versionId = typeof input.VersionId === "string" ? input.VersionId : secret.current;
        const value = secret.versions.get(versionId);
        if (value === undefined)
          throw new AwsError("ResourceNotFoundException", "No such version.");
        return {
          ARN: secret.arn,
          Name: secret.name,
          VersionId: versionId,
          SecretString: value,
          VersionStages: versionId === secret.current ? ["AWSCURRENT"] : [],
          CreatedDate: secret.createdAt / 1000,
        };
      }
      case "PutSecretValue":
      case "UpdateSecret": {
        const secret = this.#get(input.SecretId);
        const value = String(input.SecretString ?? "");
        const versionId = String(input.ClientRequestToken ?? randomUUID());
        const existing = secret.versions.get(versionId);
        if (existing !== undefined && existing !== value) {
          throw new AwsError(
            "ResourceExistsException",
            "You can't modify an existing version, you can only create a new version.",
          );
        }
        secret.versions.set(versionId, value);
        secret.current = versionId;
        return {
          ARN: secret.arn,
          Name: secret.name,
          VersionId: versionId,
          VersionStages: ["AWSCURRENT"],
        };
      }
      case "DescribeSecret": {
        const secret = this.#get(input.SecretId);
        return {
          ARN: secret.arn,
          Name: secret.name,
          ...(secret.description ? { Description: secret.description } : {}),
          CreatedDate: secret.createdAt / 1000,
          VersionIdsToStages: { [secret.current]: ["AWSCURRENT"] },
        };
      }
      case "ListSecrets":
        return {
          SecretList: [...this.#secrets.values()].map((s) => ({ ARN: s.arn, Name: s.name })),
        };
      default:
        throw new AwsError(
          "UnknownOperationException",
          `Secrets Manager operation ${operation} is not supported here.`,
        );
    }
  }

  #find(id: unknown): Secret | undefined {
    const key = String(id ?? "");
    return this.#secrets.get(key) ?? [...this.#secrets.values()].find((s) => s.arn === key);
  }

  #get(id: unknown): Secret {
    const secret = this.#find(id);
    if (!secret)
      throw new AwsError(
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret.",
      );
    return secret;
  }
}
