import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import {
  FOREIGN_ORGANIZATION_ID,
  ORGANIZATION_ID,
  SANDBOX_CREDENTIALS,
  type SandboxContact,
  seedContacts,
  seedForeignContacts,
} from "./seed";
import { DEFAULT_SETTINGS, type SandboxSettings, settingsProblem } from "./settings";

export interface SandboxOptions {
  /** 0 or absent: a free port */
  port?: number;
  /** contacts in the main organization; default 300 */
  contacts?: number;
  settings?: Partial<SandboxSettings>;
}

export interface RecordedRequest {
  at: number;
  method: string;
  /** path and query as received (never a header or a body: no secret is recorded) */
  url: string;
  endpoint: string;
  /** 0 for a request that was left hanging */
  status: number;
  code?: number;
  authorization: "present" | "absent";
}

export interface SandboxStats {
  calls: Record<string, number>;
  byStatus: Record<string, number>;
  byCode: Record<string, number>;
  grants: number;
  grantsRefused: number;
  throttled: number;
  maxInFlight: number;
}

export interface Sandbox {
  url: string;
  settings: SandboxSettings;
  close(): Promise<void>;
  reset(): void;
  advanceClock(seconds: number): void;
  /** a valid access token that does not count as a grant (tests seed a fresh token with it) */
  issueToken(): { access_token: string; expires_in: number };
  revokeAccessTokens(): void;
  contact(id: string): SandboxContact | undefined;
  setContactStatus(id: string, status: "active" | "inactive"): void;
  contacts(): SandboxContact[];
  stats(): SandboxStats;
  requests(): RecordedRequest[];
}

type Json = Record<string, unknown>;
interface Answer {
  status: number;
  body: Json | string;
  /** what the request is recorded as */
  endpoint: string;
}

const GRANT_WINDOW_MS = 10 * 60_000;
const READ_SCOPE = "ZohoBooks.contacts.READ";
const BOOKS_PATH = /^\/books\/v3\/contacts(?:\/([^/]+)(?:\/(active|inactive))?)?\/?$/;
const OUTAGE_PAGE =
  "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>";

/** A small deterministic PRNG (mulberry32), so fault rates repeat from run to run. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A local Zoho Books API v3 and Zoho Accounts OAuth server that behaves like the real ones,
 * limits and failures included: every code of ../shared/zoho-facts.md can be produced through
 * `settings`. Both the accounts server and the API domain are `url`. A control API under
 * `/__sandbox/` does over HTTP what the returned object does in process.
 *
 * @example
 * const sandbox = await startSandbox({ settings: { rateLimitPerMinute: 600 } });
 * sandbox.settings.failNext = 3; // the next three Books calls answer HTTP 500 code 5
 */
export async function startSandbox(options: SandboxOptions = {}): Promise<Sandbox> {
  const contactCount = options.contacts ?? 300;
  const initialSettings = {
    ...DEFAULT_SETTINGS,
    grantedScopes: [...DEFAULT_SETTINGS.grantedScopes],
    ...options.settings,
  };

  const state = {
    settings: { ...initialSettings },
    offsetMs: 0,
    contacts: new Map<string, SandboxContact & { organization_id: string }>(),
    /** access token → expiry (sandbox clock), in issue order */
    tokens: new Map<string, number>(),
    grantTimes: [] as number[],
    grantsBlockedUntil: 0,
    minuteWindows: new Map<string, { minute: number; count: number }>(),
    dayWindows: new Map<string, { day: number; count: number }>(),
    inFlight: 0,
    random: prng(42),
    stats: emptyStats(),
    requests: [] as RecordedRequest[],
  };
  const now = () => Date.now() + state.offsetMs;

  function reset(): void {
    state.settings = { ...initialSettings, grantedScopes: [...initialSettings.grantedScopes] };
    sandbox.settings = state.settings;
    state.offsetMs = 0;
    state.contacts.clear();
    for (const c of seedContacts(contactCount))
      state.contacts.set(c.contact_id, { ...c, organization_id: ORGANIZATION_ID });
    for (const c of seedForeignContacts())
      state.contacts.set(c.contact_id, { ...c, organization_id: FOREIGN_ORGANIZATION_ID });
    state.tokens.clear();
    state.grantTimes = [];
    state.grantsBlockedUntil = 0;
    state.minuteWindows.clear();
    state.dayWindows.clear();
    state.random = prng(42);
    clearRecords();
  }

  function clearRecords(): void {
    state.stats = emptyStats();
    state.requests = [];
  }

  function issueToken(): { access_token: string; expires_in: number } {
    const token = `1000.${randomBytes(16).toString("hex")}.${randomBytes(16).toString("hex")}`;
    state.tokens.set(token, now() + state.settings.tokenLifetimeSeconds * 1000);
    while (state.tokens.size > state.settings.maxLiveTokens) {
      const oldest = state.tokens.keys().next().value as string;
      state.tokens.delete(oldest);
    }
    return { access_token: token, expires_in: state.settings.tokenLifetimeSeconds };
  }

  // ------------------------------------------------------------------------------ OAuth

  function grant(params: URLSearchParams): Answer {
    const s = state.settings;
    const refuse = (error: string, status = 200, extra: Json = {}): Answer => ({
      status,
      body: { error, ...extra },
      endpoint: "token",
    });
    if (params.get("grant_type") !== "refresh_token") return refuse("unsupported_grant_type");
    if (
      params.get("client_id") !== SANDBOX_CREDENTIALS.client_id ||
      params.get("client_secret") !== SANDBOX_CREDENTIALS.client_secret
    ) {
      return refuse("invalid_client");
    }
    if (
      params.get("refresh_token") !== SANDBOX_CREDENTIALS.refresh_token ||
      s.refreshTokenRevoked
    ) {
      return refuse("invalid_code");
    }
    const t = now();
    state.grantTimes = state.grantTimes.filter((at) => t - at < GRANT_WINDOW_MS);
    if (t < state.grantsBlockedUntil || state.grantTimes.length >= s.grantLimit) {
      state.grantsBlockedUntil = Math.max(state.grantsBlockedUntil, t + GRANT_WINDOW_MS);
      state.stats.grantsRefused++;
      return refuse("Access Denied", s.tooManyGrantsStatus, {
        error_description:
          "You have made too many requests continuously. Please try again after some time.",
        status: "failure",
      });
    }
    state.grantTimes.push(t);
    state.stats.grants++;
    const token = issueToken();
    return {
      status: 200,
      endpoint: "token",
      body: {
        access_token: token.access_token,
        api_domain: sandbox.url,
        token_type: "Bearer",
        ...(s.omitExpiresIn ? {} : { expires_in: token.expires_in }),
      },
    };
  }

  // ------------------------------------------------------------------------------ Books

  const zohoError = (status: number, code: number, message: string, endpoint: string): Answer => ({
    status,
    body: { code, message },
    endpoint,
  });

  /** The checks every Books request passes before its operation, in Zoho's order. */
  function admit(
    req: IncomingMessage,
    url: URL,
    endpoint: string,
    scope: string,
  ): Answer | undefined {
    const s = state.settings;
    const header = /^Zoho-oauthtoken (\S+)$/.exec(req.headers.authorization ?? "");
    if (!header?.[1]) return zohoError(401, 14, "Invalid OAuth token.", endpoint);
    const expiresAt = state.tokens.get(header[1]);
    if (expiresAt === undefined || expiresAt <= now() || !s.grantedScopes.includes(scope)) {
      return zohoError(401, 57, "You are not authorized to perform this operation", endpoint);
    }
    const organization = url.searchParams.get("organization_id");
    if (organization !== ORGANIZATION_ID) {
      const message =
        s.invalidOrganizationCode === 6024
          ? "The organization is not valid for this user."
          : "Invalid value passed for organization_id";
      return zohoError(400, s.invalidOrganizationCode, message, endpoint);
    }
    if (state.inFlight >= s.concurrencyLimit) {
      return zohoError(
        429,
        1070,
        "Too many requests are in progress. Please try again later.",
        endpoint,
      );
    }
    // Zoho blocks the organization for the rest of the calendar minute; refused requests are not counted.
    const t = now();
    const minute = Math.floor(t / 60_000);
    const perMinute = state.minuteWindows.get(organization) ?? { minute, count: 0 };
    if (perMinute.minute !== minute) Object.assign(perMinute, { minute, count: 0 });
    state.minuteWindows.set(organization, perMinute);
    if (perMinute.count >= s.rateLimitPerMinute) {
      return zohoError(
        429,
        44,
        "You have exceeded the maximum number of API calls allowed per minute.",
        endpoint,
      );
    }
    const day = Math.floor(t / 86_400_000);
    const perDay = state.dayWindows.get(organization) ?? { day, count: 0 };
    if (perDay.day !== day) Object.assign(perDay, { day, count: 0 });
    state.dayWindows.set(organization, perDay);
    if (s.dailyLimit !== null && perDay.count >= s.dailyLimit) {
      return zohoError(
        429,
        45,
        "You have reached the maximum number of API calls allowed for a day.",
        endpoint,
      );
    }
    perMinute.count++;
    perDay.count++;
    return undefined;
  }

  function operate(
    method: string,
    url: URL,
    id: string | undefined,
    verb: string | undefined,
  ): Answer {
    const s = state.settings;
    const endpoint = verb ? `contact.${verb}` : id ? "contact.get" : "contacts.list";
    const notFound = () =>
      zohoError(
        s.notFoundStatus,
        s.notFoundCode,
        s.notFoundCode === 2 ? "Invalid value passed for contact_id" : "Contact does not exist.",
        endpoint,
      );
    if (id !== undefined) {
      const contact = state.contacts.get(id);
      if (!contact || contact.organization_id !== ORGANIZATION_ID) return notFound();
      if (!verb)
        return {
          status: 200,
          endpoint,
          body: { code: 0, message: "success", contact: publicContact(contact) },
        };
      const target = verb === "active" ? "active" : "inactive";
      if (contact.status === target && s.alreadyInStateAnswer === "error") {
        return verb === "active"
          ? zohoError(400, 3031, "The contact is already active.", endpoint)
          : zohoError(400, 3032, "The contact is already inactive.", endpoint);
      }
      contact.status = target;
      contact.last_modified_time = new Date(now()).toISOString().replace("Z", "+0000");
      return {
        status: 200,
        endpoint,
        body: { code: 0, message: `The contact has been marked as ${target}.` },
      };
    }
    if (method !== "GET") return { status: 405, endpoint, body: { message: "Method Not Allowed" } };
    return { status: 200, endpoint, body: list(url) };
  }

  function list(url: URL): Json {
    const filter = url.searchParams.get("filter_by") ?? "Status.All";
    const page = Math.max(1, Number(url.searchParams.get("page") ?? "1") || 1);
    const perPage = Math.min(
      200,
      Math.max(1, Number(url.searchParams.get("per_page") ?? "200") || 200),
    );
    const email = url.searchParams.get("email")?.toLowerCase();
    const search = url.searchParams.get("search_text")?.toLowerCase();
    const matching = [...state.contacts.values()]
      .filter((c) => c.organization_id === ORGANIZATION_ID)
      .filter(
        (c) => filter === "Status.All" || (filter === "Status.Active") === (c.status === "active"),
      )
      // Zoho's filters match loosely: substrings, any case.
      .filter((c) => !email || c.email.toLowerCase().includes(email))
      .filter((c) => !search || `${c.contact_name} ${c.email}`.toLowerCase().includes(search))
      .sort((a, b) => a.contact_id.localeCompare(b.contact_id));
    const slice = matching.slice((page - 1) * perPage, page * perPage);
    return {
      code: 0,
      message: "success",
      contacts: slice.map(publicContact),
      page_context: { page, per_page: perPage, has_more_page: page * perPage < matching.length },
    };
  }

  async function books(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    match: RegExpExecArray,
  ): Promise<Answer | "hung"> {
    const [, id, verb] = match;
    const endpoint = verb ? `contact.${verb}` : id ? "contact.get" : "contacts.list";
    const allowed = verb ? "POST" : "GET";
    if (req.method !== allowed)
      return { status: 405, endpoint, body: { message: "Method Not Allowed" } };
    const refused = admit(req, url, endpoint, verb ? state.settings.requiredScope : READ_SCOPE);
    if (refused) return refused;

    state.inFlight++;
    state.stats.maxInFlight = Math.max(state.stats.maxInFlight, state.inFlight);
    try {
      const s = state.settings;
      if (s.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, s.latencyMs));
      if (s.hangNext > 0 || (s.hangRate > 0 && state.random() < s.hangRate)) {
        if (s.hangNext > 0) s.hangNext--;
        await new Promise((resolve) => res.once("close", resolve)); // until the client gives up
        return "hung";
      }
      if (s.failNext > 0 || (s.failureRate > 0 && state.random() < s.failureRate)) {
        if (s.failNext > 0) s.failNext--;
        return s.failureStyle === "html"
          ? { status: 502, endpoint, body: OUTAGE_PAGE }
          : zohoError(500, 5, "Internal error. Please try again later.", endpoint);
      }
      return operate(req.method ?? "GET", url, id, verb);
    } finally {
      state.inFlight--;
    }
  }

  // ------------------------------------------------------------------------------ control

  async function control(
    req: IncomingMessage,
    path: string,
  ): Promise<{ status: number; body: unknown }> {
    const method = req.method ?? "GET";
    const contactMatch = /^\/__sandbox\/contacts\/(\d+)$/.exec(path);
    if (method === "GET" && path === "/__sandbox/state") {
      return {
        status: 200,
        body: {
          settings: state.settings,
          clock: new Date(now()).toISOString(),
          contacts: contactCount,
        },
      };
    }
    if (method === "PATCH" && path === "/__sandbox/settings") {
      const patch = await readJson(req);
      const problem = settingsProblem(patch);
      if (problem) return { status: 400, body: { error: problem } };
      Object.assign(state.settings, patch);
      return { status: 200, body: state.settings };
    }
    if (method === "POST" && path === "/__sandbox/reset") {
      reset();
      return { status: 200, body: { reset: true } };
    }
    if (method === "POST" && path === "/__sandbox/clock/advance") {
      const { seconds } = (await readJson(req)) as { seconds?: unknown };
      if (typeof seconds !== "number")
        return { status: 400, body: { error: "seconds must be a number" } };
      state.offsetMs += seconds * 1000;
      return { status: 200, body: { clock: new Date(now()).toISOString() } };
    }
    if (method === "POST" && path === "/__sandbox/tokens/issue")
      return { status: 200, body: issueToken() };
    if (method === "POST" && path === "/__sandbox/tokens/revoke") {
      state.tokens.clear();
      return { status: 200, body: { revoked: true } };
    }
    if (method === "GET" && path === "/__sandbox/stats") return { status: 200, body: state.stats };
    if (method === "GET" && path === "/__sandbox/requests")
      return { status: 200, body: state.requests };
    if (method === "DELETE" && path === "/__sandbox/requests") {
      clearRecords();
      return { status: 200, body: { cleared: true } };
    }
    if (contactMatch?.[1] && method === "GET") {
      const contact = state.contacts.get(contactMatch[1]);
      return contact
        ? { status: 200, body: contact }
        : { status: 404, body: { error: "no such contact" } };
    }
    if (contactMatch?.[1] && method === "PUT") {
      const { status } = (await readJson(req)) as { status?: unknown };
      const contact = state.contacts.get(contactMatch[1]);
      if (!contact) return { status: 404, body: { error: "no such contact" } };
      if (status !== "active" && status !== "inactive")
        return { status: 400, body: { error: "status must be active or inactive" } };
      contact.status = status;
      return { status: 200, body: contact };
    }
    return { status: 404, body: { error: "no such control endpoint" } };
  }

  // ------------------------------------------------------------------------------ server

  function record(
    req: IncomingMessage,
    answer: Answer | { endpoint: string; status: number; body: unknown },
  ): void {
    const body = answer.body as Json | string;
    const code = typeof body === "object" && typeof body.code === "number" ? body.code : undefined;
    state.requests.push({
      at: now(),
      method: req.method ?? "",
      url: req.url ?? "",
      endpoint: answer.endpoint,
      status: answer.status,
      ...(code === undefined ? {} : { code }),
      authorization: req.headers.authorization ? "present" : "absent",
    });
    const stats = state.stats;
    stats.calls[answer.endpoint] = (stats.calls[answer.endpoint] ?? 0) + 1;
    stats.byStatus[answer.status] = (stats.byStatus[answer.status] ?? 0) + 1;
    if (code !== undefined) stats.byCode[code] = (stats.byCode[code] ?? 0) + 1;
    if (answer.status === 429) stats.throttled++;
  }

  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://sandbox");
    try {
      if (url.pathname.startsWith("/__sandbox/")) {
        const answer = await control(req, url.pathname);
        return send(res, answer.status, answer.body);
      }
      let answer: Answer | "hung";
      const booksMatch = BOOKS_PATH.exec(url.pathname);
      if (url.pathname === "/oauth/v2/token" && req.method === "POST") {
        const form = new URLSearchParams(await readText(req));
        for (const [name, value] of url.searchParams) if (!form.has(name)) form.set(name, value);
        answer = grant(form);
      } else if (booksMatch) {
        answer = await books(req, res, url, booksMatch);
      } else {
        answer = {
          status: 404,
          endpoint: "unknown",
          body: { code: 404, message: "Invalid URL Passed" },
        };
      }
      if (answer === "hung") {
        record(req, { endpoint: "hung", status: 0, body: {} });
        return;
      }
      record(req, answer);
      send(res, answer.status, answer.body);
    } catch (error) {
      send(res, 500, { error: String(error) });
    }
  });

  server.listen(options.port ?? 0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  const { port } = server.address() as AddressInfo;

  const sandbox: Sandbox = {
    url: `http://127.0.0.1:${port}`,
    settings: state.settings,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
    reset,
    advanceClock(seconds) {
      state.offsetMs += seconds * 1000;
    },
    issueToken,
    revokeAccessTokens: () => state.tokens.clear(),
    contact(id) {
      const found = state.contacts.get(id);
      return found ? publicContact(found) : undefined;
    },
    setContactStatus(id, status) {
      const contact = state.contacts.get(id);
      if (!contact) throw new Error(`no contact ${id}`);
      contact.status = status;
    },
    contacts: () =>
      [...state.contacts.values()]
        .filter((c) => c.organization_id === ORGANIZATION_ID)
        .map(publicContact),
    stats: () => structuredClone(state.stats),
    requests: () => [...state.requests],
  };
  reset();
  return sandbox;
}

function emptyStats(): SandboxStats {
  return {
    calls: {},
    byStatus: {},
    byCode: {},
    grants: 0,
    grantsRefused: 0,
    throttled: 0,
    maxInFlight: 0,
  };
}

function publicContact(contact: SandboxContact & { organization_id?: string }): SandboxContact {
  const { organization_id: _org, ...rest } = contact;
  return { ...rest };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.writableEnded || res.destroyed) return;
  const html = typeof body === "string";
  res.writeHead(status, { "content-type": html ? "text/html" : "application/json;charset=UTF-8" });
  res.end(html ? body : JSON.stringify(body));
}

async function readText(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  try {
    return JSON.parse((await readText(req)) || "{}");
  } catch {
    return undefined;
  }
}
