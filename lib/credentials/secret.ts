import * as z from "zod/mini";
import { ServiceError } from "../errors";
import { assertZohoId, zohoIdSchema } from "../ids";
import { lazy } from "../lazy";

/** Zoho data centers: the accounts server that grants tokens, and the API domain it pairs with. */
export const DATA_CENTERS = {
  com: { accounts: "https://accounts.zoho.com", api: "https://www.zohoapis.com" },
  eu: { accounts: "https://accounts.zoho.eu", api: "https://www.zohoapis.eu" },
  in: { accounts: "https://accounts.zoho.in", api: "https://www.zohoapis.in" },
  "com.au": { accounts: "https://accounts.zoho.com.au", api: "https://www.zohoapis.com.au" },
  jp: { accounts: "https://accounts.zoho.jp", api: "https://www.zohoapis.jp" },
  ca: { accounts: "https://accounts.zohocloud.ca", api: "https://www.zohoapis.ca" },
  sa: { accounts: "https://accounts.zoho.sa", api: "https://www.zohoapis.sa" },
  uk: { accounts: "https://accounts.zoho.uk", api: "https://www.zohoapis.uk" },
  "com.cn": { accounts: "https://accounts.zoho.com.cn", api: "https://www.zohoapis.com.cn" },
} as const;

export type DataCenter = keyof typeof DATA_CENTERS;

// zod/mini ships no message catalogue: each field says what it wants, never what it got.
const nonEmpty = () =>
  z.string({ error: "must be a string" }).check(z.minLength(1, "must not be empty"));
const httpUrl = () => z.url({ protocol: /^https?$/, error: "must be an http(s) URL" });

/**
 * The Secrets Manager secret the service runs on, written by the operator and only read by the
 * service (the access token lives in the ledger). `access_token`, `api_domain` and
 * `access_token_expires_at`, which older versions wrote here, are still accepted: `api_domain`
 * is the fallback when a grant answers none, the other two are ignored. Unknown fields are
 * accepted too, so a secret shared with other tools stays valid. Built on the first read of
 * the secret, which many containers never make (docs/performance.md, "Cold start").
 */
const zohoSecretSchema = lazy(() =>
  z.looseObject(
    {
      client_id: nonEmpty(),
      client_secret: nonEmpty(),
      refresh_token: nonEmpty(),
      data_center: z._default(
        z.enum(Object.keys(DATA_CENTERS) as [DataCenter, ...DataCenter[]], {
          error: `must be one of ${Object.keys(DATA_CENTERS).join(", ")}`,
        }),
        "com",
      ),
      accounts_url: z.optional(httpUrl()),
      organization_id: z.optional(zohoIdSchema()),
      access_token: z.optional(nonEmpty()),
      api_domain: z.optional(httpUrl()),
      access_token_expires_at: z.optional(z.iso.datetime({ error: "must be an ISO-8601 time" })),
    },
    { error: "must be a JSON object" },
  ),
);

export type ZohoSecret = z.infer<ReturnType<typeof zohoSecretSchema>>;

/**
 * Parses the secret's JSON. A malformed secret is a `CONFIGURATION_ERROR` whose message names
 * the fields at fault and never repeats a value.
 */
export function parseSecret(secretString: string | undefined, secretId: string): ZohoSecret {
  return parseSecretJson(secretString, secretId, zohoSecretSchema());
}

/**
 * A Secrets Manager secret's JSON checked against `schema`: any fault is a `CONFIGURATION_ERROR`
 * naming the secret and the fields at fault, never a value (the text is secret).
 */
export function parseSecretJson<T>(
  secretString: string | undefined,
  secretId: string,
  schema: z.ZodMiniType<T>,
): T {
  let json: unknown;
  try {
    json = JSON.parse(secretString ?? "");
  } catch {
    // JSON.parse's own message quotes the text, which is secret: say only where to look.
    throw new ServiceError("CONFIGURATION_ERROR", `The secret ${secretId} is not a JSON object.`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const fields = parsed.error.issues.map(
      (issue) => `${issue.path.join(".") || "(root)"}: ${issue.message}`,
    );
    throw new ServiceError(
      "CONFIGURATION_ERROR",
      `The secret ${secretId} is malformed: ${fields.join("; ")}.`,
    );
  }
  return parsed.data;
}

/** Where OAuth grants go: `accounts_url` if set (a sandbox, a proxy), else the data center's. */
export function accountsUrl(secret: ZohoSecret): string {
  return secret.accounts_url ?? DATA_CENTERS[secret.data_center].accounts;
}

/** Where Books API calls go until a token answer names its `api_domain`. */
export function defaultApiDomain(secret: ZohoSecret): string {
  return DATA_CENTERS[secret.data_center].api;
}

/** Whatever reads the Zoho secret (the token store, with its cache). */
export interface SecretReader {
  getSecret(): Promise<ZohoSecret>;
}

/**
 * The organization a request, job or sync run is for: the one it names (checked), else the
 * secret's default `organization_id`; with neither, `INVALID_REQUEST`. The one place that falls
 * back on the default.
 */
export async function organizationFor(
  secrets: SecretReader,
  named: string | undefined,
): Promise<{ organizationId: string; fromSecret: boolean }> {
  if (named !== undefined)
    return { organizationId: assertZohoId(named, "organization_id"), fromSecret: false };
  const fallback = (await secrets.getSecret()).organization_id;
  if (fallback === undefined) {
    throw new ServiceError(
      "INVALID_REQUEST",
      "No organization_id: name it, or set a default organization_id in the secret.",
    );
  }
  return { organizationId: fallback, fromSecret: true };
}
