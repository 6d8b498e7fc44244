import { randomUUID } from "node:crypto";
import { type AttributeValue, DynamoDBClient, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import type { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { lazySecretsManagerClient } from "../aws/lazy-secrets-manager";
import { type Config, ENV_DEFAULTS } from "../config";
import { type ErrorCode, ServiceError } from "../errors";
import { getLedgerItem, isConditionFailed, ledgerError, num, str } from "../ledger/dynamo";
import { ledgerKeys } from "../ledger/keys";
import { logger } from "../observability";
import { type AccessToken, grantAccessToken } from "../zoho/accounts";
import { parseSecret, type ZohoSecret } from "./secret";
import { type ReadSecret, secretCache } from "./secret-cache";

export interface TokenStoreOptions {
  /** name or ARN of the secret (`ZOHO_SECRET_ID`): read only, never written */
  secretId: string;
  secretsManager: SecretsManagerClient;
  /** the ledger table (`ZOHO_LEDGER_TABLE`) that holds the shared access token */
  dynamo: DynamoDBClient;
  table: string;
  /** how long a container trusts its cached copy of the secret (`SECRET_CACHE_TTL_SECONDS`); default 300 */
  cacheTtlSeconds?: number;
  /** a stored token with less than this left is treated as expired; default 300 */
  expiryMarginSeconds?: number;
  /** timeout of a token grant (`ZOHO_HTTP_TIMEOUT_MS`); default 10000 */
  timeoutMs?: number;
  /** how often a container looks at the ledger while another one grants; default 500 */
  pollIntervalMs?: number;
  /** after Zoho refused a grant, no container asks again for this long (Zoho's block lasts 10 minutes); default 600 */
  refusalBackoffSeconds?: number;
  /** after the accounts server failed (5xx, timeout), no container asks again for this long; default 60 */
  unavailableBackoffSeconds?: number;
  /** a token refused by Zoho within this long of its grant is not replaced (scope missing, revoked); default 300 */
  recoveryIntervalSeconds?: number;
  now?: () => number;
  fetch?: typeof fetch;
}

const DEFAULTS = {
  cacheTtlSeconds: ENV_DEFAULTS.SECRET_CACHE_TTL_SECONDS,
  expiryMarginSeconds: 300,
  timeoutMs: ENV_DEFAULTS.ZOHO_HTTP_TIMEOUT_MS,
  pollIntervalMs: 500,
  refusalBackoffSeconds: ENV_DEFAULTS.ZOHO_GRANT_REFUSED_BACKOFF_SECONDS,
  unavailableBackoffSeconds: ENV_DEFAULTS.ZOHO_GRANT_RETRY_SECONDS,
  recoveryIntervalSeconds: 300,
};

/** A grant refused for the token's scopes waits for the operator to change the secret. */
const UNTIL_SECRET_CHANGES_SECONDS = 86_400;

/** The secret as read, with its version: a failed grant blocks only that version. */
type LoadedSecret = ReadSecret<ZohoSecret>;

/** The connection's item in the ledger, as read. */
interface StoredToken {
  token: (AccessToken & { grantedAt: number; version: number }) | undefined;
  leaseUntil: number;
  block: { until: number; code: ErrorCode; message: string; secretVersion: string } | undefined;
}

/**
 * Zoho OAuth tokens for one connection (one secret), shared by every container through the
 * ledger table. The secret holds only what the operator writes and is only read. The access
 * token lives in the ledger; a container that needs a new one takes the grant lease (a
 * conditional write), so exactly one grants at a time while the others wait for its token.
 * After a failed grant, every container backs off until the back-off ends or the operator
 * changes the secret. This keeps the service inside Zoho's limit of about ten grants per
 * refresh token in ten minutes, however many containers run.
 *
 * @example
 * const tokens = new TokenStore({ secretId, secretsManager: new SecretsManagerClient({}), dynamo: new DynamoDBClient({}), table });
 * const { accessToken, apiDomain } = await tokens.getAccessToken();
 */
export class TokenStore {
  readonly #options: Required<Omit<TokenStoreOptions, "fetch">> & Pick<TokenStoreOptions, "fetch">;
  readonly #secret: ReturnType<typeof secretCache<ZohoSecret>>;
  /** the container's copy of the ledger's token: a call needs no ledger read while it is usable */
  #token: (AccessToken & { grantedAt: number }) | undefined;
  #refreshing: Promise<AccessToken> | undefined;
  readonly #key: Record<string, AttributeValue>;

  constructor(options: TokenStoreOptions) {
    this.#options = { ...DEFAULTS, now: () => Date.now(), ...options };
    this.#key = ledgerKeys.token(options.secretId);
    this.#secret = secretCache({
      secretsManager: options.secretsManager,
      secretId: options.secretId,
      what: "the Zoho secret",
      maxAgeSeconds: this.#options.cacheTtlSeconds,
      parse: parseSecret,
      now: this.#options.now,
    });
  }

  /** The secret, from the container's cache unless it is older than the TTL or `forceFetch`. */
  async getSecret(options: { forceFetch?: boolean } = {}): Promise<ZohoSecret> {
    return (await this.#load(options.forceFetch ?? false)).value;
  }

  /** A usable access token: the container's copy, else the ledger's, else a new grant. */
  async getAccessToken(): Promise<AccessToken> {
    if (this.#usable(this.#token)) return this.#token as AccessToken;
    const stored = await this.#read();
    if (this.#usable(stored.token))
      return this.#keep(stored.token as AccessToken & { grantedAt: number });
    return this.#refresh(stored.token?.accessToken);
  }

  /**
   * Called when Zoho refused `rejected`: uses a newer token from the ledger if there is one,
   * else grants a new one, unless the refused token is itself fresh (then the grant lacks a
   * scope or was revoked, and another grant would only spend Zoho's grant quota).
   */
  async replaceRejectedToken(rejected: string): Promise<AccessToken> {
    this.#token = undefined;
    const stored = await this.#read();
    const current = stored.token;
    if (current && current.accessToken !== rejected && this.#usable(current))
      return this.#keep(current);
    if (current?.accessToken === rejected) {
      const age = this.#options.now() - current.grantedAt;
      if (age < this.#options.recoveryIntervalSeconds * 1000) {
        throw new ServiceError(
          "ZOHO_UNAUTHORIZED",
          "Zoho refused a freshly granted access token: the grant lacks the ZohoBooks.contacts.CREATE/UPDATE/READ scopes, was revoked, or belongs to another data center. Generate a refresh token with those scopes.",
        );
      }
    }
    return this.#refresh(rejected);
  }

  /**
   * For the scheduled refresher: grants a new token when the stored one has less than
   * `marginSeconds` left, so a run while the token is fresh costs no grant.
   */
  async refreshIfExpiringWithin(
    marginSeconds: number,
  ): Promise<{ refreshed: boolean; expiresAt: number }> {
    const stored = await this.#read();
    const token = stored.token;
    if (token && token.expiresAt - this.#options.now() > marginSeconds * 1000) {
      this.#keep(token);
      return { refreshed: false, expiresAt: token.expiresAt };
    }
    const granted = await this.#refresh(token?.accessToken, marginSeconds);
    return { refreshed: true, expiresAt: granted.expiresAt };
  }

  /** One refresh at a time per container; across containers, the ledger's lease. */
  #refresh(stale: string | undefined, marginSeconds?: number): Promise<AccessToken> {
    this.#refreshing ??= this.#refreshShared(stale, marginSeconds).finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  async #refreshShared(stale: string | undefined, marginSeconds?: number): Promise<AccessToken> {
    // Real time, so the wait ends whatever the injected clock does.
    const deadline = Date.now() + this.#leaseSeconds() * 2000;
    // a token another container stored that can stand in for the stale one
    const replaces = (token: StoredToken["token"]) =>
      token &&
      token.accessToken !== stale &&
      this.#usable(token) &&
      (marginSeconds === undefined || token.expiresAt - this.#options.now() > marginSeconds * 1000);
    for (;;) {
      const stored = await this.#read();
      if (replaces(stored.token))
        return this.#keep(stored.token as NonNullable<StoredToken["token"]>);
      const loaded = await this.#load(false);
      const now = this.#options.now();
      const block = stored.block;
      if (block && block.until > now && block.secretVersion === loaded.versionId) {
        // A new secret version (the operator's fix, seen within the cache TTL) lifts the block.
        // An accounts server that was down is waited for (it costs a job no attempt); a refusal
        // is the operator's to mend, so it fails as itself.
        throw new ServiceError(
          block.code === "ZOHO_UNAVAILABLE" ? "ZOHO_ACCOUNTS_BACKOFF" : block.code,
          `${block.message} No new grant is asked for until ${new Date(block.until).toISOString()} or until the secret changes.`,
          { retryAfterSeconds: Math.ceil((block.until - now) / 1000) },
        );
      }
      if (stored.leaseUntil <= now || Date.now() > deadline) {
        const holder = await this.#claim(stored, loaded.versionId);
        if (holder) return this.#grantAndStore(loaded, holder);
      }
      await sleep(this.#options.pollIntervalMs);
    }
  }

  /** Takes the grant lease; undefined if another container holds it or stored a token meanwhile. */
  async #claim(stored: StoredToken, secretVersion: string): Promise<string | undefined> {
    const holder = randomUUID();
    const now = this.#options.now();
    try {
      await this.#options.dynamo.send(
        new UpdateItemCommand({
          TableName: this.#options.table,
          Key: this.#key,
          UpdateExpression: "SET lease_holder = :holder, lease_until = :until",
          ConditionExpression:
            "(attribute_not_exists(lease_until) OR lease_until <= :now) AND (attribute_not_exists(token_version) OR token_version = :seen) AND (attribute_not_exists(blocked_until) OR blocked_until <= :now OR block_version <> :secretVersion)",
          ExpressionAttributeValues: {
            ":holder": { S: holder },
            ":until": { N: String(now + this.#leaseSeconds() * 1000) },
            ":now": { N: String(now) },
            ":seen": { N: String(stored.token?.version ?? 0) },
            ":secretVersion": { S: secretVersion },
          },
        }),
      );
      return holder;
    } catch (error) {
      if (isConditionFailed(error)) return undefined;
      throw ledgerError(error, this.#options.table);
    }
  }

  async #grantAndStore(loaded: LoadedSecret, holder: string): Promise<AccessToken> {
    let token: AccessToken;
    try {
      token = await grantAccessToken(loaded.value, this.#options);
    } catch (error) {
      await this.#block(error, loaded.versionId, holder);
      throw error;
    }
    const now = this.#options.now();
    await this.#options.dynamo
      .send(
        new UpdateItemCommand({
          TableName: this.#options.table,
          Key: this.#key,
          UpdateExpression:
            "SET access_token = :token, api_domain = :domain, token_expires_at = :expires, granted_at = :now, expires_at = :ttl, token_scope = :scope ADD token_version :one REMOVE lease_holder, lease_until, blocked_until, block_code, block_message, block_version",
          ExpressionAttributeValues: {
            ":token": { S: token.accessToken },
            // the grant's scope, so a CRM sync can name a missing CRM scope before its first call
            ":scope": { S: token.scope ?? "" },
            ":domain": { S: token.apiDomain },
            ":expires": { N: String(token.expiresAt) },
            ":now": { N: String(now) },
            ":ttl": { N: String(Math.ceil(token.expiresAt / 1000) + 86_400) },
            ":one": { N: "1" },
          },
        }),
      )
      .catch((error: unknown) => {
        // The token works even if it could not be stored; the lease expires on its own.
        logger.warn("Could not store the new Zoho access token in the ledger", {
          holder,
          error: (error as Error).name,
        });
      });
    logger.info("Granted a new Zoho access token", {
      expiresAt: new Date(token.expiresAt).toISOString(),
      apiDomain: token.apiDomain,
    });
    return this.#keep({ ...token, grantedAt: now });
  }

  /** After a failed grant, every container backs off: for a while, or until the secret changes. */
  async #block(error: unknown, secretVersion: string, holder: string): Promise<void> {
    const failure = error instanceof ServiceError ? error : undefined;
    const seconds =
      failure?.code === "ZOHO_UNAUTHORIZED"
        ? UNTIL_SECRET_CHANGES_SECONDS
        : failure?.code === "ZOHO_AUTH_FAILED"
          ? this.#options.refusalBackoffSeconds
          : this.#options.unavailableBackoffSeconds;
    const until = this.#options.now() + seconds * 1000;
    await this.#options.dynamo
      .send(
        new UpdateItemCommand({
          TableName: this.#options.table,
          Key: this.#key,
          UpdateExpression:
            "SET blocked_until = :until, block_code = :code, block_message = :message, block_version = :version, expires_at = if_not_exists(expires_at, :ttl) REMOVE lease_holder, lease_until",
          ConditionExpression: "lease_holder = :holder",
          ExpressionAttributeValues: {
            ":until": { N: String(until) },
            ":code": { S: failure?.code ?? "ZOHO_UNAVAILABLE" },
            ":message": { S: failure?.message ?? "The Zoho token grant failed." },
            ":version": { S: secretVersion },
            ":holder": { S: holder },
            ":ttl": { N: String(Math.ceil(until / 1000) + 86_400) },
          },
        }),
      )
      .catch((writeError: unknown) => {
        logger.warn("Could not record the failed token grant in the ledger", {
          error: (writeError as Error).name,
        });
      });
    logger.warn(
      "Zoho token grant failed; no container asks again until the back-off ends or the secret changes",
      {
        code: failure?.code,
        backoffSeconds: seconds,
      },
    );
  }

  async #read(): Promise<StoredToken> {
    const item = await getLedgerItem(this.#options.dynamo, this.#options.table, this.#key);
    const accessToken = str(item?.access_token);
    const apiDomain = str(item?.api_domain);
    const scope = str(item?.token_scope);
    const blockCode = str(item?.block_code) as ErrorCode | undefined;
    return {
      token:
        accessToken && apiDomain
          ? {
              accessToken,
              apiDomain,
              expiresAt: num(item?.token_expires_at),
              grantedAt: num(item?.granted_at),
              version: num(item?.token_version),
              // "" is a grant that answered no scope; absent, a token stored before scopes were kept
              ...(scope ? { scope } : {}),
            }
          : undefined,
      leaseUntil: num(item?.lease_until),
      block: blockCode
        ? {
            until: num(item?.blocked_until),
            code: blockCode,
            message: str(item?.block_message) ?? "The Zoho token grant failed.",
            secretVersion: str(item?.block_version) ?? "",
          }
        : undefined,
    };
  }

  #keep(token: AccessToken & { grantedAt: number }): AccessToken {
    this.#token = {
      accessToken: token.accessToken,
      apiDomain: token.apiDomain,
      expiresAt: token.expiresAt,
      grantedAt: token.grantedAt,
      ...(token.scope ? { scope: token.scope } : {}),
    };
    return this.#token;
  }

  #usable(token: AccessToken | undefined): boolean {
    return (
      token !== undefined &&
      token.expiresAt - this.#options.now() > this.#options.expiryMarginSeconds * 1000
    );
  }

  #load(forceFetch: boolean): Promise<LoadedSecret> {
    return this.#secret.get(forceFetch);
  }

  /** Long enough for one grant, including its timeout. */
  #leaseSeconds(): number {
    return Math.ceil(this.#options.timeoutMs / 1000) + 5;
  }
}

/** The token store a function gets from its environment. */
export function tokenStoreFromConfig(
  config: Config,
  dynamo: DynamoDBClient = new DynamoDBClient({}),
): TokenStore {
  return new TokenStore({
    secretId: config.ZOHO_SECRET_ID,
    secretsManager: lazySecretsManagerClient(),
    dynamo,
    table: config.ZOHO_LEDGER_TABLE,
    cacheTtlSeconds: config.SECRET_CACHE_TTL_SECONDS,
    timeoutMs: config.ZOHO_HTTP_TIMEOUT_MS,
    unavailableBackoffSeconds: config.ZOHO_GRANT_RETRY_SECONDS,
    refusalBackoffSeconds: config.ZOHO_GRANT_REFUSED_BACKOFF_SECONDS,
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
