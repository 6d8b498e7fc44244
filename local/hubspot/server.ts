import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import * as z from "zod/mini";
import { controlAnswer } from "./control";
import { parseSearch, present, runSearch } from "./search";
import { HUBSPOT_TOKEN, type ObjectType, PROPERTIES } from "./seed";
import { READ_SCOPES, resolveSettings } from "./settings";
import { RecordStore } from "./store";
import type { HubSpotEndpoint, HubSpotSandbox, HubSpotSandboxOptions, HubSpotStats } from "./types";

type Json = Record<string, unknown>;

export interface Answer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

interface Route {
  endpoint: HubSpotEndpoint | "control";
  type?: ObjectType;
  id?: string;
  method?: "GET" | "POST";
}

type Policy = keyof HubSpotStats["throttled"];

const TEN_SECONDS = 10_000;
const DAY = 86_400_000;
const OBJECT_PATH = /^\/crm\/v3\/objects\/(contacts|companies)\/([^/]+)(?:\/([^/]+))?\/?$/;

const BatchReadSchema = z.strictObject({
  inputs: z.array(z.strictObject({ id: z.string() })),
  properties: z.optional(z.array(z.string())),
  propertiesWithHistory: z.optional(z.array(z.string())),
  idProperty: z.optional(z.string()),
});

/**
 * A local HubSpot CRM API (v3 objects: search, read by id, batch read) for contacts and
 * companies, as strict as HubSpot's documentation: private-app token and per-object scopes, the
 * search limits and rate limit, the per-10-second and daily limits with their headers, HubSpot's
 * error bodies, and search's eventual consistency. `/__hubspot/…` is the control API (control.ts).
 *
 * Checks on an API request, in order: route, token (401), scope (403), rate limits (429), then
 * latency and failNext (500), then the operation (400, 404, 207, 200). Answers other than
 * search carry the X-HubSpot-RateLimit-* headers from the scope check on; search answers never do.
 *
 * @example
 * const hubspot = await startHubSpotSandbox({ records: 50, settings: { searchLagMs: 0 } });
 * await fetch(`${hubspot.url}/crm/v3/objects/contacts/search`, {
 *   method: "POST",
 *   headers: { authorization: `Bearer ${hubspot.token}`, "content-type": "application/json" },
 *   body: JSON.stringify({ filterGroups: [{ filters: [{ propertyName: "lifecyclestage", operator: "EQ", value: "customer" }] }] }),
 * });
 * await hubspot.close();
 */
export async function startHubSpotSandbox(
  options: HubSpotSandboxOptions = {},
): Promise<HubSpotSandbox> {
  const startSettings = resolveSettings(options.settings);
  let state = freshState(options);
  const now = () => Date.now() + state.clockOffsetMs;

  function error(status: number, category: string, message: string, more: Json = {}): Answer {
    return {
      status,
      body: { status: "error", message, correlationId: randomUUID(), ...more, category },
    };
  }

  function checkToken(authorization: string | undefined): Answer | undefined {
    const token = /^Bearer (\S+)$/.exec(authorization ?? "")?.[1];
    if (token === HUBSPOT_TOKEN && !hubspot.settings.tokenRevoked) return undefined;
    // HubSpot answers a missing, unknown or deleted token alike.
    return error(
      401,
      "INVALID_AUTHENTICATION",
      "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
    );
  }

  function checkScope(type: ObjectType): Answer | undefined {
    const scope = READ_SCOPES[type];
    if (hubspot.settings.grantedScopes.includes(scope)) return undefined;
    return error(
      403,
      "MISSING_SCOPES",
      "This app hasn't been granted all required scopes to make this call. Read more about required scopes here: https://developers.hubspot.com/scopes.",
      {
        errors: [
          {
            message: "One or more of the following scopes are required.",
            context: { requiredGranularScopes: [scope] },
          },
        ],
        links: { scopes: "https://developers.hubspot.com/scopes" },
      },
    );
  }

  function rateLimited(policy: Policy): Answer {
    state.stats.throttled[policy]++;
    const message = {
      SECONDLY: "You have reached your secondly limit.",
      TEN_SECONDLY_ROLLING: "You have reached your ten_secondly_rolling limit.",
      DAILY: "You have reached your daily limit.",
    }[policy];
    return {
      status: 429,
      body: {
        status: "error",
        message,
        errorType: "RATE_LIMIT",
        correlationId: randomUUID(),
        policyName: policy,
        requestId: randomUUID(),
      },
    };
  }

  /**
   * Counts the request against its limits or refuses it: search against its own per-second
   * limit, other requests against the rolling 10 seconds, every request against the day (which
   * resets at midnight in the account's time zone). A refused request is not counted.
   */
  function takeQuota(search: boolean): Answer | undefined {
    const s = hubspot.settings;
    const t = now();
    const day = Math.floor((t + s.timeZoneOffsetMinutes * 60_000) / DAY);
    if (state.day.index !== day) state.day = { index: day, used: 0 };
    state.searches = state.searches.filter((at) => t - at < 1000);
    state.others = state.others.filter((at) => t - at < TEN_SECONDS);
    if (state.day.used >= s.dailyLimit) return rateLimited("DAILY");
    if (search && state.searches.length >= s.searchPerSecond) return rateLimited("SECONDLY");
    if (!search && state.others.length >= s.tenSecondlyLimit)
      return rateLimited("TEN_SECONDLY_ROLLING");
    (search ? state.searches : state.others).push(t);
    state.day.used++;
    return undefined;
  }

  /** The X-HubSpot-RateLimit-* headers as of now (answers other than search carry them). */
  function quotaHeaders(): Record<string, string> {
    const s = hubspot.settings;
    const t = now();
    const inWindow = state.others.filter((at) => t - at < TEN_SECONDS).length;
    return {
      "X-HubSpot-RateLimit-Daily": String(s.dailyLimit),
      "X-HubSpot-RateLimit-Daily-Remaining": String(Math.max(0, s.dailyLimit - state.day.used)),
      "X-HubSpot-RateLimit-Interval-Milliseconds": String(TEN_SECONDS),
      "X-HubSpot-RateLimit-Max": String(s.tenSecondlyLimit),
      "X-HubSpot-RateLimit-Remaining": String(Math.max(0, s.tenSecondlyLimit - inWindow)),
    };
  }

  // ---------------------------------------------------------------------------- operations

  function search(type: ObjectType, text: string): Answer {
    const parsed = parseSearch(type, text, hubspot.settings);
    if ("invalid" in parsed) return validation(parsed.invalid.message, parsed.invalid.errors);
    const { request } = parsed;
    const { total, page, nextAfter } = runSearch(request, state.store.searchable(type, now()));
    return {
      status: 200,
      body: {
        total,
        results: page.map((r) => present(type, r, request.properties, "null")),
        ...(nextAfter === undefined ? {} : { paging: { next: { after: nextAfter } } }),
      },
    };
  }

  function validation(message: string, errors?: unknown[]): Answer {
    return error(400, "VALIDATION_ERROR", message, errors ? { errors } : {});
  }

  /** The unique property a read may name records by, or a refusal. */
  function idPropertyOf(type: ObjectType, name: string | null | undefined): string | Answer {
    if (!name) return "hs_object_id";
    const definition = PROPERTIES[type][name];
    if (!definition) return validation(`Property "${name}" does not exist`);
    if (!definition.unique) return validation(`${name} is not a unique identifier property`);
    return name;
  }

  function read(type: ObjectType, id: string, params: URLSearchParams): Answer {
    const idProperty = idPropertyOf(type, params.get("idProperty"));
    if (typeof idProperty !== "string") return idProperty;
    const record = state.store.findBy(type, idProperty, id);
    // `archived=true` reads archived records only, as batch read does.
    if (!record || record.archived !== (params.get("archived") === "true")) {
      return error(404, "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric.", {
        context: { id: [id] },
      });
    }
    const requested = params
      .getAll("properties")
      .flatMap((p) => p.split(","))
      .filter(Boolean);
    return { status: 200, body: present(type, record, requested, "omit") };
  }

  function batchRead(type: ObjectType, text: string, params: URLSearchParams): Answer {
    let json: unknown;
    try {
      json = JSON.parse(text || "{}");
    } catch {
      return validation("Invalid input JSON: the body is not JSON.");
    }
    const parsed = BatchReadSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return validation(
        `Invalid input JSON: ${issue?.path.join(".") || "body"}: ${issue?.message}`,
      );
    }
    const { inputs, properties, idProperty: named } = parsed.data;
    const max = hubspot.settings.maxBatchInputs;
    if (inputs.length > max) return validation(`Too many inputs: at most ${max} are allowed.`);
    const idProperty = idPropertyOf(type, named);
    if (typeof idProperty !== "string") return idProperty;
    const archived = params.get("archived") === "true";
    const startedAt = new Date(now()).toISOString();
    const results: unknown[] = [];
    const missing: string[] = [];
    const requested = [...(properties ?? []), ...(named ? [named] : [])];
    for (const { id } of inputs) {
      const record = state.store.findBy(type, idProperty, id);
      if (record && record.archived === archived)
        results.push(present(type, record, requested, "omit"));
      else missing.push(id);
    }
    const done = { status: "COMPLETE", results, startedAt, completedAt: startedAt };
    if (missing.length === 0) return { status: 200, body: done };
    const noun = type === "contacts" ? "CONTACT" : "COMPANY";
    return {
      status: 207,
      body: {
        ...done,
        numErrors: 1,
        errors: [
          {
            status: "error",
            category: "OBJECT_NOT_FOUND",
            message: `Could not get some ${noun} objects, they may be deleted or not exist. Check that ids are valid.`,
            context: { ids: missing },
          },
        ],
      },
    };
  }

  async function api(req: IncomingMessage, url: URL, route: Route): Promise<Answer> {
    const type = route.type as ObjectType;
    if (req.method !== route.method) {
      return {
        ...error(405, "VALIDATION_ERROR", `HTTP ${req.method} is not allowed here`),
        headers: { allow: String(route.method) },
      };
    }
    const refusal = checkToken(req.headers.authorization) ?? checkScope(type);
    if (refusal) return refusal;
    const isSearch = route.endpoint === "search";
    // Search answers carry no rate-limit headers; every other answer does from here on.
    const withHeaders = (answer: Answer): Answer =>
      isSearch ? answer : { ...answer, headers: { ...answer.headers, ...quotaHeaders() } };
    const throttled = takeQuota(isSearch);
    if (throttled) return withHeaders(throttled);
    const text = await readText(req);
    const s = hubspot.settings;
    if (s.latencyMs > 0) await sleep(s.latencyMs);
    if (s.failNext > 0) {
      s.failNext--;
      return withHeaders(error(500, "INTERNAL_ERROR", "Internal error"));
    }
    switch (route.endpoint) {
      case "search":
        return search(type, text);
      case "batchRead":
        return withHeaders(batchRead(type, text, url.searchParams));
      default:
        return withHeaders(read(type, route.id as string, url.searchParams));
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://hubspot");
    const route = routeOf(url.pathname);
    let reply: Answer;
    try {
      if (route.endpoint === "control") {
        reply = await controlAnswer(hubspot, req.method ?? "", url.pathname, async () => {
          try {
            return JSON.parse((await readText(req)) || "{}");
          } catch {
            return undefined;
          }
        });
      } else if (route.endpoint === "unknown") {
        reply = error(404, "OBJECT_NOT_FOUND", "resource not found");
      } else {
        reply = await api(req, url, route);
      }
    } catch (thrown) {
      reply = error(500, "INTERNAL_ERROR", `Sandbox error: ${String(thrown)}`);
    }
    if (route.endpoint !== "control") count(route.endpoint, reply.status);
    send(res, reply);
  }

  function count(endpoint: HubSpotEndpoint, status: number): void {
    const stats = state.stats;
    stats.calls[endpoint] = (stats.calls[endpoint] ?? 0) + 1;
    if (endpoint === "search") stats.searchCalls++;
    else stats.otherCalls++;
    stats.byStatus[status] = (stats.byStatus[status] ?? 0) + 1;
  }

  const server = createServer((req, res) => void handle(req, res));
  server.keepAliveTimeout = 10 * 60_000; // as the Zoho sandbox: no idle-close race with clients
  server.listen(options.port ?? 0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;

  const lag = () => hubspot.settings.searchLagMs;
  const hubspot: HubSpotSandbox = {
    url: `http://127.0.0.1:${port}`,
    token: HUBSPOT_TOKEN,
    settings: resolveSettings(startSettings),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
    reset() {
      state = freshState(options);
      Object.assign(hubspot.settings, resolveSettings(startSettings));
    },
    advanceClock(seconds) {
      state.clockOffsetMs += seconds * 1000;
    },
    now,
    create: (type, properties) => state.store.create(type, properties, now(), lag()),
    update: (type, id, properties) => state.store.update(type, id, properties, now(), lag()),
    archive: (type, id) => state.store.archive(type, id, now(), lag()),
    record(type, id) {
      const found = state.store.get(type, id);
      return found && structuredClone(found);
    },
    records: (type) => structuredClone(state.store.all(type)),
    stats: () => structuredClone(state.stats),
    clearStats() {
      state.stats = emptyStats();
    },
  };
  return hubspot;
}

/** Everything reset() starts afresh. */
function freshState(options: HubSpotSandboxOptions) {
  return {
    clockOffsetMs: 0,
    store: new RecordStore(options),
    /** admitted search requests in the last second, other requests in the last 10 s (sandbox clock) */
    searches: [] as number[],
    others: [] as number[],
    day: { index: 0, used: 0 },
    stats: emptyStats(),
  };
}

function emptyStats(): HubSpotStats {
  return {
    searchCalls: 0,
    otherCalls: 0,
    throttled: { SECONDLY: 0, TEN_SECONDLY_ROLLING: 0, DAILY: 0 },
    calls: {},
    byStatus: {},
  };
}

function routeOf(path: string): Route {
  if (path.startsWith("/__hubspot/")) return { endpoint: "control" };
  const match = OBJECT_PATH.exec(path);
  if (!match) return { endpoint: "unknown" };
  const [, type, second, third] = match as unknown as [string, ObjectType, string, string?];
  if (second === "search" && third === undefined)
    return { endpoint: "search", type, method: "POST" };
  if (second === "batch" && third === "read")
    return { endpoint: "batchRead", type, method: "POST" };
  if (third === undefined)
    return { endpoint: "read", type, id: decodeURIComponent(second), method: "GET" };
  return { endpoint: "unknown" };
}

function send(res: ServerResponse, answer: Answer): void {
  if (res.writableEnded || res.destroyed) return;
  res.writeHead(answer.status, {
    "content-type": "application/json;charset=utf-8",
    ...answer.headers,
  });
  res.end(JSON.stringify(answer.body));
}

async function readText(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}
