import type { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import * as z from "zod/mini";
import { ENV_DEFAULTS } from "../config";
import { parseSecretJson } from "../credentials/secret";
import { secretCache } from "../credentials/secret-cache";
import { ServiceError } from "../errors";
import { parseJsonObject } from "../zoho/accounts";
import type { HubSpotObject, HubSpotSearchBody } from "./hubspot-query";

/**
 * HubSpot's CRM search (`POST {base}/crm/v3/objects/{companies|contacts}/search`) as the sync
 * reads it, with plain `fetch` (the official client is ~13 MiB with node-fetch v2 for one
 * endpoint). The private-app token comes from the Secrets Manager secret `HUBSPOT_SECRET_ID`
 * (`{"access_token": "pat-…"}`), only read, cached like the Zoho secret.
 *
 * HubSpot allows 5 searches a second per account and answers search without rate-limit headers
 * ("Search the CRM", Limits), so the client paces its own searches: at most
 * {@link SEARCHES_PER_SECOND} a second, leaving one for the account's other integrations.
 */

/** The client's own pace: HubSpot allows 5 searches a second per account. */
export const SEARCHES_PER_SECOND = 4;

/** The HubSpot secret: a private app's access token. Other fields are accepted and ignored. */
export const HubSpotSecretSchema = z.looseObject(
  {
    access_token: z
      .string({ error: "must be a string" })
      .check(z.minLength(1, "must not be empty")),
  },
  { error: "must be a JSON object" },
);

export type HubSpotSecret = z.infer<typeof HubSpotSecretSchema>;

/** One search result: its id and its properties (strings, or null when empty). */
export interface HubSpotResult {
  id: string;
  properties: Record<string, string | null>;
}

export interface HubSpotClientOptions {
  secretsManager: SecretsManagerClient;
  /** `HUBSPOT_SECRET_ID` */
  secretId: string;
  /** `HUBSPOT_API_URL`; default https://api.hubapi.com */
  baseUrl?: string;
  /** `SECRET_CACHE_TTL_SECONDS`; default 300 */
  cacheTtlSeconds?: number;
  /** per-request timeout; default 10000 */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/**
 * Searches HubSpot's companies or contacts.
 *
 * @example
 * const hubspot = new HubSpotClient({ secretsManager, secretId: "hubspot/token" });
 * const { results } = await hubspot.search("companies", buildHubSpotSearch({ object: "companies", rules, now }));
 */
export class HubSpotClient {
  readonly #secret: ReturnType<typeof secretCache<HubSpotSecret>>;
  readonly #baseUrl: string;
  readonly #timeoutMs: number;
  readonly #fetch: typeof fetch;
  /** when (epoch ms) the next search may start */
  #nextSearchAt = 0;
  /** HubSpot calls made through this client */
  calls = 0;

  constructor(options: HubSpotClientOptions) {
    this.#secret = secretCache({
      secretsManager: options.secretsManager,
      secretId: options.secretId,
      what: "the HubSpot secret",
      maxAgeSeconds: options.cacheTtlSeconds ?? ENV_DEFAULTS.SECRET_CACHE_TTL_SECONDS,
      parse: (text, id) => parseSecretJson(text, id, HubSpotSecretSchema),
    });
    this.#baseUrl = options.baseUrl ?? ENV_DEFAULTS.HUBSPOT_API_URL;
    this.#timeoutMs = options.timeoutMs ?? ENV_DEFAULTS.ZOHO_HTTP_TIMEOUT_MS;
    this.#fetch = options.fetch ?? fetch;
  }

  /** One search page. Errors: CRM_UNAUTHORIZED (401, 403 naming the scope), CRM_RATE_LIMITED, CRM_UNAVAILABLE, INVALID_REQUEST (400). */
  async search(
    object: HubSpotObject,
    body: HubSpotSearchBody,
  ): Promise<{ results: HubSpotResult[]; total: number }> {
    const { value: secret } = await this.#secret.get();
    await this.#pace();
    const url = new URL(`/crm/v3/objects/${object}/search`, this.#baseUrl);
    this.calls++;
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), this.#timeoutMs);
    let status: number;
    let answer: Record<string, unknown> | undefined;
    try {
      const response = await this.#fetch(url, {
        method: "POST",
        headers: {
          Authorization: `Bearer ${secret.access_token}`,
          "Content-Type": "application/json",
          Accept: "application/json",
        },
        body: JSON.stringify(body),
        signal: timeout.signal,
      });
      status = response.status;
      answer = parseJsonObject(await response.text());
    } catch (error) {
      if (timeout.signal.aborted)
        throw new ServiceError(
          "CRM_UNAVAILABLE",
          `HubSpot did not answer within ${this.#timeoutMs} ms; nothing was queued.`,
          { httpStatus: 504 },
        );
      throw new ServiceError(
        "CRM_UNAVAILABLE",
        `Could not reach HubSpot at ${url.origin}; nothing was queued.`,
        { cause: error },
      );
    } finally {
      clearTimeout(timer);
    }
    if (status === 200 && answer && Array.isArray(answer.results))
      return {
        results: answer.results as HubSpotResult[],
        total: typeof answer.total === "number" ? answer.total : answer.results.length,
      };
    throw hubSpotAnswerToError(status, answer, object);
  }

  /** Spaces search starts 1/SEARCHES_PER_SECOND apart (HubSpot sends no headers to pace by). */
  async #pace(): Promise<void> {
    const now = Date.now();
    const wait = this.#nextSearchAt - now;
    this.#nextSearchAt = Math.max(now, this.#nextSearchAt) + 1000 / SEARCHES_PER_SECOND;
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

/** The read scope a search of `object` needs. */
export const hubSpotReadScope = (object: HubSpotObject) => `crm.objects.${object}.read`;

function hubSpotAnswerToError(
  status: number,
  body: Record<string, unknown> | undefined,
  object: HubSpotObject,
): ServiceError {
  const message = typeof body?.message === "string" ? body.message : undefined;
  const category = typeof body?.category === "string" ? body.category : undefined;
  const said = `HubSpot answered HTTP ${status}${category ? ` ${category}` : ""}${message ? `: ${message}` : ""}`;
  if (status === 429) {
    const policy = typeof body?.policyName === "string" ? body.policyName : undefined;
    return new ServiceError(
      "CRM_RATE_LIMITED",
      `${said}${policy ? ` (${policy})` : ""}. Nothing was queued; the next scheduled run reads again.`,
      { ...(policy ? { details: { policy } } : {}) },
    );
  }
  if (status >= 500) return new ServiceError("CRM_UNAVAILABLE", `${said}; nothing was queued.`);
  if (status === 401)
    return new ServiceError(
      "CRM_UNAUTHORIZED",
      `${said}. The private-app token in HUBSPOT_SECRET_ID is wrong or revoked; nothing was queued.`,
    );
  if (status === 403)
    return new ServiceError(
      "CRM_UNAUTHORIZED",
      `HubSpot refused the search (HTTP 403${category ? ` ${category}` : ""}): the private app lacks the scope ${hubSpotReadScope(object)}; grant it to the app. Nothing was queued.`,
      { details: { missing_scopes: [hubSpotReadScope(object)] } },
    );
  if (status === 400)
    return new ServiceError(
      "INVALID_REQUEST",
      `${said}. Check the source's property names against HubSpot's (Settings > Properties, internal name); nothing was queued.`,
    );
  return new ServiceError(
    "CRM_UNAVAILABLE",
    `${said} (not an answer the service knows); nothing was queued.`,
  );
}
