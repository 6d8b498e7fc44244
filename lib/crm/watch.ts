import { createHash, randomBytes, randomInt, timingSafeEqual } from "node:crypto";
import { DeleteItemCommand, type DynamoDBClient, PutItemCommand } from "@aws-sdk/client-dynamodb";
import * as z from "zod/mini";
import { ServiceError } from "../errors";
import { getLedgerItem, ledgerError, str } from "../ledger/dynamo";
import { ledgerKeys } from "../ledger/keys";
import { logger } from "../observability";
import type { AccessTokenSource } from "../zoho/books-client";
import type { ZohoCrmSource } from "./source";
import type { CrmAnswer, ZohoCrmClient } from "./zoho-crm-client";

/**
 * Zoho CRM change notifications, the channel side (issue 18, item 6): the scheduled sync's watch
 * runs (`{"mode": "watch"}`) enable the organization's notification channel
 * (`POST {api_domain}/crm/v8/actions/watch`), renew it (PUT) well before its expiry, and enable it
 * again when Zoho dropped it. The channel, the digests of its tokens and the source it serves are
 * one ledger item (`ledgerKeys.crmWatch`), which the webhook route reads to check a notification.
 *
 * Zoho's rules relied on (Enable / Update Notification pages, crm-oas v8 notifications, Kaizen
 * #170): a channel lives at most one week (none, or more, gives one hour, silently); `channel_id`
 * is a long the client picks; `token` is echoed in every notification (at most 50 characters on
 * the v7 pages, 256 in the v8 OpenAPI); `notify_on_related_action` defaults to true (a contact's
 * edit notifies its account's channel), so it is turned off.
 */

/** The webhook source name the channel's `notify_url` points at (a built-in route). */
export const WATCH_SOURCE = "zoho-crm-notifications";
/** The scope the watch calls need (or READ + CREATE + UPDATE, each also given by WRITE). */
export const NOTIFICATIONS_SCOPE = "ZohoCRM.notifications.ALL";

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** Zoho's longest channel: one week. More is not refused: it gives one hour. */
export const CHANNEL_MAX_MS = 7 * DAY_MS;
/** Asked expiry = now + a week - this, so a clock ahead of Zoho's never asks for more than a week. */
export const CHANNEL_MARGIN_MS = HOUR_MS;
/** A channel expiring sooner than this is renewed (the watch rule runs every 6 hours). */
export const RENEW_WITHIN_MS = 2 * DAY_MS;
/** A replaced token is still taken this long: notifications sent before the renewal may be in flight. */
export const OLD_TOKEN_GRACE_MS = HOUR_MS;
/** 40 characters of base64url (240 random bits): at least 32, within Zoho's 50. */
const TOKEN_BYTES = 30;

/** The schedule's source and options, as the last watch run saw them: what a notification applies. */
export interface WatchConfig {
  source: ZohoCrmSource;
  apply_deactivations: boolean;
  guard: { outstanding: boolean };
}

/** The organization's channel as the ledger keeps it. No token: only its SHA-256. */
export interface WatchState {
  channelId: string;
  /** digests (hex) of the tokens a notification may carry; a replaced one until `validUntil` (epoch ms) */
  tokens: Array<{ sha256: string; validUntil?: number }>;
  /** as Zoho answered it */
  channelExpiry?: string;
  config: WatchConfig;
}

const StoredTokens = z.array(z.object({ sha256: z.string(), validUntil: z.optional(z.number()) }));
// The source as the sync's schema parsed it (its match strategies already objects): written by a
// watch run from a checked input, so only its shape is checked here.
const StoredConfig = z.object({
  source: z.custom<ZohoCrmSource>(
    (value) =>
      typeof value === "object" &&
      value !== null &&
      (value as { type?: unknown }).type === "zoho_crm" &&
      Array.isArray((value as { rules?: unknown }).rules) &&
      Array.isArray((value as { match?: unknown }).match),
  ),
  apply_deactivations: z.boolean(),
  guard: z.object({ outstanding: z.boolean() }),
});

/**
 * The channel's ledger item (`ledgerKeys.crmWatch`).
 *
 * @example
 * const watch = new WatchLedger({ dynamo, table });
 * const state = await watch.get("123456789");
 */
export class WatchLedger {
  readonly #dynamo: DynamoDBClient;
  readonly #table: string;

  constructor(options: { dynamo: DynamoDBClient; table: string }) {
    this.#dynamo = options.dynamo;
    this.#table = options.table;
  }

  /** The item, or undefined when there is none or it cannot be read as one (then a run enables anew). */
  async get(organizationId: string): Promise<WatchState | undefined> {
    const item = await getLedgerItem(
      this.#dynamo,
      this.#table,
      ledgerKeys.crmWatch(organizationId),
    );
    const channelId = str(item?.channel_id);
    if (!item || channelId === undefined) return undefined;
    try {
      const tokens = StoredTokens.parse(JSON.parse(str(item.tokens) ?? "[]"));
      const config = StoredConfig.parse(JSON.parse(str(item.config) ?? "null"));
      const expiry = str(item.channel_expiry);
      return { channelId, tokens, config, ...(expiry ? { channelExpiry: expiry } : {}) };
    } catch {
      logger.warn("The CRM watch item of the ledger cannot be read; a watch run enables anew");
      return undefined;
    }
  }

  async put(organizationId: string, state: WatchState, now: Date): Promise<void> {
    try {
      await this.#dynamo.send(
        new PutItemCommand({
          TableName: this.#table,
          Item: {
            ...ledgerKeys.crmWatch(organizationId),
            channel_id: { S: state.channelId },
            tokens: { S: JSON.stringify(state.tokens) },
            config: { S: JSON.stringify(state.config) },
            ...(state.channelExpiry ? { channel_expiry: { S: state.channelExpiry } } : {}),
            updated_at: { S: now.toISOString() },
          },
        }),
      );
    } catch (error) {
      throw ledgerError(error, this.#table);
    }
  }

  async delete(organizationId: string): Promise<void> {
    try {
      await this.#dynamo.send(
        new DeleteItemCommand({ TableName: this.#table, Key: ledgerKeys.crmWatch(organizationId) }),
      );
    } catch (error) {
      throw ledgerError(error, this.#table);
    }
  }
}

/** A new channel token: {@link TOKEN_BYTES} random bytes, base64url (no character Zoho could mangle). */
export function newWatchToken(): string {
  return randomBytes(TOKEN_BYTES).toString("base64url");
}

/** A new channel id: Zoho's `channel_id` is a long the client picks; 14 digits stay a safe integer. */
export function newChannelId(): string {
  // randomInt's range is at most 2^48
  return String(randomInt(10_000_000_000_000, 99_999_999_999_999));
}

/** The SHA-256 (hex) of a token: all the ledger keeps of it. */
export function tokenDigest(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/**
 * Whether `token` is one the channel's state takes, compared in constant time (`timingSafeEqual` on
 * the equal-length SHA-256 digests, so neither the length nor a prefix leaks), every digest tried.
 *
 * @example
 * tokenAccepted(state, body.token, Date.now()); // false for a missing, wrong or retired token
 */
export function tokenAccepted(state: WatchState, token: unknown, now: number): boolean {
  if (typeof token !== "string" || token === "") return false;
  const given = createHash("sha256").update(token, "utf8").digest();
  let accepted = false;
  for (const { sha256, validUntil } of state.tokens) {
    const stored = Buffer.from(sha256, "hex");
    const live = validUntil === undefined || validUntil > now;
    if (stored.length === given.length && timingSafeEqual(stored, given) && live) accepted = true;
  }
  return accepted;
}

/** The channel as `GET /actions/watch` lists it (what a run compares). */
export interface ListedChannel {
  channel_id: string;
  events: string[];
  notify_url: string;
  channel_expiry: string;
}

/** What a watch run does with the organization's channel. */
export type WatchPlan = "enable" | "renew" | "keep";

/**
 * Pure: enable when the ledger names no channel or Zoho lists none by its id (expired, dropped,
 * disabled by hand); renew when it expires within {@link RENEW_WITHIN_MS} or watches other events
 * or another URL than the source wants; else keep.
 *
 * @example
 * planWatch({ listed, wanted: { events: ["Accounts.create", "Accounts.edit"], notifyUrl }, now });
 */
export function planWatch(options: {
  listed: ListedChannel | undefined;
  wanted: { events: string[]; notifyUrl: string };
  now: Date;
}): WatchPlan {
  const { listed, wanted, now } = options;
  if (!listed) return "enable";
  const expiresAt = Date.parse(listed.channel_expiry);
  if (Number.isNaN(expiresAt) || expiresAt - now.getTime() < RENEW_WITHIN_MS) return "renew";
  const sameEvents = [...listed.events].sort().join(",") === [...wanted.events].sort().join(",");
  return sameEvents && listed.notify_url === wanted.notifyUrl ? "keep" : "renew";
}

/** The expiry to ask for: now + a week - the margin, as Zoho writes times (second, `+00:00`). */
export function askedExpiry(now: Date): string {
  return zohoTime(new Date(now.getTime() + CHANNEL_MAX_MS - CHANNEL_MARGIN_MS));
}

const zohoTime = (at: Date) => `${at.toISOString().slice(0, 19)}+00:00`;

/**
 * `notify_url` of an organization's channel: the HTTP API's webhook route for the built-in source,
 * the organization in the query (Zoho keeps a notify_url's query, and echoes it as `query_params`).
 */
export function notifyUrl(apiBaseUrl: string, organizationId: string): string {
  const url = `${apiBaseUrl.replace(/\/+$/, "")}/webhooks/${WATCH_SOURCE}?organization_id=${organizationId}`;
  if (url.length > 255)
    throw new ServiceError(
      "CONFIGURATION_ERROR",
      `The notify_url would be ${url.length} characters; Zoho CRM takes at most 255. Use a shorter API_BASE_URL.`,
    );
  return url;
}

/**
 * The scopes a watch run needs that `scope` (a grant's) lacks: `[NOTIFICATIONS_SCOPE]` unless it
 * holds ALL, or READ with CREATE and UPDATE (WRITE gives both). Case-insensitive, as Zoho's are.
 *
 * @example
 * missingNotificationScopes("ZohoBooks.contacts.ALL ZohoCRM.coql.READ"); // ["ZohoCRM.notifications.ALL"]
 */
export function missingNotificationScopes(scope: string): string[] {
  const granted = new Set(
    scope
      .split(/[\s,]+/)
      .filter(Boolean)
      .map((s) => s.toLowerCase()),
  );
  const has = (...names: string[]) =>
    names.some((name) => granted.has(`zohocrm.notifications.${name}`));
  if (has("all") || (has("read") && has("create", "write") && has("update", "write"))) return [];
  return [NOTIFICATIONS_SCOPE];
}

export function scopeRefusal(why: string): ServiceError {
  return new ServiceError(
    "CRM_UNAUTHORIZED",
    `Zoho CRM: ${why} ${NOTIFICATIONS_SCOPE}, which the notification channel needs; no channel was enabled. Generate a new refresh token with the Books scopes, the CRM scopes and ${NOTIFICATIONS_SCOPE} (one grant carries them all) and store it as refresh_token in the secret, or set "notifications": false on the source.`,
    { details: { missing_scopes: [NOTIFICATIONS_SCOPE] } },
  );
}

/** What the watch calls need. */
/**
 * `{api_domain}/crm/v8/actions/watch`, through the CRM client (the Books connection's token, the
 * same grant; its calls counted there, each spends CRM credits).
 */
export class WatchApi {
  readonly #crm: ZohoCrmClient;
  readonly #tokens: AccessTokenSource;

  constructor(crm: ZohoCrmClient, tokens: AccessTokenSource) {
    this.#crm = crm;
    this.#tokens = tokens;
  }

  get calls(): number {
    return this.#crm.calls;
  }

  /** Refuses, before any call, a grant whose `scope` lacks the notification scope. */
  async checkScope(): Promise<void> {
    const token = await this.#tokens.getAccessToken();
    if (token.scope && missingNotificationScopes(token.scope).length > 0)
      throw scopeRefusal("the grant's scope lacks");
  }

  /** Every channel of the organization's CRM (`[]` for 204). */
  async list(): Promise<ListedChannel[]> {
    const answer = await this.#call("GET", undefined);
    if (answer.status === 204) return [];
    const watch = answer.body?.watch;
    if (answer.status !== 200 || !Array.isArray(watch)) throw unexpected(answer);
    return watch.map((w: Record<string, unknown>) => ({
      channel_id: String(w.channel_id),
      events: Array.isArray(w.events) ? w.events.map(String) : [],
      notify_url: String(w.notify_url ?? ""),
      channel_expiry: String(w.channel_expiry ?? ""),
    }));
  }

  /**
   * Enables (POST) or replaces (PUT) one channel; the expiry Zoho answered, or `"NOT_SUBSCRIBED"`
   * when a PUT finds no such channel (it went between the list and the call).
   */
  async save(method: "POST" | "PUT", item: Record<string, unknown>): Promise<string> {
    const answer = await this.#call(method, { watch: [item] });
    const result = (answer.body?.watch as Array<Record<string, unknown>> | undefined)?.[0];
    if (result?.status === "success") {
      const details = result.details as
        | { events?: Array<{ channel_expiry?: unknown }> }
        | undefined;
      const expiry = details?.events?.[0]?.channel_expiry;
      if (typeof expiry === "string") return expiry;
    }
    if (method === "PUT" && result?.code === "NOT_SUBSCRIBED") return "NOT_SUBSCRIBED";
    throw unexpected(answer, result);
  }

  /** Disables channels (`DELETE ?channel_ids=`); one Zoho no longer has is no failure. */
  async disable(channelId: string): Promise<void> {
    const answer = await this.#call("DELETE", undefined, `?channel_ids=${channelId}`);
    const result = (answer.body?.watch as Array<Record<string, unknown>> | undefined)?.[0];
    if (result?.status === "success" || result?.code === "NOT_SUBSCRIBED") return;
    throw unexpected(answer, result);
  }

  async #call(method: string, body: unknown, query = ""): Promise<CrmAnswer> {
    const answer = await this.#crm.request(method, `/crm/v8/actions/watch${query}`, body);
    // a 400 or 207 says per item what Zoho refused: save() reads it
    if (answer.status <= 400) return answer;
    throw watchError(answer);
  }
}

function said(answer: CrmAnswer, result?: Record<string, unknown>): string {
  const body = result ?? answer.body;
  const code = typeof body?.code === "string" ? ` ${body.code}` : "";
  const message = typeof body?.message === "string" ? `: ${body.message}` : "";
  return `Zoho CRM's notification API answered HTTP ${answer.status}${code}${message}`;
}

/** A refusal of a watch call, by HTTP status first (Zoho's 429 codes vary), then by code. */
function watchError(answer: CrmAnswer): ServiceError {
  const code = answer.body?.code;
  if (answer.status === 429)
    return new ServiceError("CRM_RATE_LIMITED", `${said(answer)}; the next watch run tries again.`);
  if (answer.status >= 500) return new ServiceError("CRM_UNAVAILABLE", `${said(answer)}.`);
  if (code === "OAUTH_SCOPE_MISMATCH") return scopeRefusal(`${said(answer)}: the grant may lack`);
  if (answer.status === 401 || answer.status === 403)
    return new ServiceError(
      "CRM_UNAUTHORIZED",
      `${said(answer)}: the token was refused, or the CRM user's profile may not manage notifications.`,
    );
  return unexpected(answer);
}

function unexpected(answer: CrmAnswer, result?: Record<string, unknown>): ServiceError {
  const details = result?.details ?? answer.body?.details;
  return new ServiceError("CRM_UNAVAILABLE", `${said(answer, result)} (not an answer expected).`, {
    ...(details ? { details: { zoho_details: details } } : {}),
  });
}
