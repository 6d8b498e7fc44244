import { createHash, randomUUID } from "node:crypto";
import {
  GetSecretValueCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from "@aws-sdk/client-secrets-manager";
import type { Config } from "../config";
import { ServiceError } from "../errors";
import { logger } from "../observability";
import { type GrantedToken, grantAccessToken } from "../zoho/accounts";
import { parseSecret, type ZohoSecret } from "./secret";

export interface TokenStoreOptions {
  /** name or ARN of the secret (`ZOHO_SECRET_ID`) */
  secretId: string;
  secretsManager: SecretsManagerClient;
  /** how long a container trusts its cached copy of the secret (`SECRET_CACHE_TTL_SECONDS`); default 300 */
  cacheTtlSeconds?: number;
  /** a stored token with less than this left is treated as expired; default 300 */
  expiryMarginSeconds?: number;
  /** timeout of a token grant (`ZOHO_HTTP_TIMEOUT_MS`); default 10000 */
  timeoutMs?: number;
  /** how often a container polls the secret while another one refreshes; default 500 */
  pollIntervalMs?: number;
  /** after Zoho refused a grant, no new grant from this container for this long; default 60 */
  refusalBackoffSeconds?: number;
  /** at most one refresh this long because Zoho refused an access token; default 300 */
  recoveryIntervalSeconds?: number;
  now?: () => number;
  fetch?: typeof fetch;
}

const DEFAULTS = {
  cacheTtlSeconds: 300,
  expiryMarginSeconds: 300,
  timeoutMs: 10_000,
  pollIntervalMs: 500,
  /** after Zoho refused a grant, this container does not ask again for this long */
  refusalBackoffSeconds: 60,
  recoveryIntervalSeconds: 300,
};

/** The secret as read, with what is needed to write it back without losing anything. */
interface LoadedSecret {
  secret: ZohoSecret;
  versionId: string | undefined;
  fetchedAt: number;
}

/** Written into the secret while one container refreshes, so the others wait instead of granting. */
interface RefreshLock {
  holder: string;
  until: string;
}

export type AccessToken = GrantedToken;

/**
 * Zoho OAuth tokens kept in one Secrets Manager secret and shared by every container.
 *
 * The stored access token is used until a few minutes before it expires; a refresh happens
 * only when it must, at most one at a time per container, and across containers through a
 * lock version of the secret (PutSecretValue with a ClientRequestToken derived from the version
 * being replaced succeeds for one writer only). This keeps the service far inside Zoho's limit of
 * about ten grants per refresh token in ten minutes, however many containers start at once.
 *
 * @example
 * const tokens = new TokenStore({ secretId: process.env.ZOHO_SECRET_ID, secretsManager: new SecretsManagerClient({}) });
 * const { accessToken, apiDomain } = await tokens.getAccessToken();
 */
export class TokenStore {
  readonly #options: Required<Omit<TokenStoreOptions, "fetch">> & Pick<TokenStoreOptions, "fetch">;
  #cached: LoadedSecret | undefined;
  /** the read in flight: callers at the same moment share one GetSecretValue */
  #loading: Promise<LoadedSecret> | undefined;
  #refreshing: Promise<AccessToken> | undefined;
  /** when this container last refreshed because Zoho refused a token */
  #recoveredAt: number | undefined;
  /** the last refusal of the token endpoint, replayed until the back-off ends */
  #refusal: { error: ServiceError; until: number } | undefined;

  constructor(options: TokenStoreOptions) {
    this.#options = { ...DEFAULTS, now: () => Date.now(), ...options };
  }

  /** The secret, from the container's cache unless it is older than the TTL or `forceFetch`. */
  async getSecret(options: { forceFetch?: boolean } = {}): Promise<ZohoSecret> {
    return (await this.#load(options.forceFetch ?? false)).secret;
  }

  /** A usable access token: the stored one while it has time left, else a refreshed one. */
  async getAccessToken(): Promise<AccessToken> {
    const stored = this.#usableToken((await this.#load(false)).secret);
    return stored ?? this.#refresh(undefined);
  }

  /**
   * Called when Zoho refused `rejected`: reloads the secret (another container may have
   * refreshed already) and refreshes only if the stored token is still the rejected one.
   */
  async replaceRejectedToken(rejected: string): Promise<AccessToken> {
    const stored = this.#usableToken((await this.#load(true)).secret);
    if (stored && stored.accessToken !== rejected) return stored;
    // A token refused right after a refresh is not an expired one (a scope is missing, or the
    // grant was revoked): another grant would not help and would eat Zoho's grant quota.
    const now = this.#options.now();
    if (
      this.#recoveredAt !== undefined &&
      now - this.#recoveredAt < this.#options.recoveryIntervalSeconds * 1000
    ) {
      throw new ServiceError(
        "ZOHO_UNAUTHORIZED",
        "Zoho refused a freshly granted access token: the grant lacks the ZohoBooks.contacts.CREATE/UPDATE/READ scopes or was revoked. Generate a refresh token with those scopes.",
      );
    }
    this.#recoveredAt = now;
    return this.#refresh(rejected);
  }

  /**
   * For the scheduled refresher: refreshes when the stored token has less than `marginSeconds`
   * left, so a run while the token is fresh costs no grant.
   */
  async refreshIfExpiringWithin(
    marginSeconds: number,
  ): Promise<{ refreshed: boolean; expiresAt: number }> {
    const { secret } = await this.#load(true);
    const stored = this.#storedToken(secret);
    if (stored && stored.expiresAt - this.#options.now() > marginSeconds * 1000) {
      return { refreshed: false, expiresAt: stored.expiresAt };
    }
    const token = await this.#refresh(stored?.accessToken);
    return { refreshed: true, expiresAt: token.expiresAt };
  }

  #refresh(stale: string | undefined): Promise<AccessToken> {
    // A revoked refresh token stays revoked: asking again per job would only burn Zoho's grant quota.
    if (this.#refusal && this.#refusal.until > this.#options.now()) {
      return Promise.reject(this.#refusal.error);
    }
    this.#refreshing ??= this.#refreshShared(stale).finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  async #refreshShared(stale: string | undefined): Promise<AccessToken> {
    const deadline = this.#options.now() + this.#lockSeconds() * 1000 * 2;
    for (;;) {
      const current = await this.#load(true);
      const stored = this.#usableToken(current.secret);
      if (stored && stored.accessToken !== stale) return stored; // someone else refreshed
      const lock = readLock(current.secret);
      const lockedByOther = lock && Date.parse(lock.until) > this.#options.now();
      if (!lockedByOther || this.#options.now() > deadline) {
        const holder = await this.#claim(current);
        if (holder) return this.#grantAndStore(current.secret, holder);
      }
      await sleep(this.#options.pollIntervalMs);
    }
  }

  /** Writes a lock version; returns the lock's holder id, or undefined if another writer won. */
  async #claim(current: LoadedSecret): Promise<string | undefined> {
    const lock: RefreshLock = {
      holder: randomUUID(),
      until: new Date(this.#options.now() + this.#lockSeconds() * 1000).toISOString(),
    };
    try {
      await this.#options.secretsManager.send(
        new PutSecretValueCommand({
          SecretId: this.#options.secretId,
          // The same token for every container that saw this version: only one write can win.
          ClientRequestToken: createHash("sha256")
            .update(`refresh-lock:${current.versionId ?? "none"}`)
            .digest("hex"),
          SecretString: JSON.stringify({ ...current.secret, refresh_lock: lock }),
        }),
      );
      return lock.holder;
    } catch (error) {
      if ((error as Error).name === "ResourceExistsException") return undefined;
      throw secretsManagerError(error, "write", this.#options.secretId);
    }
  }

  async #grantAndStore(secret: ZohoSecret, holder: string): Promise<AccessToken> {
    const token = await grantAccessToken(secret, this.#options).catch(async (error: unknown) => {
      if (error instanceof ServiceError && error.code === "ZOHO_AUTH_FAILED") {
        this.#refusal = {
          error,
          until: this.#options.now() + this.#options.refusalBackoffSeconds * 1000,
        };
      }
      await this.#write(withoutLock(secret)).catch(() => undefined); // let others try at once
      throw error;
    });
    const next: ZohoSecret = {
      ...withoutLock(secret),
      access_token: token.accessToken,
      api_domain: token.apiDomain,
      access_token_expires_at: new Date(token.expiresAt).toISOString(),
    };
    try {
      await this.#write(next);
    } catch (error) {
      // The token works even if it could not be stored; the lock expires on its own.
      logger.warn("Could not store the refreshed Zoho access token", {
        holder,
        error: (error as Error).message,
      });
    }
    this.#cached = { secret: next, versionId: undefined, fetchedAt: this.#options.now() };
    logger.info("Refreshed the Zoho access token", {
      expiresAt: next.access_token_expires_at,
      apiDomain: token.apiDomain,
    });
    return token;
  }

  async #write(secret: ZohoSecret): Promise<void> {
    try {
      await this.#options.secretsManager.send(
        new PutSecretValueCommand({
          SecretId: this.#options.secretId,
          SecretString: JSON.stringify(secret),
        }),
      );
    } catch (error) {
      throw secretsManagerError(error, "write", this.#options.secretId);
    }
  }

  #load(forceFetch: boolean): Promise<LoadedSecret> {
    const cached = this.#cached;
    if (
      !forceFetch &&
      cached &&
      this.#options.now() - cached.fetchedAt < this.#options.cacheTtlSeconds * 1000
    ) {
      return Promise.resolve(cached);
    }
    this.#loading ??= this.#read().finally(() => {
      this.#loading = undefined;
    });
    return this.#loading;
  }

  async #read(): Promise<LoadedSecret> {
    const fetchedAt = this.#options.now();
    let output: { SecretString?: string; VersionId?: string };
    try {
      output = await this.#options.secretsManager.send(
        new GetSecretValueCommand({ SecretId: this.#options.secretId }),
      );
    } catch (error) {
      throw secretsManagerError(error, "read", this.#options.secretId);
    }
    this.#cached = {
      secret: parseSecret(output.SecretString, this.#options.secretId),
      versionId: output.VersionId,
      fetchedAt,
    };
    return this.#cached;
  }

  #storedToken(secret: ZohoSecret): AccessToken | undefined {
    const expiresAt = Date.parse(secret.access_token_expires_at ?? "");
    if (!secret.access_token || !secret.api_domain || Number.isNaN(expiresAt)) return undefined;
    return { accessToken: secret.access_token, apiDomain: secret.api_domain, expiresAt };
  }

  #usableToken(secret: ZohoSecret): AccessToken | undefined {
    const stored = this.#storedToken(secret);
    const margin = this.#options.expiryMarginSeconds * 1000;
    return stored && stored.expiresAt - this.#options.now() > margin ? stored : undefined;
  }

  /** Long enough for one grant, including its timeout. */
  #lockSeconds(): number {
    return Math.ceil(this.#options.timeoutMs / 1000) + 5;
  }
}

/** The token store a function gets from its environment. */
export function tokenStoreFromConfig(config: Config): TokenStore {
  return new TokenStore({
    secretId: config.ZOHO_SECRET_ID,
    secretsManager: new SecretsManagerClient({}),
    cacheTtlSeconds: config.SECRET_CACHE_TTL_SECONDS,
    timeoutMs: config.ZOHO_HTTP_TIMEOUT_MS,
  });
}

function readLock(secret: ZohoSecret): RefreshLock | undefined {
  const lock = secret.refresh_lock as Partial<RefreshLock> | undefined;
  return typeof lock?.until === "string" && typeof lock.holder === "string"
    ? (lock as RefreshLock)
    : undefined;
}

function withoutLock(secret: ZohoSecret): ZohoSecret {
  const { refresh_lock: _lock, ...rest } = secret;
  return rest as ZohoSecret;
}

function secretsManagerError(
  error: unknown,
  verb: "read" | "write",
  secretId: string,
): ServiceError {
  if (error instanceof ServiceError) return error;
  const name = (error as Error)?.name ?? "Error";
  return new ServiceError(
    "CONFIGURATION_ERROR",
    `Could not ${verb} the Zoho secret ${secretId} in Secrets Manager (${name}).`,
    { cause: error },
  );
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
