import { randomBytes, randomUUID } from "node:crypto";
import { AwsError, type Json } from "./protocol";

interface Version {
  value: string;
  createdAt: number;
}

interface Secret {
  name: string;
  arn: string;
  description?: string;
  createdAt: number;
  changedAt: number;
  versions: Map<string, Version>;
  /** staging label → VersionId: AWSCURRENT, and AWSPREVIOUS once a newer value replaced it */
  stages: Map<string, string>;
}

/** An error as Secrets Manager sends it: its model names the message member `Message`. */
export function secretsManagerError(type: string, message: string, status = 400): AwsError {
  return new AwsError(status, { __type: type, Message: message });
}

const seconds = (ms: number) => ms / 1000;

/**
 * Secrets Manager, as much as the service uses: secrets with a string value, versions (a
 * ClientRequestToken is the VersionId, so a retried write is idempotent and the same token
 * with other content is refused, which the token store's lock relies on), and the AWSCURRENT
 * and AWSPREVIOUS labels. No SecretBinary, rotation, deletion or tags.
 */
export class SecretsManager {
  readonly #secrets = new Map<string, Secret>();
  /** GetSecretValue calls per secret name: what the benchmarks report as reads */
  readonly reads = new Map<string, number>();

  constructor(
    readonly region: string,
    readonly accountId: string,
  ) {}

  reset(): void {
    this.#secrets.clear();
    this.reads.clear();
  }

  /** The current value, for tests; not counted as a read. */
  value(nameOrArn: string): string | undefined {
    const secret = this.#find(nameOrArn);
    const current = secret?.stages.get("AWSCURRENT");
    return current === undefined ? undefined : secret?.versions.get(current)?.value;
  }

  handle(operation: string, input: Json): Json {
    switch (operation) {
      case "CreateSecret":
        return this.#create(input);
      case "GetSecretValue":
        return this.#getValue(input);
      case "PutSecretValue":
        return this.#putValue(this.#get(input.SecretId), input);
      case "UpdateSecret":
        return this.#update(this.#get(input.SecretId), input);
      case "DescribeSecret":
        return this.#describe(this.#get(input.SecretId));
      case "ListSecrets":
        return { SecretList: [...this.#secrets.values()].map((secret) => this.#describe(secret)) };
      default:
        throw secretsManagerError(
          "UnknownOperationException",
          `Secrets Manager operation ${operation} is not served by the local endpoint.`,
        );
    }
  }

  #create(input: Json): Json {
    const name = input.Name;
    if (typeof name !== "string" || !/^[\w/+=.@!-]{1,512}$/.test(name)) {
      throw secretsManagerError(
        "ValidationException",
        "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!",
      );
    }
    if (this.#secrets.has(name)) {
      throw secretsManagerError(
        "ResourceExistsException",
        `The operation failed because the secret ${name} already exists.`,
      );
    }
    const now = Date.now();
    const secret: Secret = {
      name,
      arn: `arn:aws:secretsmanager:${this.region}:${this.accountId}:secret:${name}-${randomBytes(3).toString("hex")}`,
      ...(typeof input.Description === "string" ? { description: input.Description } : {}),
      createdAt: now,
      changedAt: now,
      versions: new Map(),
      stages: new Map(),
    };
    this.#secrets.set(name, secret);
    const value = secretString(input);
    const versionId = value === undefined ? undefined : this.#addVersion(secret, value, input);
    return { ARN: secret.arn, Name: name, ...(versionId ? { VersionId: versionId } : {}) };
  }

  #getValue(input: Json): Json {
    const secret = this.#get(input.SecretId);
    this.reads.set(secret.name, (this.reads.get(secret.name) ?? 0) + 1);
    const stage = typeof input.VersionStage === "string" ? input.VersionStage : undefined;
    const versionId =
      typeof input.VersionId === "string"
        ? input.VersionId
        : secret.stages.get(stage ?? "AWSCURRENT");
    if (stage !== undefined && secret.stages.get(stage) !== versionId) {
      throw secretsManagerError(
        "InvalidRequestException",
        "You provided a VersionStage that is not associated to the provided VersionId.",
      );
    }
    const version = versionId === undefined ? undefined : secret.versions.get(versionId);
    if (versionId === undefined || version === undefined) {
      throw secretsManagerError(
        "ResourceNotFoundException",
        typeof input.VersionId === "string"
          ? `Secrets Manager can't find the specified secret value for VersionId: ${input.VersionId}`
          : `Secrets Manager can't find the specified secret value for staging label: ${stage ?? "AWSCURRENT"}`,
      );
    }
    return {
      ARN: secret.arn,
      Name: secret.name,
      VersionId: versionId,
      SecretString: version.value,
      VersionStages: stagesOf(secret, versionId),
      CreatedDate: seconds(version.createdAt),
    };
  }

  #putValue(secret: Secret, input: Json): Json {
    const value = secretString(input);
    if (value === undefined) {
      throw secretsManagerError("InvalidParameterException", "You must provide a SecretString.");
    }
    const versionId = this.#addVersion(secret, value, input);
    return {
      ARN: secret.arn,
      Name: secret.name,
      VersionId: versionId,
      VersionStages: stagesOf(secret, versionId),
    };
  }

  #update(secret: Secret, input: Json): Json {
    if (typeof input.Description === "string") {
      secret.description = input.Description;
      secret.changedAt = Date.now();
    }
    const value = secretString(input);
    const versionId = value === undefined ? undefined : this.#addVersion(secret, value, input);
    return { ARN: secret.arn, Name: secret.name, ...(versionId ? { VersionId: versionId } : {}) };
  }

  /**
   * A new version labelled AWSCURRENT (the one it replaces becomes AWSPREVIOUS). Its id is the
   * ClientRequestToken: the same token again with the same value changes nothing, as a
   * retried request must; with another value it is refused.
   */
  #addVersion(secret: Secret, value: string, input: Json): string {
    const versionId =
      typeof input.ClientRequestToken === "string" ? input.ClientRequestToken : randomUUID();
    const existing = secret.versions.get(versionId);
    if (existing !== undefined) {
      if (existing.value === value) return versionId;
      throw secretsManagerError(
        "ResourceExistsException",
        "You can't modify an existing version, you can only create a new version.",
      );
    }
    const now = Date.now();
    secret.versions.set(versionId, { value, createdAt: now });
    const current = secret.stages.get("AWSCURRENT");
    if (current !== undefined) secret.stages.set("AWSPREVIOUS", current);
    secret.stages.set("AWSCURRENT", versionId);
    secret.changedAt = now;
    return versionId;
  }

  #describe(secret: Secret): Json {
    const labelled = new Set(secret.stages.values());
    return {
      ARN: secret.arn,
      Name: secret.name,
      ...(secret.description === undefined ? {} : { Description: secret.description }),
      CreatedDate: seconds(secret.createdAt),
      LastChangedDate: seconds(secret.changedAt),
      VersionIdsToStages: Object.fromEntries(
        [...labelled].map((versionId) => [versionId, stagesOf(secret, versionId)]),
      ),
    };
  }

  /** By name, by ARN, or by the ARN without its random suffix, as Secrets Manager accepts. */
  #find(id: unknown): Secret | undefined {
    if (typeof id !== "string") return undefined;
    return (
      this.#secrets.get(id) ??
      [...this.#secrets.values()].find(
        (secret) => secret.arn === id || secret.arn.slice(0, -"-abcdef".length) === id,
      )
    );
  }

  #get(id: unknown): Secret {
    const secret = this.#find(id);
    if (!secret) {
      throw secretsManagerError(
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret.",
      );
    }
    return secret;
  }
}

function stagesOf(secret: Secret, versionId: string): string[] {
  return [...secret.stages].filter(([, id]) => id === versionId).map(([stage]) => stage);
}

/** The request's SecretString; SecretBinary is refused rather than silently dropped. */
function secretString(input: Json): string | undefined {
  if (input.SecretBinary !== undefined) {
    throw secretsManagerError(
      "InvalidParameterException",
      "SecretBinary is not served by the local endpoint; use SecretString.",
    );
  }
  return typeof input.SecretString === "string" ? input.SecretString : undefined;
}
