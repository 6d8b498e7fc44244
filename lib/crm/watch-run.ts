import { MetricUnit } from "@aws-lambda-powertools/metrics";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { Config } from "../config";
import { organizationFor, type SecretReader } from "../credentials/secret";
import { ServiceError, toServiceError } from "../errors";
import { errorForLog, logger, metrics } from "../observability";
import type { SyncInput } from "../sync/sync";
import type { AccessTokenSource } from "../zoho/books-client";
import {
  askedExpiry,
  type ListedChannel,
  newChannelId,
  newWatchToken,
  notifyUrl,
  OLD_TOKEN_GRACE_MS,
  planWatch,
  tokenDigest,
  type WatchApi,
  WatchApi as WatchApiClient,
  type WatchConfig,
  WatchLedger,
  type WatchState,
} from "./watch";
import { ZohoCrmClient } from "./zoho-crm-client";

/**
 * One watch run of the scheduled sync (`{"mode": "watch"}`, every 6 hours by default): keeps the
 * organization's Zoho CRM notification channel alive for a `zoho_crm` source (lib/crm/watch.ts).
 * A GET of the channels always (1 CRM call), and a POST or PUT when the channel must be enabled or
 * renewed (about once in 5 days): some 5 CRM credits a day.
 */

export interface WatchRunDependencies {
  tokens: AccessTokenSource & SecretReader;
  dynamo: DynamoDBClient;
  table: string;
  /** `API_BASE_URL`: where the HTTP API answers */
  apiBaseUrl: string | undefined;
  timeoutMs: number;
  fetch?: typeof fetch;
  now?: () => Date;
}

/** What a watch run did; returned and logged. */
export interface WatchSummary {
  organization_id: string;
  mode: "watch";
  source_type: string;
  /**
   * enabled, renewed, kept; disabled (`"notifications": false` turned a channel off); off (opted
   * out, none to turn off); not_applicable (not a zoho_crm source)
   */
  channel: "enabled" | "renewed" | "kept" | "disabled" | "off" | "not_applicable";
  channel_id?: string;
  channel_expiry?: string;
  crm_calls: number;
}

/**
 * Enables, renews or keeps the channel (see `planWatch`), and records it with the source it
 * serves. A renewal gives the channel a new token; the old one is still taken until the new one
 * is confirmed, then for {@link OLD_TOKEN_GRACE_MS}.
 */
export async function runWatch(
  deps: WatchRunDependencies,
  input: SyncInput,
): Promise<WatchSummary> {
  const { organizationId } = await organizationFor(deps.tokens, input.organization_id);
  const { source } = input;
  const summary = {
    organization_id: organizationId,
    mode: "watch" as const,
    source_type: source.type,
  };
  if (source.type !== "zoho_crm") return { ...summary, channel: "not_applicable", crm_calls: 0 };
  const now = (deps.now ?? (() => new Date()))();
  const ledger = new WatchLedger({ dynamo: deps.dynamo, table: deps.table });
  const crm = new ZohoCrmClient({
    tokens: deps.tokens,
    timeoutMs: deps.timeoutMs,
    ...fetchOf(deps),
  });
  const api = new WatchApiClient(crm, deps.tokens);
  const state = await ledger.get(organizationId);
  if (source.notifications === false) {
    if (!state) return { ...summary, channel: "off", crm_calls: 0 };
    await api.disable(state.channelId);
    await ledger.delete(organizationId);
    return { ...summary, channel: "disabled", channel_id: state.channelId, crm_calls: api.calls };
  }
  if (!deps.apiBaseUrl)
    throw new ServiceError(
      "CONFIGURATION_ERROR",
      'Environment: API_BASE_URL is required for Zoho CRM notifications (the HTTP API\'s URL), or set "notifications": false on the source.',
    );
  const url = notifyUrl(deps.apiBaseUrl, organizationId);
  const events = [`${source.module}.create`, `${source.module}.edit`];
  const config: WatchConfig = {
    source,
    apply_deactivations: input.apply_deactivations,
    guard: { outstanding: input.guard.outstanding },
  };
  await api.checkScope();
  const channels = await api.list();
  // ours by the id the ledger keeps; else one already pointing at our route (a lost ledger item)
  const listed =
    channels.find((c) => c.channel_id === state?.channelId) ??
    channels.find((c) => c.notify_url === url);
  const plan = planWatch({ listed, wanted: { events, notifyUrl: url }, now });
  if (plan === "keep" && state && listed) {
    if (JSON.stringify(state.config) !== JSON.stringify(config))
      await ledger.put(organizationId, { ...state, config }, now);
    return { ...summary, channel: "kept", ...channelOf(listed), crm_calls: api.calls };
  }
  const saved = await saveChannel(api, ledger, organizationId, {
    state,
    listed,
    config,
    item: { events, notify_url: url },
    now,
  });
  const channel = plan === "enable" ? "enabled" : "renewed";
  logger.info("Zoho CRM notification channel saved", { channel, ...saved });
  return { ...summary, channel, ...saved, crm_calls: api.calls };
}

/**
 * The scheduled sync's `{"mode": "watch"}` run with the function's dependencies (the input is
 * checked as a sync's), logged and counted; a failure is logged and rethrown (the sync's alarm).
 */
export async function runScheduledWatch(
  deps: { tokens: WatchRunDependencies["tokens"]; dynamo: DynamoDBClient; config: Config },
  input: SyncInput,
): Promise<WatchSummary> {
  const { config } = deps;
  try {
    const summary = await runWatch(
      {
        tokens: deps.tokens,
        dynamo: deps.dynamo,
        table: config.ZOHO_LEDGER_TABLE,
        apiBaseUrl: config.API_BASE_URL,
        timeoutMs: config.ZOHO_HTTP_TIMEOUT_MS,
      },
      input,
    );
    logger.info("Watch run finished", { ...summary });
    metrics.addMetric("CrmWatchCalls", MetricUnit.Count, summary.crm_calls);
    return summary;
  } catch (thrown) {
    const error = toServiceError(thrown);
    logger.error("Watch run failed", { error: errorForLog(error), details: error.details });
    metrics.addMetric("SyncFailed", MetricUnit.Count, 1);
    throw error;
  }
}

const fetchOf = (deps: WatchRunDependencies) => (deps.fetch ? { fetch: deps.fetch } : {});
const channelOf = (c: ListedChannel) => ({
  channel_id: c.channel_id,
  channel_expiry: c.channel_expiry,
});

/**
 * POST (no live channel) or PUT (replace ours) with a new token and a week's expiry less the
 * margin. The new token's digest is in the ledger before Zoho can send it; the old ones stay
 * until Zoho confirmed the new one, then for the grace period.
 */
async function saveChannel(
  api: WatchApi,
  ledger: WatchLedger,
  organizationId: string,
  run: {
    state: WatchState | undefined;
    listed: ListedChannel | undefined;
    config: WatchConfig;
    item: { events: string[]; notify_url: string };
    now: Date;
  },
): Promise<{ channel_id: string; channel_expiry: string }> {
  const { state, listed, config, now } = run;
  const channelId = listed?.channel_id ?? state?.channelId ?? newChannelId();
  const token = newWatchToken();
  const fresh = { sha256: tokenDigest(token) };
  const live = (state?.tokens ?? []).filter((t) => (t.validUntil ?? Infinity) > now.getTime());
  await ledger.put(organizationId, { channelId, tokens: [...live, fresh], config }, now);
  const asked = askedExpiry(now);
  const item = {
    channel_id: channelId,
    ...run.item,
    token,
    channel_expiry: asked,
    return_affected_field_values: true,
    notify_on_related_action: false,
  };
  let expiry = await api.save(listed ? "PUT" : "POST", item);
  if (expiry === "NOT_SUBSCRIBED") expiry = await api.save("POST", item);
  if (Date.parse(expiry) < Date.parse(asked) - 86_400_000)
    logger.warn(
      "Zoho CRM gave the channel a shorter life than asked; the next watch run renews it",
      {
        asked,
        answered: expiry,
      },
    );
  const graceUntil = now.getTime() + OLD_TOKEN_GRACE_MS;
  const retired = live.map((t) => ({
    sha256: t.sha256,
    validUntil: Math.min(t.validUntil ?? graceUntil, graceUntil),
  }));
  await ledger.put(
    organizationId,
    { channelId, tokens: [fresh, ...retired], config, channelExpiry: expiry },
    now,
  );
  return { channel_id: channelId, channel_expiry: expiry };
}
