import { accountsUrl, defaultApiDomain, type ZohoSecret } from "../credentials/secret";
import { ServiceError } from "../errors";

/** Zoho's access tokens live one hour; some token answers have left `expires_in` out. */
const DEFAULT_EXPIRES_IN_SECONDS = 3600;

export interface AccessToken {
  accessToken: string;
  apiDomain: string;
  /** epoch milliseconds */
  expiresAt: number;
  /** the grant's `scope` as Zoho answered it (space- or comma-separated), when it answered one */
  scope?: string;
}

export interface GrantOptions {
  timeoutMs: number;
  now: () => number;
  fetch?: typeof fetch;
}

/** The scopes to tell users to grant (Zoho's reference names CREATE for the actions, Kalki UPDATE). */
export const RECOMMENDED_SCOPES = [
  "ZohoBooks.contacts.CREATE",
  "ZohoBooks.contacts.UPDATE",
  "ZohoBooks.contacts.READ",
] as const;

/**
 * What a grant must carry, each need met by any scope of its row (compared case-insensitively;
 * `ALL` is every operation of a scope). The actions need CREATE per Zoho's reference and UPDATE per
 * the seed article: either one is accepted, since refusing a grant that works would stop the
 * service on a doubt; if the one Zoho wants is missing, the action answers 57, which names all
 * three. Reads (the list, one contact: email resolution and the sync) need READ. On a missing need
 * the error names the scopes of the row, without ALL (grant both CREATE and UPDATE).
 */
const SCOPE_NEEDS: readonly (readonly string[])[] = [
  ["ZohoBooks.contacts.CREATE", "ZohoBooks.contacts.UPDATE"],
  ["ZohoBooks.contacts.READ"],
];
const SCOPES_COVERING_ALL = ["ZohoBooks.contacts.ALL", "ZohoBooks.fullaccess.all"];

/** What to do about each refusal Zoho's token endpoint is known to give. */
const GRANT_REFUSALS: Record<string, string> = {
  invalid_code:
    "the refresh token is revoked or wrong: generate a new one (scopes ZohoBooks.contacts.CREATE,ZohoBooks.contacts.UPDATE,ZohoBooks.contacts.READ) and store it as refresh_token in the secret",
  invalid_client:
    "client_id or client_secret is wrong, or the secret's data_center/accounts_url is not the data center the client was registered in",
  "Access Denied":
    "too many token grants for this refresh token (Zoho allows about ten in ten minutes and then blocks grants for ten minutes)",
};

/**
 * Exchanges the secret's refresh token for an access token (`grant_type=refresh_token`, form
 * body). Any `error` field is a refusal even with HTTP 200. Errors name what to fix and never
 * carry the client secret or a token.
 */
export async function grantAccessToken(
  secret: ZohoSecret,
  options: GrantOptions,
): Promise<AccessToken> {
  const url = new URL("/oauth/v2/token", accountsUrl(secret));
  const form = new URLSearchParams({
    refresh_token: secret.refresh_token,
    client_id: secret.client_id,
    client_secret: secret.client_secret,
    grant_type: "refresh_token",
  });
  let response: Response;
  let text: string;
  try {
    response = await (options.fetch ?? fetch)(url, {
      method: "POST",
      body: form,
      signal: AbortSignal.timeout(options.timeoutMs),
    });
    text = await response.text();
  } catch (error) {
    const timedOut = (error as Error)?.name === "TimeoutError";
    throw new ServiceError(
      "ZOHO_UNAVAILABLE",
      timedOut
        ? `Zoho accounts server ${url.origin} did not answer within ${options.timeoutMs} ms.`
        : `Could not reach the Zoho accounts server ${url.origin}.`,
      timedOut ? { httpStatus: 504 } : {},
    );
  }

  const body = parseJsonObject(text);
  if (body && typeof body.error === "string") {
    const hint = GRANT_REFUSALS[body.error] ?? "see Zoho's answer";
    throw new ServiceError(
      "ZOHO_AUTH_FAILED",
      `Zoho refused the token grant (${body.error}): ${hint}.`,
    );
  }
  if (response.status >= 500) {
    throw new ServiceError(
      "ZOHO_UNAVAILABLE",
      `Zoho accounts server answered HTTP ${response.status}.`,
    );
  }
  if (!response.ok || !body || typeof body.access_token !== "string" || body.access_token === "") {
    throw new ServiceError(
      "ZOHO_AUTH_FAILED",
      `Zoho's token endpoint answered HTTP ${response.status} without an access token.`,
    );
  }
  checkScopes(body.scope);
  const expiresIn =
    typeof body.expires_in === "number" ? body.expires_in : DEFAULT_EXPIRES_IN_SECONDS;
  return {
    accessToken: body.access_token,
    apiDomain:
      typeof body.api_domain === "string"
        ? body.api_domain
        : (secret.api_domain ?? defaultApiDomain(secret)),
    expiresAt: options.now() + expiresIn * 1000,
    ...(typeof body.scope === "string" ? { scope: body.scope } : {}),
  };
}

/**
 * Refuses a grant whose `scope` (space- or comma-separated) lacks what the service needs, naming
 * the scopes to grant. A grant answer without `scope` is accepted: the calls will tell.
 */
export function checkScopes(scope: unknown): void {
  if (typeof scope !== "string") return;
  const granted = new Set(
    scope
      .split(/[\s,]+/)
      .filter(Boolean)
      .map((s) => s.toLowerCase()),
  );
  const covers = (name: string) => granted.has(name.toLowerCase());
  if (SCOPES_COVERING_ALL.some(covers)) return;
  const missing = SCOPE_NEEDS.filter((need) => !need.some(covers)).flat();
  if (missing.length === 0) return;
  throw new ServiceError(
    "ZOHO_UNAUTHORIZED",
    `Zoho granted a token without scopes the service needs (missing ${missing.join(", ")}): generate a new refresh token with the scopes ${RECOMMENDED_SCOPES.join(",")} and store it as refresh_token in the secret.`,
    { details: { missing_scopes: missing } },
  );
}

export function parseJsonObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === "object" && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}
