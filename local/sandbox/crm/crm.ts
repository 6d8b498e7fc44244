import { setTimeout as sleep } from "node:timers/promises";
import type { SandboxSettings } from "../settings";
import type { SandboxContact } from "../types";
import { CoqlError, coqlCredits, parseCoql, runCoql } from "./coql";
import {
  type CrmChannel,
  type CrmDelivery,
  conditionFields,
  readChannel,
  type WatchError,
  watchedModules,
  watches,
} from "./notifications";
import {
  CRM_MODULES,
  type CrmField,
  type CrmModule,
  type CrmModuleName,
  crmField,
  crmModule,
  crmTime,
} from "./schema";
import { type CrmRecord, type CrmSeed, type CrmSeedOptions, seedCrm } from "./seed";

/** An answer of the CRM: status, JSON body (none for 204) and headers. */
export interface CrmAnswer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/** CRM counts, apart from the Books stats. */
export interface SandboxCrmStats {
  /** by endpoint label: crm.coql, crm.fields, crm.watch, crm.unknown */
  calls: Record<string, number>;
  byStatus: Record<string, number>;
  /** by the `code` of error answers */
  byCode: Record<string, number>;
  /** credits charged, all told (the rolling window is in credits()) */
  creditsSpent: number;
  /** HTTP 429 answers */
  throttled: number;
  maxInFlight: number;
  notificationsSent: number;
  notificationsFailed: number;
}

/** The CRM's credits in the rolling 24 hours now. */
export interface CrmCredits {
  limit: number;
  used: number;
  remaining: number;
}

/** The CRM side of the sandbox, for tests: records, notifications and counts. */
export interface CrmSandbox {
  /** a module's records, id order (copies) */
  records(module: CrmModuleName): CrmRecord[];
  record(module: CrmModuleName, id: string): CrmRecord | undefined;
  /**
   * Creates a record as a user would in Zoho's UI (id, Created_Time and Modified_Time set by the
   * sandbox), then notifies the channels watching `Module.create` (operation "insert"). Throws for
   * an unknown or read-only field or a value the field does not take.
   */
  createRecord(module: CrmModuleName, fields: Record<string, unknown>): Promise<CrmRecord>;
  /** Edits a record (Modified_Time bumped when a value changes) and notifies `Module.edit` (operation "update"). */
  updateRecord(
    module: CrmModuleName,
    id: string,
    fields: Record<string, unknown>,
  ): Promise<CrmRecord>;
  /** Deletes a record and notifies `Module.delete` (operation "delete"). */
  deleteRecord(module: CrmModuleName, id: string): Promise<void>;
  /** live channels (expired ones are dropped) */
  channels(): (Omit<CrmChannel, "expiresAt"> & { channel_expiry: string })[];
  /** every delivery attempt, in order */
  deliveries(): CrmDelivery[];
  stats(): SandboxCrmStats;
  credits(): CrmCredits;
  /** how seed account n relates to Books contact n (index n - 1) */
  links(): CrmSeed["links"];
  /** the CRM ids a Books contact is linked to by the integration, if any */
  bookLink(contactId: string): { zcrm_account_id: string; zcrm_contact_id: string } | undefined;
}

/** What reset() starts afresh on the CRM side. */
export interface CrmState {
  records: Record<CrmModuleName, Map<string, CrmRecord>>;
  seed: CrmSeed;
  nextId: number;
  channels: Map<string, CrmChannel>;
  /** credits charged, with when (sandbox clock), for the rolling window */
  charges: { at: number; credits: number }[];
  deliveries: CrmDelivery[];
  stats: SandboxCrmStats;
}

export function crmState(books: readonly SandboxContact[], options?: CrmSeedOptions): CrmState {
  const seed = seedCrm(books, options);
  const byId = (records: CrmRecord[]) => new Map(records.map((r) => [r.id, structuredClone(r)]));
  return {
    records: { Accounts: byId(seed.records.Accounts), Contacts: byId(seed.records.Contacts) },
    seed,
    nextId: 900_000_001,
    channels: new Map(),
    charges: [],
    deliveries: [],
    stats: emptyCrmStats(),
  };
}

export function emptyCrmStats(): SandboxCrmStats {
  return {
    calls: {},
    byStatus: {},
    byCode: {},
    creditsSpent: 0,
    throttled: 0,
    maxInFlight: 0,
    notificationsSent: 0,
    notificationsFailed: 0,
  };
}

/** What the CRM needs from the sandbox around it. */
export interface CrmHost {
  settings: SandboxSettings;
  state(): CrmState;
  now(): number;
  /** whether the sandbox issued this access token and it is live */
  tokenIsLive(token: string): boolean;
  /** the API domain, for resource_uri */
  url(): string;
}

const DAY_MS = 86_400_000;
const DELIVERY_TIMEOUT_MS = 5_000;

function error(
  status: number,
  code: string,
  message: string,
  details: Record<string, unknown> = {},
): CrmAnswer {
  return { status, body: { code, details, message, status: "error" } };
}

/** Whether the granted scopes hold one of `wanted`, compared without regard to case (Zoho's scopes are). */
function granted(scopes: readonly string[], ...wanted: string[]): boolean {
  const have = new Set(scopes.map((s) => s.toLowerCase()));
  return wanted.some((w) => have.has(w.toLowerCase()));
}

/** The scopes that let a token read a module's records. */
const moduleRead = (module: string) => [
  "ZohoCRM.modules.ALL",
  `ZohoCRM.modules.${module}.ALL`,
  `ZohoCRM.modules.${module}.READ`,
];

/**
 * The CRM served at `/crm/v8/…` on the sandbox's API domain, with the sandbox's tokens:
 * `POST /coql`, `GET /settings/fields`, `/actions/watch` (GET, POST, PUT, PATCH, DELETE).
 * Checks, in order: token (401 INVALID_TOKEN), scopes (401 OAUTH_SCOPE_MISMATCH), the user's
 * profile (403 NO_PERMISSION), the request itself (400s), concurrency and credits (429, no
 * Retry-After), then the faults (latency, 500) and the operation.
 */
export function createCrm(host: CrmHost) {
  /** CRM requests in progress; it outlives reset(), which cannot stop them */
  let inFlight = 0;
  const s = () => host.settings;

  function creditsUsed(): number {
    const since = host.now() - DAY_MS;
    const state = host.state();
    state.charges = state.charges.filter((c) => c.at > since);
    return state.charges.reduce((sum, c) => sum + c.credits, 0);
  }

  function throttled(): CrmAnswer {
    return error(429, s().crmRateLimitCode, "Too many requests. Please try again later.");
  }

  /** The common checks before an operation; undefined when the request may go on. */
  function admit(authorization: string | undefined, scopes: string[]): CrmAnswer | undefined {
    const token = /^Zoho-oauthtoken (\S+)$/.exec(authorization ?? "")?.[1];
    if (!token || !host.tokenIsLive(token))
      return error(401, "INVALID_TOKEN", "invalid oauth token");
    if (!granted(s().grantedScopes, ...scopes))
      return error(401, "OAUTH_SCOPE_MISMATCH", "Unauthorized");
    if (s().crmNoPermission)
      return error(403, "NO_PERMISSION", "permission denied", {
        permissions: ["Crm_Implied_Api_Access"],
      });
    return undefined;
  }

  /** Concurrency, credits, faults, then the operation; `credits` is charged once admitted. */
  async function carryOut(credits: number, operation: () => CrmAnswer): Promise<CrmAnswer> {
    if (inFlight >= s().crmConcurrencyLimit) return throttled();
    if (creditsUsed() + credits > s().crmCreditsPerDay) return throttled();
    const state = host.state();
    state.charges.push({ at: host.now(), credits });
    state.stats.creditsSpent += credits;
    inFlight++;
    state.stats.maxInFlight = Math.max(state.stats.maxInFlight, inFlight);
    try {
      if (s().crmLatencyMs > 0) await sleep(s().crmLatencyMs);
      if (s().crmFailNext > 0) {
        s().crmFailNext--;
        return error(500, "INTERNAL_ERROR", "An unexpected error occurred.");
      }
      return operation();
    } finally {
      inFlight--;
    }
  }

  // ------------------------------------------------------------------------------ COQL

  async function coql(authorization: string | undefined, body: unknown): Promise<CrmAnswer> {
    const refusal = admit(authorization, ["ZohoCRM.coql.READ", "ZohoCRM.coql.ALL"]);
    if (refusal) return refusal;
    const query = (body as { select_query?: unknown } | undefined)?.select_query;
    if (typeof query !== "string" || query.trim() === "")
      return error(400, "MANDATORY_NOT_FOUND", "required field not found", {
        api_name: "select_query",
      });
    let parsed: ReturnType<typeof parseCoql>;
    try {
      parsed = parseCoql(query, {
        maxLimit: s().crmCoqlMaxLimit,
        limitCommaForm: s().crmCoqlLimitCommaForm,
      });
    } catch (e) {
      if (e instanceof CoqlError) return { status: e.status, body: e.body() };
      throw e;
    }
    // The base module's read scope is checked once the query names it.
    if (!granted(s().grantedScopes, ...moduleRead(parsed.module.api_name)))
      return error(401, "OAUTH_SCOPE_MISMATCH", "Unauthorized");
    return carryOut(coqlCredits(parsed.limit), () => {
      const all = runCoql(parsed, [...host.state().records[parsed.module.api_name].values()]);
      const page = all.slice(parsed.offset, parsed.offset + parsed.limit);
      if (page.length === 0) return { status: 204, body: undefined };
      return {
        status: 200,
        body: {
          data: page.map((r) => row(parsed.fields, r)),
          info: { count: page.length, more_records: parsed.offset + page.length < all.length },
        },
      };
    });
  }

  /** A record as COQL answers it: `id` always, the selected fields, lookups as {id, name}. */
  function row(fields: CrmField[], record: CrmRecord): Record<string, unknown> {
    const out: Record<string, unknown> = { id: record.id };
    for (const field of fields) out[field.api_name] = outputValue(field, record[field.api_name]);
    return out;
  }

  function outputValue(field: CrmField, value: unknown): unknown {
    if (value === null || value === undefined) return null;
    if (field.data_type === "lookup" && field.lookup) {
      const target = CRM_MODULES[field.lookup];
      const found = host.state().records[field.lookup].get(String(value));
      return { id: String(value), name: found ? (found[target.nameField] ?? null) : null };
    }
    return structuredClone(value);
  }

  // ------------------------------------------------------------------------------ fields metadata

  async function fields(
    authorization: string | undefined,
    params: URLSearchParams,
  ): Promise<CrmAnswer> {
    const refusal = admit(authorization, [
      "ZohoCRM.settings.fields.READ",
      "ZohoCRM.settings.fields.ALL",
      "ZohoCRM.settings.ALL",
    ]);
    if (refusal) return refusal;
    const name = params.get("module");
    if (name === null)
      return error(400, "REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", {
        param: "module",
      });
    const module = crmModule(name);
    if (!module)
      return error(400, "INVALID_MODULE", "the module name given seems to be invalid", {});
    return carryOut(1, () => ({
      status: 200,
      body: { fields: module.fields.map((f, i) => fieldMetadata(module, f, i)) },
    }));
  }

  // ------------------------------------------------------------------------------ notifications

  function liveChannels(): Map<string, CrmChannel> {
    const channels = host.state().channels;
    for (const [id, channel] of channels) if (channel.expiresAt <= host.now()) channels.delete(id);
    return channels;
  }

  function channelView(channel: CrmChannel) {
    const { expiresAt, ...rest } = channel;
    return { ...structuredClone(rest), channel_expiry: crmTime(expiresAt) };
  }

  function subscribed(channel: CrmChannel) {
    return {
      events: watchedModules(channel).map((module) => ({
        channel_expiry: crmTime(channel.expiresAt),
        resource_uri: `${host.url()}/crm/v8/${module}`,
        resource_id: CRM_MODULES[module].id,
        resource_name: module,
        channel_id: channel.channel_id,
      })),
    };
  }

  /** One answer for a batch: 2xx when every item passed, 400 when none did, 207 for a mix. */
  function batch(results: (WatchError | Record<string, unknown>)[], okStatus: number): CrmAnswer {
    const failed = results.filter((r) => r.status === "error").length;
    const status = failed === 0 ? okStatus : failed === results.length ? 400 : 207;
    return { status, body: { watch: results } };
  }

  async function watch(
    method: string,
    authorization: string | undefined,
    params: URLSearchParams,
    readBody: () => Promise<unknown>,
  ): Promise<CrmAnswer> {
    const scopeOf: Record<string, string> = {
      GET: "READ",
      POST: "CREATE",
      PUT: "UPDATE",
      PATCH: "UPDATE",
      DELETE: "DELETE",
    };
    const operation = scopeOf[method];
    if (!operation)
      return error(
        400,
        "INVALID_REQUEST_METHOD",
        "The http request method type is not a valid one",
      );
    // Zoho's pages also name WRITE for enabling and updating channels.
    const write = method === "GET" ? [] : ["ZohoCRM.notifications.WRITE"];
    const refusal = admit(authorization, [
      "ZohoCRM.notifications.ALL",
      `ZohoCRM.notifications.${operation}`,
      ...write,
    ]);
    if (refusal) return refusal;
    const now = host.now();
    const channels = liveChannels();

    if (method === "GET") {
      return carryOut(1, () => {
        const module = params.get("module");
        const id = params.get("channel_id");
        const list = [...channels.values()].filter(
          (c) =>
            (!id || c.channel_id === id) &&
            (!module || watchedModules(c).includes(module as CrmModuleName)),
        );
        if (list.length === 0) return { status: 204, body: undefined };
        return {
          status: 200,
          body: {
            watch: list.map((c) => ({
              ...channelView(c),
              resource_uri: `${host.url()}/crm/v8/${watchedModules(c)[0]}`,
              resource_name: watchedModules(c)[0],
            })),
            info: { per_page: 200, count: list.length, page: 1, more_records: false },
          },
        };
      });
    }

    if (method === "DELETE") {
      const ids = params.get("channel_ids");
      if (!ids)
        return error(400, "REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", {
          param: "channel_ids",
        });
      return carryOut(1, () =>
        batch(
          ids.split(",").map((id) => {
            const channel = channels.get(id.trim());
            if (!channel)
              return {
                code: "NOT_SUBSCRIBED",
                details: { channel_id: id.trim() },
                message: "not subscribed",
                status: "error",
              };
            channels.delete(channel.channel_id);
            return {
              code: "SUCCESS",
              details: subscribed(channel),
              message: "Successfully unsubscribed from actions-watch of the given module",
              status: "success",
            };
          }),
          200,
        ),
      );
    }

    const body = await readBody();
    const items = (body as { watch?: unknown } | undefined)?.watch;
    if (!Array.isArray(items) || items.length === 0)
      return error(400, "MANDATORY_NOT_FOUND", "required field not found", { api_name: "watch" });
    if (items.length > 50)
      return error(400, "LIMIT_EXCEEDED", "limit exceeded", { api_name: "watch", limit: 50 });
    return carryOut(1, () =>
      batch(
        items.map((item, index) => {
          const w = (item ?? {}) as Record<string, unknown>;
          const existing =
            w.channel_id === undefined ? undefined : channels.get(String(w.channel_id));
          if (method !== "POST" && !existing)
            return {
              code: "NOT_SUBSCRIBED",
              details: { channel_id: String(w.channel_id) },
              message: "not subscribed",
              status: "error",
            };
          if (method === "PATCH" && w._delete_events === true && existing) {
            // Disable some events of a channel: the channel goes once it has none left.
            const gone = new Set(Array.isArray(w.events) ? (w.events as string[]) : []);
            existing.events = existing.events.filter((e) => !gone.has(e));
            if (existing.events.length === 0) channels.delete(existing.channel_id);
            return {
              code: "SUCCESS",
              details: subscribed(existing),
              message: "Successfully unsubscribed from actions-watch of the given module",
              status: "success",
            };
          }
          const read = readChannel(
            item,
            index,
            now,
            s().crmWatchTokenMaxLength,
            method === "PATCH" ? existing : undefined,
          );
          if ("status" in read) return read;
          channels.set(read.channel_id, read);
          return {
            code: "SUCCESS",
            details: subscribed(read),
            message: "Successfully subscribed for actions-watch of the given module",
            status: "success",
          };
        }),
        method === "POST" ? 201 : 200,
      ),
    );
  }

  /** Tells each live channel watching the change, as Zoho does: ids, changed fields, values when asked. */
  async function notify(
    module: CrmModuleName,
    operation: "create" | "edit" | "delete",
    record: CrmRecord,
    changed: string[],
  ): Promise<void> {
    const state = host.state();
    const deliveries: Promise<void>[] = [];
    for (const channel of liveChannels().values()) {
      if (!watches(channel, module, operation)) continue;
      const condition = conditionFields(channel, module);
      if (operation === "edit" && condition && !changed.some((f) => condition.has(f))) continue;
      const body: Record<string, unknown> = {
        server_time: host.now(),
        query_params: {},
        module,
        resource_uri: `${host.url()}/crm/v8/${module}`,
        ids: [record.id],
        affected_fields: operation === "edit" ? [{ [record.id]: changed }] : [],
        operation: operation === "create" ? "insert" : operation === "edit" ? "update" : "delete",
        channel_id: channel.channel_id,
        token: channel.token,
      };
      if (channel.return_affected_field_values && operation === "edit") {
        const values: Record<string, unknown> = { id: record.id };
        for (const f of changed)
          values[f] = outputValue(crmField(CRM_MODULES[module], f) as CrmField, record[f]);
        body.affected_values = [values];
      }
      deliveries.push(deliver(state, channel, body));
    }
    await Promise.all(deliveries);
  }

  async function deliver(
    state: CrmState,
    channel: CrmChannel,
    body: Record<string, unknown>,
  ): Promise<void> {
    const entry: CrmDelivery = {
      at: host.now(),
      channel_id: channel.channel_id,
      notify_url: channel.notify_url,
      outcome: "sent",
      body,
    };
    state.deliveries.push(entry);
    if (s().crmNotifyFailNext > 0) {
      s().crmNotifyFailNext--;
      entry.outcome = "lost";
    } else {
      try {
        const response = await fetch(channel.notify_url, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
        });
        await response.arrayBuffer();
        entry.status = response.status;
        if (!response.ok) entry.outcome = "failed";
      } catch {
        entry.outcome = "failed";
      }
    }
    if (entry.outcome === "sent") state.stats.notificationsSent++;
    else {
      state.stats.notificationsFailed++;
      if (s().crmDropChannelOnFailure) state.channels.delete(channel.channel_id);
    }
  }

  // ------------------------------------------------------------------------------ records (control)

  function checkedValues(
    module: CrmModule,
    fields: Record<string, unknown>,
  ): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(fields)) {
      const field = crmField(module, name);
      if (!field) throw new TypeError(`${module.api_name} has no field ${name}`);
      if (field.read_only) throw new TypeError(`${name} is set by the CRM, not by a user`);
      out[name] = checkedValue(field, value);
    }
    return out;
  }

  function checkedValue(field: CrmField, value: unknown): unknown {
    if (value === null) return null;
    const bad = () => new TypeError(`${field.api_name} does not take ${JSON.stringify(value)}`);
    switch (field.data_type) {
      case "picklist":
        if (!field.pick_list_values?.includes(value as string)) throw bad();
        return value;
      case "multiselectpicklist":
        if (!Array.isArray(value) || value.some((v) => !field.pick_list_values?.includes(v)))
          throw bad();
        return [...new Set(value as string[])];
      case "datetime":
        if (
          typeof value !== "string" ||
          !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$/.test(value)
        )
          throw bad();
        return value;
      case "lookup":
        if (
          typeof value !== "string" ||
          !field.lookup ||
          !host.state().records[field.lookup].has(value)
        )
          throw bad();
        return value;
      default:
        if (typeof value !== "string") throw bad();
        return value;
    }
  }

  function moduleOf(name: string): CrmModule {
    const module = crmModule(name);
    if (!module) throw new TypeError(`The sandbox's CRM has no module ${name}`);
    return module;
  }

  const sandboxCrm: CrmSandbox = {
    records: (module) =>
      [...host.state().records[moduleOf(module).api_name].values()]
        .sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1))
        .map((r) => structuredClone(r)),
    record(module, id) {
      const found = host.state().records[moduleOf(module).api_name].get(id);
      return found && structuredClone(found);
    },
    async createRecord(name, fields) {
      const module = moduleOf(name);
      const values = checkedValues(module, fields);
      const state = host.state();
      const prefix = module.api_name === "Accounts" ? "4150868000" : "4150869000";
      const time = crmTime(host.now());
      const record: CrmRecord = { id: `${prefix}${state.nextId++}` };
      for (const f of module.fields)
        if (f.api_name !== "id")
          record[f.api_name] = f.data_type === "multiselectpicklist" ? [] : null;
      Object.assign(record, values, { Created_Time: time, Modified_Time: time });
      state.records[module.api_name].set(record.id, record);
      await notify(module.api_name, "create", record, Object.keys(values));
      return structuredClone(record);
    },
    async updateRecord(name, id, fields) {
      const module = moduleOf(name);
      const record = host.state().records[module.api_name].get(id);
      if (!record) throw new TypeError(`${module.api_name} has no record ${id}`);
      const values = checkedValues(module, fields);
      const changed = Object.keys(values).filter(
        (f) => JSON.stringify(record[f] ?? null) !== JSON.stringify(values[f]),
      );
      if (changed.length > 0) {
        Object.assign(record, values, { Modified_Time: crmTime(host.now()) });
        await notify(module.api_name, "edit", record, changed);
      }
      return structuredClone(record);
    },
    async deleteRecord(name, id) {
      const module = moduleOf(name);
      const records = host.state().records[module.api_name];
      const record = records.get(id);
      if (!record) throw new TypeError(`${module.api_name} has no record ${id}`);
      records.delete(id);
      await notify(module.api_name, "delete", record, []);
    },
    channels: () => [...liveChannels().values()].map(channelView),
    deliveries: () => structuredClone(host.state().deliveries),
    stats: () => structuredClone(host.state().stats),
    credits() {
      const used = creditsUsed();
      const limit = s().crmCreditsPerDay;
      return { limit, used, remaining: Math.max(0, limit - used) };
    },
    links: () => [...host.state().seed.links],
    bookLink(contactId) {
      const link = host.state().seed.bookLinks.get(contactId);
      return link && { ...link };
    },
  };

  /** Routes a `/crm/…` request; `label` is what the request is recorded as. */
  async function answer(
    method: string,
    path: string,
    params: URLSearchParams,
    authorization: string | undefined,
    readBody: () => Promise<unknown>,
  ): Promise<CrmAnswer> {
    switch (crmEndpoint(path)) {
      case "crm.coql":
        if (method !== "POST")
          return error(
            400,
            "INVALID_REQUEST_METHOD",
            "The http request method type is not a valid one",
          );
        return coql(authorization, await readBody());
      case "crm.fields":
        if (method !== "GET")
          return error(
            400,
            "INVALID_REQUEST_METHOD",
            "The http request method type is not a valid one",
          );
        return fields(authorization, params);
      case "crm.watch":
        return watch(method, authorization, params, readBody);
      default:
        return error(
          404,
          "INVALID_URL_PATTERN",
          "Please check if the URL trying to access is a correct one",
        );
    }
  }

  /** Counts an answered CRM request in the CRM stats. */
  function count(endpoint: string, status: number, code: string | undefined): void {
    const stats = host.state().stats;
    stats.calls[endpoint] = (stats.calls[endpoint] ?? 0) + 1;
    stats.byStatus[status] = (stats.byStatus[status] ?? 0) + 1;
    if (code !== undefined) stats.byCode[code] = (stats.byCode[code] ?? 0) + 1;
    if (status === 429) stats.throttled++;
  }

  return { answer, count, sandboxCrm };
}

/** The endpoint label of a `/crm/…` path. */
export function crmEndpoint(path: string): "crm.coql" | "crm.fields" | "crm.watch" | "crm.unknown" {
  const p = path.replace(/\/$/, "");
  if (p === "/crm/v8/coql") return "crm.coql";
  if (p === "/crm/v8/settings/fields") return "crm.fields";
  if (p === "/crm/v8/actions/watch") return "crm.watch";
  return "crm.unknown";
}

/** A field as `GET /settings/fields` answers it. */
function fieldMetadata(module: CrmModule, field: CrmField, index: number): Record<string, unknown> {
  const metadata: Record<string, unknown> = {
    api_name: field.api_name,
    id: String(BigInt(module.id) + 1000n + BigInt(index)),
    field_label: field.field_label,
    display_label: field.field_label,
    data_type: field.data_type,
    json_type: jsonType(field),
    custom_field: field.custom_field,
    read_only: field.read_only,
    pick_list_values: (field.pick_list_values ?? []).map((value, i) => ({
      display_value: value,
      actual_value: value,
      sequence_number: i + 1,
    })),
  };
  if (field.lookup)
    metadata.lookup = { module: { api_name: field.lookup, id: CRM_MODULES[field.lookup].id } };
  return metadata;
}

function jsonType(field: CrmField): string {
  if (field.data_type === "multiselectpicklist") return "jsonarray";
  if (field.data_type === "lookup") return "jsonobject";
  return "string";
}
