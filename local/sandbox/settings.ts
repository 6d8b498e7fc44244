import { LANGUAGES, type SandboxLanguage } from "./messages";

/**
 * How the sandbox behaves. Every field is read on each request, so a test can change it on a
 * running sandbox (`sandbox.settings.x = …`, or `PATCH /__sandbox/settings`). Defaults are Zoho's.
 */
export interface SandboxSettings {
  /** Books requests per organization per calendar minute; then HTTP 429 code 44 until the minute ends */
  rateLimitPerMinute: number;
  /**
   * Books requests per organization per daily window (see dailyWindowSeconds); then HTTP 429 code
   * `dailyLimitCode` until the window ends. null: no cap, and no X-Rate-Limit-* headers (there is
   * no quota to report; a real plan always has one: Free 1000 … Premium 10000).
   */
  dailyLimit: number | null;
  /** the code of the daily-cap refusal: 45 per Zoho's page; 44 as some integrators report it */
  dailyLimitCode: 45 | 44;
  /** the length of the daily window: 86400, or less for a compressed day */
  dailyWindowSeconds: number;
  /**
   * where daily windows are counted from (ms since the epoch, sandbox clock), so the quota does
   * not reset at midnight UTC (Zoho's does not). null: the sandbox's start, or its last reset()
   */
  dailyResetOrigin: number | null;
  /**
   * Answers that reach the quota check carry the daily quota as Zoho reports it:
   * X-Rate-Limit-Limit, X-Rate-Limit-Remaining, X-Rate-Limit-Reset (whole seconds to the reset).
   * false leaves them out, as an answer without them would.
   */
  rateLimitHeaders: boolean;
  /** Books requests in progress at once; one more answers HTTP 429 code 1070 */
  concurrencyLimit: number;
  /** scope the action endpoints need (Zoho's reference says CREATE, the seed article UPDATE) */
  requiredScope: string;
  /**
   * scopes the refresh token grants, checked on every request: removing one gives code 57 at
   * once. The token endpoint answers them as `scope`, space-separated.
   */
  grantedScopes: string[];
  /**
   * The list's `last_modified_time=<time>` parameter (undocumented; a public integration uses it):
   * true keeps only contacts modified at or after that time; false ignores it, as a Zoho that does
   * not support it would, so callers must cope with either.
   */
  lastModifiedTimeFilter: boolean;
  /** "error": 3031/3032 when already in the state; "success": code 0, as some accounts answer */
  alreadyInStateAnswer: "error" | "success";
  /** the code and HTTP status for an unknown contact (sources disagree: 1002 in Zoho's docs, 2 in the seed) */
  notFoundCode: 2 | 1002;
  notFoundStatus: 400 | 404;
  /** HTTP 400 code for an organization the user is not in, or none: 6024 (seed); 2, 14, 4001, 6041, 9017 seen by others */
  invalidOrganizationCode: 6024 | 2 | 14 | 4001 | 6041 | 9017;
  /** the organization's language: every Books message is in it (the codes are not) */
  language: SandboxLanguage;
  /** grants per refresh token per 10 minutes (sliding); then grants are refused for 10 minutes */
  grantLimit: number;
  /** HTTP status of the "Access Denied" refusal (200 per Zoho, 400 as some clients saw) */
  tooManyGrantsStatus: 200 | 400;
  /** live access tokens per refresh token; issuing one more invalidates the oldest */
  maxLiveTokens: number;
  tokenLifetimeSeconds: number;
  /** some token answers have lacked expires_in */
  omitExpiresIn: boolean;
  /** the token endpoint answers HTTP 200 {"error": "invalid_code"} */
  refreshTokenRevoked: boolean;
  /** the accounts server is down: the token endpoint answers an HTTP 502 page, as an outage does */
  accountsUnavailable: boolean;
  /** milliseconds added to every Books request that passes the checks */
  latencyMs: number;
  /** share (0..1) of Books requests that fail (a seeded PRNG: the same runs fail every time) */
  failureRate: number;
  /** the next N Books requests fail for sure (counts down) */
  failNext: number;
  /** "json": HTTP 500 {"code": 5} or {"code": 1000} in turn; "html": an HTTP 502 page, as an outage answers */
  failureStyle: "json" | "html";
  /** share (0..1) of Books requests that never answer, so the client's timeout must fire */
  hangRate: number;
  /** the next N Books requests never answer (counts down) */
  hangNext: number;
  /**
   * Books list rows carry `zcrm_account_id` / `zcrm_contact_id` of CRM-linked contacts. Zoho's
   * list sample shows none (the detail has them), so false; true for an account that does.
   */
  booksListCrmIds: boolean;
  /** the largest COQL LIMIT: 2,000 in v8 (the COQL limitations page) */
  crmCoqlMaxLimit: number;
  /** COQL takes `LIMIT offset, count` (SQL's short form): not on Zoho's pages, so refused by default */
  crmCoqlLimitCommaForm: boolean;
  /** CRM API credits per rolling 24 hours: 5,000 on the Free edition; then HTTP 429 */
  crmCreditsPerDay: number;
  /** CRM requests in progress at once for the organization and app (Free: 5); one more: HTTP 429 */
  crmConcurrencyLimit: number;
  /** the `code` of the CRM's 429 answers: RATE_LIMIT_EXCEEDED in the v8 OpenAPI samples; TOO_MANY_REQUESTS as others report */
  crmRateLimitCode: "RATE_LIMIT_EXCEEDED" | "TOO_MANY_REQUESTS";
  /** the user's CRM profile lacks API access: every CRM call that passes the token answers 403 NO_PERMISSION */
  crmNoPermission: boolean;
  /** milliseconds added to every CRM request that passes the checks */
  crmLatencyMs: number;
  /** the next N CRM requests fail with HTTP 500 INTERNAL_ERROR (counts down) */
  crmFailNext: number;
  /** longest watch `token`: 50 per the Enable Notifications page; the v8 OpenAPI file says 256 */
  crmWatchTokenMaxLength: number;
  /** the next N notification deliveries are lost (not sent), as an unreachable notify_url loses them */
  crmNotifyFailNext: number;
  /** a failed delivery (lost, refused or not 2xx) disables the channel */
  crmDropChannelOnFailure: boolean;
}

export const DEFAULT_SETTINGS: Readonly<SandboxSettings> = Object.freeze({
  rateLimitPerMinute: 100,
  dailyLimit: null,
  dailyLimitCode: 45,
  dailyWindowSeconds: 86_400,
  dailyResetOrigin: null,
  rateLimitHeaders: true,
  concurrencyLimit: 10,
  requiredScope: "ZohoBooks.contacts.CREATE",
  grantedScopes: Object.freeze([
    "ZohoBooks.contacts.CREATE",
    "ZohoBooks.contacts.UPDATE",
    "ZohoBooks.contacts.READ",
  ]) as string[],
  lastModifiedTimeFilter: true,
  alreadyInStateAnswer: "error",
  notFoundCode: 1002,
  notFoundStatus: 404,
  invalidOrganizationCode: 6024,
  language: "en",
  grantLimit: 10,
  tooManyGrantsStatus: 200,
  maxLiveTokens: 10,
  tokenLifetimeSeconds: 3600,
  omitExpiresIn: false,
  refreshTokenRevoked: false,
  accountsUnavailable: false,
  latencyMs: 0,
  failureRate: 0,
  failNext: 0,
  failureStyle: "json",
  hangRate: 0,
  hangNext: 0,
  booksListCrmIds: false,
  crmCoqlMaxLimit: 2000,
  crmCoqlLimitCommaForm: false,
  crmCreditsPerDay: 5000,
  crmConcurrencyLimit: 5,
  crmRateLimitCode: "RATE_LIMIT_EXCEEDED",
  crmNoPermission: false,
  crmLatencyMs: 0,
  crmFailNext: 0,
  crmWatchTokenMaxLength: 50,
  crmNotifyFailNext: 0,
  crmDropChannelOnFailure: false,
});

/**
 * The scopes a token needs for everything the sandbox's CRM serves. Not granted by default (the
 * Books tests pin the default grant): add them, e.g. `grantedScopes: [...books, ...CRM_SCOPES]`.
 */
export const CRM_SCOPES: readonly string[] = Object.freeze([
  "ZohoCRM.coql.READ",
  "ZohoCRM.modules.accounts.READ",
  "ZohoCRM.modules.contacts.READ",
  "ZohoCRM.settings.fields.READ",
  "ZohoCRM.notifications.ALL",
]);

/** Settings that take one of a few values; every other setting is checked against its default's type. */
const CHOICES: { [K in keyof SandboxSettings]?: readonly unknown[] } = {
  alreadyInStateAnswer: ["error", "success"],
  dailyLimitCode: [45, 44],
  notFoundCode: [2, 1002],
  notFoundStatus: [400, 404],
  invalidOrganizationCode: [6024, 2, 14, 4001, 6041, 9017],
  language: LANGUAGES,
  tooManyGrantsStatus: [200, 400],
  failureStyle: ["json", "html"],
  crmRateLimitCode: ["RATE_LIMIT_EXCEEDED", "TOO_MANY_REQUESTS"],
};
const SHARES: ReadonlySet<string> = new Set(["failureRate", "hangRate"]);
/** Settings that may also be null (their default, or not). */
const NULLABLE: ReadonlySet<string> = new Set(["dailyLimit", "dailyResetOrigin"]);
/** Settings that must be a whole number, 1 or more. */
const POSITIVE_INTEGERS: ReadonlySet<string> = new Set([
  "dailyWindowSeconds",
  "crmCoqlMaxLimit",
  "crmWatchTokenMaxLength",
]);

/** Checks a partial settings object; returns what is wrong with it, or undefined when it is valid. */
export function settingsProblem(patch: unknown): string | undefined {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch))
    return "settings must be a JSON object";
  for (const [key, value] of Object.entries(patch)) {
    if (!Object.hasOwn(DEFAULT_SETTINGS, key)) return `unknown setting ${key}`;
    const fallback = DEFAULT_SETTINGS[key as keyof SandboxSettings];
    const choices = CHOICES[key as keyof SandboxSettings];
    if (choices) {
      if (!choices.includes(value)) return `${key} must be one of ${choices.join(", ")}`;
    } else if (Array.isArray(fallback)) {
      if (!Array.isArray(value) || value.some((v) => typeof v !== "string"))
        return `${key} must be a list of strings`;
    } else if (NULLABLE.has(key) && value === null) {
      // null: no daily cap, or the default origin
    } else if (typeof value !== typeof (fallback ?? 0)) {
      return `${key} must be a ${typeof (fallback ?? 0)}${NULLABLE.has(key) ? " or null" : ""}`;
    } else if (POSITIVE_INTEGERS.has(key) && !(Number.isInteger(value) && (value as number) >= 1)) {
      return `${key} must be a whole number, 1 or more`;
    } else if (typeof value === "number" && (!Number.isFinite(value) || value < 0)) {
      return `${key} must be a number, 0 or more`;
    } else if (SHARES.has(key) && (value as number) > 1) {
      return `${key} must be between 0 and 1`;
    }
  }
  return undefined;
}

/** A full, independent settings object: the defaults under `patch`, validated (throws when invalid). */
export function resolveSettings(patch: Partial<SandboxSettings> = {}): SandboxSettings {
  const given = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
  const problem = settingsProblem(given);
  if (problem) throw new TypeError(`Invalid sandbox settings: ${problem}`);
  const settings = { ...DEFAULT_SETTINGS, ...given } as SandboxSettings;
  return { ...settings, grantedScopes: [...settings.grantedScopes] };
}
