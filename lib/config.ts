import * as z from "zod/mini";
import { ServiceError } from "./errors";

const positiveInt = (fallback: number) =>
  z._default(
    z.coerce.number({ error: "must be a number" }).check(z.int(), z.positive("must be positive")),
    fallback,
  );
const queueUrl = () => z.optional(z.url({ error: "must be a queue URL" }));

/**
 * The environment's defaults, written here and nowhere else: the schema below applies them, and
 * the classes that take the same settings as options (token store, Books client, webhook store)
 * fall back on these. `docs/configuration.md` lists them (a test compares the two).
 */
export const ENV_DEFAULTS = {
  ZOHO_HTTP_TIMEOUT_MS: 10_000,
  SECRET_CACHE_TTL_SECONDS: 300,
  ZOHO_MINUTE_SHARE: 80,
  ZOHO_CONCURRENCY: 5,
  ZOHO_DAILY_QUOTA: 1000,
  JOB_MAX_ATTEMPTS: 5,
  JOB_RETENTION_DAYS: 400,
  EVENT_BUS_NAME: "default",
  ZOHO_GRANT_RETRY_SECONDS: 60,
  ZOHO_GRANT_REFUSED_BACKOFF_SECONDS: 600,
  TOKEN_REFRESH_MARGIN_MINUTES: 40,
  HUBSPOT_API_URL: "https://api.hubapi.com",
} as const;

/** The environment every function reads once at cold start. */
export const EnvSchema = z.object({
  ZOHO_SECRET_ID: z
    .string({ error: "is required: the Secrets Manager secret with the Zoho credentials" })
    .check(z.minLength(1, "is required: the Secrets Manager secret with the Zoho credentials")),
  ZOHO_LEDGER_TABLE: z
    .string({ error: "is required: the DynamoDB ledger table (tokens, Zoho's budget, jobs)" })
    .check(z.minLength(1, "is required: the DynamoDB ledger table (tokens, Zoho's budget, jobs)")),
  /** real-time jobs (the HTTP API's) */
  ACTIVATION_QUEUE_URL: queueUrl(),
  /** bulk jobs (the sync's) */
  BULK_QUEUE_URL: queueUrl(),
  ACTIVATION_DLQ_URL: queueUrl(),
  BULK_DLQ_URL: queueUrl(),
  ZOHO_HTTP_TIMEOUT_MS: positiveInt(ENV_DEFAULTS.ZOHO_HTTP_TIMEOUT_MS),
  SECRET_CACHE_TTL_SECONDS: z._default(
    z.coerce
      .number({ error: "must be a number" })
      .check(z.int(), z.nonnegative("must be 0 or more")),
    ENV_DEFAULTS.SECRET_CACHE_TTL_SECONDS,
  ),
  /** calls a minute per organization the service allows itself, of Zoho's 100 */
  ZOHO_MINUTE_SHARE: z._default(
    z.coerce.number({ error: "must be a number" }).check(z.int(), z.positive("must be positive")),
    ENV_DEFAULTS.ZOHO_MINUTE_SHARE,
  ),
  /** Zoho calls in progress at once per organization: 5 on the Free plan, 10 on paid plans */
  ZOHO_CONCURRENCY: positiveInt(ENV_DEFAULTS.ZOHO_CONCURRENCY),
  /** the plan's daily calls, used only until Zoho reports its own in X-Rate-Limit-* headers */
  ZOHO_DAILY_QUOTA: positiveInt(ENV_DEFAULTS.ZOHO_DAILY_QUOTA),
  /** a job that failed this many times for a real reason is parked with that reason */
  JOB_MAX_ATTEMPTS: positiveInt(ENV_DEFAULTS.JOB_MAX_ATTEMPTS),
  /** how long job records and contact histories are kept */
  JOB_RETENTION_DAYS: positiveInt(ENV_DEFAULTS.JOB_RETENTION_DAYS),
  /** where outcome events go: the default bus, or one the operator names */
  EVENT_BUS_NAME: z._default(
    z.string().check(z.minLength(1, "must not be empty")),
    ENV_DEFAULTS.EVENT_BUS_NAME,
  ),
  /** the webhooks' sources and their secrets (one Secrets Manager secret) */
  WEBHOOK_SECRET_ID: z.optional(z.string().check(z.minLength(1, "must not be empty"))),
  /** after the accounts server failed a grant (5xx, timeout), no container asks again for this long */
  ZOHO_GRANT_RETRY_SECONDS: positiveInt(ENV_DEFAULTS.ZOHO_GRANT_RETRY_SECONDS),
  /** after Zoho refused a grant (Access Denied, invalid_code), no container asks again for this long: Zoho's block lasts 10 minutes */
  ZOHO_GRANT_REFUSED_BACKOFF_SECONDS: positiveInt(ENV_DEFAULTS.ZOHO_GRANT_REFUSED_BACKOFF_SECONDS),
  /** the scheduled refresher (every 30 minutes) renews a token with less than this left */
  TOKEN_REFRESH_MARGIN_MINUTES: positiveInt(ENV_DEFAULTS.TOKEN_REFRESH_MARGIN_MINUTES),
  /**
   * the HubSpot private-app token (`{"access_token": "pat-…"}`) of `hubspot` sync sources, read
   * only; empty (the stack's default) is the same as unset
   */
  HUBSPOT_SECRET_ID: z.optional(z.string({ error: "must be a secret name or ARN" })),
  /**
   * the deployment's HTTP API URL (`https://<id>.execute-api.<region>.amazonaws.com`, or a custom
   * domain): the scheduled sync's watch runs give Zoho CRM `{API_BASE_URL}/webhooks/zoho-crm-notifications`;
   * empty (a local stage without it) is the same as unset
   */
  API_BASE_URL: z.optional(
    z.union([
      z.literal(""),
      z.url({ protocol: /^https?$/, error: "must be an http(s) URL (the HTTP API's base URL)" }),
    ]),
  ),
  /** HubSpot's API base URL: another one for the local HubSpot sandbox */
  HUBSPOT_API_URL: z._default(
    z.url({ protocol: /^https?$/, error: "must be an http(s) URL" }),
    ENV_DEFAULTS.HUBSPOT_API_URL,
  ),
});

export type Config = z.infer<typeof EnvSchema>;

/** Reads and checks the environment; the error names the variable at fault. */
export function readConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = EnvSchema.safeParse(env);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => `${issue.path.join(".")} ${issue.message}`);
  throw new ServiceError("CONFIGURATION_ERROR", `Environment: ${problems.join("; ")}.`);
}

/** The variable a function cannot work without, checked where it is used. */
export function required<K extends keyof Config>(config: Config, name: K): NonNullable<Config[K]> {
  const value = config[name];
  if (value === undefined)
    throw new ServiceError("CONFIGURATION_ERROR", `Environment: ${name} is required.`);
  return value as NonNullable<Config[K]>;
}
