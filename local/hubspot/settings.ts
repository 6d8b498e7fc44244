import * as z from "zod/mini";

/** The read scopes a private app needs for the two object types (one each). */
export const READ_SCOPES = {
  contacts: "crm.objects.contacts.read",
  companies: "crm.objects.companies.read",
} as const;

/**
 * How the HubSpot sandbox behaves. Every field is read on each request, so a test can change it
 * on a running sandbox (`hubspot.settings.x = …`, or `PATCH /__hubspot/settings`). Defaults are
 * HubSpot's documented ones (see README.md for the source of each).
 */
export interface HubSpotSettings {
  /** search requests per account per rolling second; one more answers 429 (no rate-limit headers) */
  searchPerSecond: number;
  /** other requests per app per rolling 10 seconds: 100 (Free, Starter) or 190 (Professional, Enterprise) */
  tenSecondlyLimit: number;
  /** requests per account per day (250,000 Free/Starter; 625,000 Professional; 1,000,000 Enterprise) */
  dailyLimit: number;
  /** the account's time zone as minutes east of UTC: the daily limit resets at its midnight */
  timeZoneOffsetMinutes: number;
  /** filterGroups in one search */
  maxFilterGroups: number;
  /** filters in one group */
  maxFiltersPerGroup: number;
  /** filters in one search, all groups together */
  maxFilters: number;
  /** the largest `limit` of a search page */
  maxPageSize: number;
  /** results of one query a client may page through; paging past them is a 400 */
  maxResults: number;
  /** characters of a search request body; more is a 400 */
  maxQueryChars: number;
  /** inputs of one batch/read */
  maxBatchInputs: number;
  /** how long a write takes to reach search (read by id sees it at once) */
  searchLagMs: number;
  /** the private-app token was deleted or rotated: every request answers 401 */
  tokenRevoked: boolean;
  /** the private app's scopes; a read without its object's scope answers 403 MISSING_SCOPES */
  grantedScopes: string[];
  /** milliseconds added to every API request that passes the checks */
  latencyMs: number;
  /** the next N API requests that pass the checks answer HTTP 500 (counts down) */
  failNext: number;
}

export const DEFAULT_SETTINGS: Readonly<HubSpotSettings> = Object.freeze({
  searchPerSecond: 5,
  tenSecondlyLimit: 100,
  dailyLimit: 250_000,
  timeZoneOffsetMinutes: 0,
  maxFilterGroups: 5,
  maxFiltersPerGroup: 6,
  maxFilters: 18,
  maxPageSize: 200,
  maxResults: 10_000,
  maxQueryChars: 3_000,
  maxBatchInputs: 100,
  searchLagMs: 300,
  tokenRevoked: false,
  grantedScopes: Object.freeze([READ_SCOPES.contacts, READ_SCOPES.companies]) as string[],
  latencyMs: 0,
  failNext: 0,
});

const count = () =>
  z.int({ error: "must be a whole number" }).check(z.nonnegative("must be 0 or more"));
const positive = () =>
  z.int({ error: "must be a whole number" }).check(z.positive("must be 1 or more"));

/** A partial settings object as the control API takes it: known keys only, each of its type. */
export const SettingsPatchSchema = z.strictObject(
  {
    searchPerSecond: z.optional(positive()),
    tenSecondlyLimit: z.optional(positive()),
    dailyLimit: z.optional(positive()),
    timeZoneOffsetMinutes: z.optional(
      z.int({ error: "must be a whole number" }).check(z.gte(-720), z.lte(840)),
    ),
    maxFilterGroups: z.optional(positive()),
    maxFiltersPerGroup: z.optional(positive()),
    maxFilters: z.optional(positive()),
    maxPageSize: z.optional(positive()),
    maxResults: z.optional(positive()),
    maxQueryChars: z.optional(positive()),
    maxBatchInputs: z.optional(positive()),
    searchLagMs: z.optional(count()),
    tokenRevoked: z.optional(z.boolean({ error: "must be true or false" })),
    grantedScopes: z.optional(z.array(z.string({ error: "must be a list of strings" }))),
    latencyMs: z.optional(count()),
    failNext: z.optional(count()),
  },
  { error: "settings must be a JSON object of known settings" },
);

/** What is wrong with a partial settings object, or undefined when it is valid. */
export function settingsProblem(patch: unknown): string | undefined {
  const parsed = SettingsPatchSchema.safeParse(patch);
  if (parsed.success) return undefined;
  return parsed.error.issues
    .map((issue) =>
      issue.path.length ? `${issue.path.join(".")}: ${issue.message}` : issue.message,
    )
    .join("; ");
}

/** A full, independent settings object: the defaults under `patch`, validated (throws when invalid). */
export function resolveSettings(patch: Partial<HubSpotSettings> = {}): HubSpotSettings {
  const given = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
  const problem = settingsProblem(given);
  if (problem) throw new TypeError(`Invalid HubSpot sandbox settings: ${problem}`);
  const settings = { ...DEFAULT_SETTINGS, ...given } as HubSpotSettings;
  return { ...settings, grantedScopes: [...settings.grantedScopes] };
}
