/** How the sandbox behaves; every field can be changed while it runs. Defaults are Zoho's. */
export interface SandboxSettings {
  /** Books requests per organization per calendar minute; then HTTP 429 code 44 until the minute ends */
  rateLimitPerMinute: number;
  /** Books requests per organization per UTC day; then HTTP 429 code 45. null: no cap */
  dailyLimit: number | null;
  /** Books requests in progress at once; one more answers HTTP 429 code 1070 */
  concurrencyLimit: number;
  /** scope the action endpoints need (Zoho's reference says CREATE, the seed article UPDATE) */
  requiredScope: string;
  /** scopes the refresh token grants, checked on every request; removing one gives code 57 */
  grantedScopes: string[];
  /** "error": 3031/3032 when already in the state; "success": code 0, as some accounts answer */
  alreadyInStateAnswer: "error" | "success";
  /** the code and HTTP status for an unknown contact (sources disagree) */
  notFoundCode: 2 | 1002;
  notFoundStatus: 400 | 404;
  /** the code for an organization the user is not in (6024 by the seed; 2, 14, 4001, 6041 seen by others) */
  invalidOrganizationCode: 6024 | 2 | 14 | 4001 | 6041;
  /** grants per refresh token per 10 minutes; then grants are refused for 10 minutes */
  grantLimit: number;
  /** HTTP status of the "Access Denied" refusal (200 per Zoho, 400 as some clients saw) */
  tooManyGrantsStatus: 200 | 400;
  /** live access tokens per refresh token; issuing one more invalidates the oldest */
  maxLiveTokens: number;
  tokenLifetimeSeconds: number;
  /** some token answers have lacked expires_in */
  omitExpiresIn: boolean;
  /** the token endpoint answers {"error": "invalid_code"} */
  refreshTokenRevoked: boolean;
  /** added to every Books request */
  latencyMs: number;
  /** share (0..1) of Books requests that fail, and the next N that fail for sure */
  failureRate: number;
  failNext: number;
  /** "json": HTTP 500 {"code": 5}; "html": an HTTP 502 HTML page, as an outage answers */
  failureStyle: "json" | "html";
  /** share (0..1) of Books requests that never answer, and the next N that hang for sure */
  hangRate: number;
  hangNext: number;
}

export const DEFAULT_SETTINGS: Readonly<SandboxSettings> = Object.freeze({
  rateLimitPerMinute: 100,
  dailyLimit: null,
  concurrencyLimit: 10,
  requiredScope: "ZohoBooks.contacts.CREATE",
  grantedScopes: [
    "ZohoBooks.contacts.CREATE",
    "ZohoBooks.contacts.UPDATE",
    "ZohoBooks.contacts.READ",
  ],
  alreadyInStateAnswer: "error",
  notFoundCode: 2,
  notFoundStatus: 404,
  invalidOrganizationCode: 6024,
  grantLimit: 10,
  tooManyGrantsStatus: 200,
  maxLiveTokens: 10,
  tokenLifetimeSeconds: 3600,
  omitExpiresIn: false,
  refreshTokenRevoked: false,
  latencyMs: 0,
  failureRate: 0,
  failNext: 0,
  failureStyle: "json",
  hangRate: 0,
  hangNext: 0,
});

const ALLOWED: { [K in keyof SandboxSettings]?: readonly unknown[] } = {
  alreadyInStateAnswer: ["error", "success"],
  notFoundCode: [2, 1002],
  notFoundStatus: [400, 404],
  invalidOrganizationCode: [6024, 2, 14, 4001, 6041],
  tooManyGrantsStatus: [200, 400],
  failureStyle: ["json", "html"],
};

/** Checks a partial settings object; returns the problem, or undefined when it is valid. */
export function settingsProblem(patch: unknown): string | undefined {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch))
    return "settings must be an object";
  for (const [key, value] of Object.entries(patch)) {
    if (!(key in DEFAULT_SETTINGS)) return `unknown setting ${key}`;
    const name = key as keyof SandboxSettings;
    const fallback = DEFAULT_SETTINGS[name];
    const allowed = ALLOWED[name];
    if (allowed && !allowed.includes(value)) return `${key} must be one of ${allowed.join(", ")}`;
    if (name === "dailyLimit" && value === null) continue;
    if (Array.isArray(fallback)) {
      if (!Array.isArray(value) || value.some((v) => typeof v !== "string"))
        return `${key} must be a list of strings`;
    } else if (typeof value !== typeof (fallback ?? 0)) {
      return `${key} must be a ${typeof (fallback ?? 0)}`;
    } else if (typeof value === "number" && (!Number.isFinite(value) || value < 0)) {
      return `${key} must be 0 or more`;
    }
  }
  return undefined;
}
