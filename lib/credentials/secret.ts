import * as z from "zod/mini";
import { ServiceError } from "../errors";
import { ZOHO_ID_PATTERN } from "../ids";

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
 * The Secrets Manager secret the service runs on. Users write the first six fields; the
 * service writes `access_token`, `api_domain` and `access_token_expires_at`. Unknown fields
 * are kept, so a write-back never loses what someone else stored.
 */
export const ZohoSecretSchema = z.looseObject(
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
    organization_id: z.optional(
      z
        .string({ error: "must be a string" })
        .check(z.regex(ZOHO_ID_PATTERN, "must be 1 to 25 digits")),
    ),
    access_token: z.optional(nonEmpty()),
    api_domain: z.optional(httpUrl()),
    access_token_expires_at: z.optional(z.iso.datetime({ error: "must be an ISO-8601 time" })),
  },
  { error: "must be a JSON object" },
);

export type ZohoSecret = z.infer<typeof ZohoSecretSchema>;

/**
 * Parses the secret's JSON. A malformed secret is a `CONFIGURATION_ERROR` whose message names
 * the fields at fault and never repeats a value.
 */
export function parseSecret(secretString: string | undefined, secretId: string): ZohoSecret {
  return parseSecretJson(secretString, secretId, ZohoSecretSchema);
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
