import type { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import * as z from "zod/mini";
import { ENV_DEFAULTS } from "../config";
import { parseSecretJson } from "../credentials/secret";
import { secretCache } from "../credentials/secret-cache";
import { ServiceError } from "../errors";
import { zohoIdSchema } from "../ids";

// zod/mini ships no message catalogue: each field says what it wants, never what it got.
const secretValue = () =>
  z
    .string({ error: "must be a string" })
    .check(z.minLength(16, "must be at least 16 characters"), z.maxLength(512, "is too long"));
// One for today, one for the rotation: the old and the new are valid at once while senders move.
const secretList = () =>
  z.optional(
    z
      .array(secretValue(), { error: "must be an array of strings" })
      .check(z.maxLength(2, "holds at most 2 (the current one and the next)")),
  );
const headerName = () =>
  z
    .string({ error: "must be a string" })
    .check(
      z.regex(/^[A-Za-z0-9-]{1,64}$/, "must be a header name (letters, digits, -)"),
      z.toLowerCase(),
    );
const dotPath = () =>
  z.string({ error: "must be a dot path" }).check(z.maxLength(200, "is too long"));

/** Where a source's payload says what: dot paths into each event (see `mapWebhookPayload`). */
export const WebhookMappingSchema = z.object(
  {
    /** the list of events; absent: the payload itself (an array is a list of events) */
    events: z.optional(dotPath()),
    contact_id: z.optional(dotPath()),
    email: z.optional(dotPath()),
    /** the wanted status or action; its value is looked up in `actions` */
    action: z.optional(dotPath()),
    organization_id: z.optional(dotPath()),
    /** the sender's id of the event, for dedupe */
    event_id: z.optional(dotPath()),
    /** the sender's values (case-insensitive) and what each asks */
    actions: z.optional(
      z.record(
        z.string(),
        z.enum(["activate", "deactivate"], { error: 'must be "activate" or "deactivate"' }),
      ),
    ),
    /** only the events whose field has one of these values; the others are skipped */
    where: z.optional(
      z.record(
        z.string(),
        z.union([z.string(), z.array(z.string())], { error: "must be a string or strings" }),
      ),
    ),
  },
  { error: "must be an object" },
);

export type WebhookMapping = z.infer<typeof WebhookMappingSchema>;

export const WebhookSourceSchema = z
  .object(
    {
      /** shared secrets: `Authorization: Bearer …`, the `token_header`, or `?token=` */
      tokens: secretList(),
      /** keys of the HMAC-SHA256 signature of `<timestamp>.<raw body>` */
      hmac_secrets: secretList(),
      /** the HubSpot app's client secrets, checking HubSpot's `X-HubSpot-Signature-v3` */
      hubspot_client_secrets: secretList(),
      /** a header the sender puts the token in, when it cannot send `Authorization` */
      token_header: z.optional(headerName()),
      signature_header: z.optional(headerName()),
      timestamp_header: z.optional(headerName()),
      /** a mapping to start from: the sender's usual payload shape */
      preset: z.optional(
        z.enum(["zoho-crm", "hubspot"], { error: 'must be "zoho-crm" or "hubspot"' }),
      ),
      mapping: z.optional(WebhookMappingSchema),
      /** the organization of this source's jobs when the payload names none */
      organization_id: z.optional(zohoIdSchema()),
    },
    { error: "must be an object" },
  )
  .check(
    z.refine(
      (source) =>
        (source.tokens?.length ?? 0) +
          (source.hmac_secrets?.length ?? 0) +
          (source.hubspot_client_secrets?.length ?? 0) >
        0,
      { error: "needs at least one of tokens, hmac_secrets or hubspot_client_secrets" },
    ),
  );

export type WebhookSource = z.infer<typeof WebhookSourceSchema>;

/** Source names are URL segments and the `source` of their jobs. */
export const SOURCE_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export const WebhookConfigSchema = z.record(
  z.string().check(z.regex(SOURCE_NAME_PATTERN, "source names are a-z, 0-9, - and _")),
  WebhookSourceSchema,
  {
    error: (issue) =>
      issue.code === "invalid_key"
        ? "source names are a-z, 0-9, - and _"
        : "must be a JSON object of sources",
  },
);

/** Every configured source, by name. */
export type WebhookConfig = z.infer<typeof WebhookConfigSchema>;

/** A source's configuration with its name (the `{source}` of the URL, the `source` of its jobs). */
export type NamedWebhookSource = WebhookSource & { name: string };

/** The source a `POST /webhooks/{source}` names, or 404 if none is configured by that name. */
export function webhookSource(config: WebhookConfig, name: string | undefined): NamedWebhookSource {
  const source = name !== undefined && Object.hasOwn(config, name) ? config[name] : undefined;
  if (source === undefined) {
    throw new ServiceError("NOT_FOUND", "No webhook source of that name is configured.");
  }
  return { ...source, name: name as string };
}

/**
 * Parses the webhook secret:
 * `{"<source>": {tokens?, hmac_secrets?, hubspot_client_secrets?, token_header?, mapping?}}`.
 * A malformed secret is a `CONFIGURATION_ERROR` naming the fields at fault, never their values.
 */
export function parseWebhookConfig(
  secretString: string | undefined,
  secretId: string,
): WebhookConfig {
  return parseSecretJson(secretString, secretId, WebhookConfigSchema);
}

export interface WebhookConfigStoreOptions {
  secretsManager: SecretsManagerClient;
  /** the secret's name or ARN (`WEBHOOK_SECRET_ID`) */
  secretId: string;
  /** how long a container trusts its cached copy; default 300 (`SECRET_CACHE_TTL_SECONDS`) */
  maxAgeSeconds?: number;
  now?: () => number;
}

/**
 * Reads the webhook secret and keeps it for `maxAgeSeconds`, as the Zoho secret is kept: a
 * rotated token is picked up within that time. One read at a time per container.
 *
 * @example
 * const webhooks = webhookConfigStore({ secretsManager, secretId: "zoho/webhooks" });
 * const source = (await webhooks.get())["hubspot"];
 */
export function webhookConfigStore(options: WebhookConfigStoreOptions) {
  const secret = secretCache({
    secretsManager: options.secretsManager,
    secretId: options.secretId,
    what: "the webhook secret",
    maxAgeSeconds: options.maxAgeSeconds ?? ENV_DEFAULTS.SECRET_CACHE_TTL_SECONDS,
    parse: parseWebhookConfig,
    ...(options.now ? { now: options.now } : {}),
  });
  return {
    /** The sources, from the cache unless it is older than `maxAgeSeconds` or `forceFetch`. */
    async get(forceFetch = false): Promise<WebhookConfig> {
      return (await secret.get(forceFetch)).value;
    },
  };
}
