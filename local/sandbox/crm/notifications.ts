import { type CrmModuleName, crmModule } from "./schema";

/** A notification channel as the sandbox keeps it (Zoho's watch object, expiry in ms). */
export interface CrmChannel {
  channel_id: string;
  events: string[];
  notify_url: string;
  token: string | null;
  /** ms since the epoch, sandbox clock */
  expiresAt: number;
  return_affected_field_values: boolean;
  notification_condition: unknown[] | null;
  notify_on_related_action: boolean;
}

/** One delivery attempt, as tests read it (`sandbox.crm.deliveries()`). */
export interface CrmDelivery {
  at: number;
  channel_id: string;
  notify_url: string;
  /** "sent": the receiver answered 2xx; "lost": crmNotifyFailNext; "failed": refused, unreachable or not 2xx */
  outcome: "sent" | "lost" | "failed";
  status?: number;
  body: Record<string, unknown>;
}

/** The event operations a watch takes: `Module.create|edit|delete|all`. */
const OPERATIONS = ["create", "edit", "delete", "all"] as const;
/** At most one week ahead (API v4 on); none, or more, gives one hour (see README.md). */
export const WATCH_MAX_EXPIRY_MS = 7 * 86_400_000;
export const WATCH_DEFAULT_EXPIRY_MS = 3_600_000;
/** Zoho's `channel_expiry` form: ISO 8601 with a ±hh:mm offset. */
const EXPIRY = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:[+-]\d{2}:\d{2}|Z)$/;

/** A per-item refusal, in the `watch` array of the answer. */
export interface WatchError {
  code: string;
  details: Record<string, unknown>;
  message: string;
  status: "error";
}

function invalid(index: number, field: string, more: Record<string, unknown> = {}): WatchError {
  return {
    code: "INVALID_DATA",
    details: { api_name: field, json_path: `$.watch[${index}].${field}`, ...more },
    message: "invalid data",
    status: "error",
  };
}

function mandatory(index: number, field: string): WatchError {
  return {
    code: "MANDATORY_NOT_FOUND",
    details: { api_name: field, json_path: `$.watch[${index}].${field}` },
    message: "required field not found",
    status: "error",
  };
}

/**
 * Reads one item of an enable (POST) or replace (PUT) body into a channel, or says why Zoho would
 * refuse it. `existing` fills what a partial update (PATCH) leaves out.
 */
export function readChannel(
  item: unknown,
  index: number,
  now: number,
  tokenMaxLength: number,
  existing?: CrmChannel,
): CrmChannel | WatchError {
  if (typeof item !== "object" || item === null || Array.isArray(item))
    return invalid(index, "watch", { expected_data_type: "jsonobject" });
  const w = item as Record<string, unknown>;
  const channelId = w.channel_id ?? existing?.channel_id;
  if (channelId === undefined) return mandatory(index, "channel_id");
  if (!/^\d{1,64}$/.test(String(channelId)))
    return invalid(index, "channel_id", { expected_data_type: "long" });
  const events = w.events ?? existing?.events;
  if (events === undefined) return mandatory(index, "events");
  if (!Array.isArray(events) || events.length === 0 || events.length > 50)
    return invalid(index, "events", { expected_data_type: "jsonarray" });
  for (const event of events) {
    const [module, operation, extra] = String(event).split(".");
    if (
      typeof event !== "string" ||
      extra !== undefined ||
      !crmModule(module ?? "") ||
      !OPERATIONS.includes(operation as (typeof OPERATIONS)[number])
    )
      return invalid(index, "events", { value: event });
  }
  const notifyUrl = w.notify_url ?? existing?.notify_url;
  if (notifyUrl === undefined) return mandatory(index, "notify_url");
  if (
    typeof notifyUrl !== "string" ||
    notifyUrl.length > 255 ||
    !/^https?:\/\/\S+$/.test(notifyUrl)
  )
    return invalid(index, "notify_url");
  const token = w.token === undefined ? (existing?.token ?? null) : w.token;
  if (token !== null && (typeof token !== "string" || token.length > tokenMaxLength))
    return invalid(index, "token", { maximum_length: tokenMaxLength });
  let expiresAt = existing?.expiresAt ?? now + WATCH_DEFAULT_EXPIRY_MS;
  if (w.channel_expiry !== undefined && w.channel_expiry !== null) {
    const at = typeof w.channel_expiry === "string" ? Date.parse(w.channel_expiry) : Number.NaN;
    if (!EXPIRY.test(String(w.channel_expiry)) || Number.isNaN(at) || at <= now)
      return invalid(index, "channel_expiry", { expected_data_type: "datetime" });
    // Beyond a week Zoho does not refuse: it gives the default hour.
    expiresAt = at - now > WATCH_MAX_EXPIRY_MS ? now + WATCH_DEFAULT_EXPIRY_MS : at;
  } else if (!existing) {
    expiresAt = now + WATCH_DEFAULT_EXPIRY_MS;
  }
  const affected =
    w.return_affected_field_values ?? existing?.return_affected_field_values ?? false;
  if (typeof affected !== "boolean") return invalid(index, "return_affected_field_values");
  const condition = w.notification_condition ?? existing?.notification_condition ?? null;
  if (condition !== null && (!Array.isArray(condition) || condition.length > 2))
    return invalid(index, "notification_condition", { expected_data_type: "jsonarray" });
  const related = w.notify_on_related_action ?? existing?.notify_on_related_action ?? true;
  if (typeof related !== "boolean") return invalid(index, "notify_on_related_action");
  return {
    channel_id: String(channelId),
    events: [...new Set(events as string[])],
    notify_url: notifyUrl,
    token: token as string | null,
    expiresAt,
    return_affected_field_values: affected,
    notification_condition: condition as unknown[] | null,
    notify_on_related_action: related,
  };
}

/** The modules a channel watches, in the order its events name them. */
export function watchedModules(channel: CrmChannel): CrmModuleName[] {
  return [...new Set(channel.events.map((e) => e.split(".")[0] as CrmModuleName))];
}

/** Whether the channel takes `Module.operation` (an `all` event takes every operation). */
export function watches(channel: CrmChannel, module: string, operation: string): boolean {
  return (
    channel.events.includes(`${module}.${operation}`) || channel.events.includes(`${module}.all`)
  );
}

/**
 * The fields a channel's notification_condition names for a module (field_selection groups,
 * nested), or undefined when it has no condition for the module: then every edit notifies.
 */
export function conditionFields(channel: CrmChannel, module: string): Set<string> | undefined {
  const fields = new Set<string>();
  let found = false;
  const walk = (group: unknown): void => {
    if (typeof group !== "object" || group === null) return;
    const g = group as { field?: { api_name?: unknown }; group?: unknown };
    if (typeof g.field?.api_name === "string") fields.add(g.field.api_name);
    if (Array.isArray(g.group)) for (const inner of g.group) walk(inner);
  };
  for (const condition of channel.notification_condition ?? []) {
    const c = condition as { module?: { api_name?: unknown }; field_selection?: unknown };
    if (c.module?.api_name !== undefined && c.module.api_name !== module) continue;
    found = true;
    walk(c.field_selection);
  }
  return found ? fields : undefined;
}
