import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { controlAnswer } from "./control";
import { createCrm, crmEndpoint, crmState, emptyCrmStats } from "./crm/crm";
import { type MessageId, message } from "./messages";
import {
  FOREIGN_ORGANIZATION_ID,
  memberContactId,
  memberOrganizationId,
  ORGANIZATION_ID,
  SANDBOX_CREDENTIALS,
  seedContacts,
  seedForeignContacts,
} from "./seed";
import { resolveSettings } from "./settings";
import type {
  RecordedRequest,
  Sandbox,
  SandboxContact,
  SandboxContactAmounts,
  SandboxEndpoint,
  SandboxOptions,
  SandboxStats,
} from "./types";

type Json = Record<string, unknown>;

interface Answer {
  status: number;
  /** a string is sent as an HTML page, anything else as JSON */
  body: unknown;
  headers?: Record<string, string>;
}

interface Route {
  endpoint: SandboxEndpoint;
  contactId?: string;
  /** the action of contact.active / contact.inactive */
  action?: "active" | "inactive";
}

interface StoredContact extends SandboxContact {
  organization_id: string;
  /** on the detail only (Zoho's list sample has the receivable amounts, not this one) */
  outstanding_payable_amount: number;
}

const GRANT_WINDOW_MS = 10 * 60_000;
const READ_SCOPE = "ZohoBooks.contacts.READ";
const PAGE_SIZE_MAX = 200;
/** /books/v3/contacts, /books/v3/contacts/{id}, /books/v3/contacts/{id}/active|inactive */
const BOOKS_PATH = /^\/books\/v3\/contacts(?:\/([^/]+)(?:\/(active|inactive))?)?\/?$/;
/** query parameters whose values are never recorded */
const SECRET_PARAMS = /([?&](?:client_secret|refresh_token|access_token|authtoken|code)=)[^&#]*/gi;
const FAULT_SEED = 42;
const OUTAGE_PAGE =
  "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>";

/** filter_by values; `linked` says whether Zoho's CRM integration links a contact. */
const STATUS_FILTERS: Record<
  string,
  (contact: SandboxContact, linked: (id: string) => boolean) => boolean
> = {
  "Status.All": () => true,
  "Status.Active": (c) => c.status === "active",
  "Status.Inactive": (c) => c.status === "inactive",
  // A real filter; the sandbox has no duplicate contacts.
  "Status.Duplicate": () => false,
  "Status.Crm": (c, linked) => linked(c.contact_id),
};

/**
 * A local Zoho Books API v3 and Zoho Accounts OAuth server that behaves like the real ones,
 * limits and failures included: every Zoho answer the service must handle (see the Zoho facts
 * page) can be produced through `settings`. `url` serves both the accounts server (`/oauth/v2/token`) and the API
 * domain (`/books/v3/…`); `/__sandbox/…` is the control API (see control.ts).
 *
 * Checks on a Books request, in order: route and method (405), Authorization header (14),
 * token and scope (57), organization (6024 or its variants), concurrency (1070), per-minute
 * (44) and daily (45) limits, then the faults (latency, hang, failure) and the operation. Every
 * answer from the limits on carries the daily quota in X-Rate-Limit-* headers, as Zoho's do.
 *
 * @example
 * const sandbox = await startSandbox({ contacts: 50, settings: { rateLimitPerMinute: 600 } });
 * const { access_token } = sandbox.issueToken();
 * sandbox.settings.failNext = 3; // the next three Books calls answer HTTP 500
 * await sandbox.close();
 */
export async function startSandbox(options: SandboxOptions = {}): Promise<Sandbox> {
  const contactCount = options.contacts ?? 300;
  const inactiveEvery = options.inactiveEvery ?? 4;
  const organizations = Array.from({ length: Math.max(1, options.organizations ?? 1) }, (_, i) =>
    memberOrganizationId(i),
  );
  const members: ReadonlySet<string> = new Set(organizations);
  const startSettings = resolveSettings(options.settings);
  let state = seededState(contactCount, inactiveEvery, organizations, options.crm);
  /** Books requests in progress, all organizations and each; it outlives reset(), which cannot stop them */
  let inFlight = 0;
  const inFlightOf = new Map<string, number>();
  const now = () => Date.now() + state.clockOffsetMs;

  /** A Books answer `{code, message}`, the message in the organization's language. */
  function said(status: number, code: number, id: MessageId): Answer {
    return zohoError(status, code, message(sandbox.settings.language, id));
  }

  function methodNotAllowed(method: string | undefined, allowed: string): Answer {
    const text = message(sandbox.settings.language, "methodNotAllowed", { method: String(method) });
    return { status: 405, body: { message: text }, headers: { allow: allowed } };
  }

  // ---------------------------------------------------------------------------- OAuth

  function issueToken(): { access_token: string; expires_in: number } {
    const { tokenLifetimeSeconds, maxLiveTokens } = sandbox.settings;
    const t = now();
    for (const [token, expiresAt] of state.tokens) if (expiresAt <= t) state.tokens.delete(token);
    const token = `1000.${randomBytes(16).toString("hex")}.${randomBytes(16).toString("hex")}`;
    state.tokens.set(token, t + tokenLifetimeSeconds * 1000);
    for (const oldest of state.tokens.keys()) {
      if (state.tokens.size <= maxLiveTokens) break;
      state.tokens.delete(oldest);
    }
    return { access_token: token, expires_in: tokenLifetimeSeconds };
  }

  function grant(params: URLSearchParams): Answer {
    const s = sandbox.settings;
    const refuse = (error: string, status = 200, more: Json = {}): Answer => ({
      status,
      body: { error, ...more },
    });
    if (s.accountsUnavailable) return { status: 502, body: OUTAGE_PAGE };
    if (params.get("grant_type") !== "refresh_token") return refuse("unsupported_grant_type");
    if (
      params.get("client_id") !== SANDBOX_CREDENTIALS.client_id ||
      params.get("client_secret") !== SANDBOX_CREDENTIALS.client_secret
    )
      return refuse("invalid_client");
    if (params.get("refresh_token") !== SANDBOX_CREDENTIALS.refresh_token || s.refreshTokenRevoked)
      return refuse("invalid_code");

    // A sliding window of grants; once it is full, every grant is refused for the next 10 minutes.
    const t = now();
    state.grantTimes = state.grantTimes.filter((at) => t - at < GRANT_WINDOW_MS);
    if (t >= state.grantsBlockedUntil && state.grantTimes.length >= s.grantLimit)
      state.grantsBlockedUntil = t + GRANT_WINDOW_MS;
    if (t < state.grantsBlockedUntil) {
      state.stats.grantsRefused++;
      return refuse("Access Denied", s.tooManyGrantsStatus, {
        error_description:
          "You have made too many requests continuously. Please try again after some time.",
        status: "failure",
      });
    }
    state.grantTimes.push(t);
    state.stats.grants++;
    const { access_token, expires_in } = issueToken();
    return {
      status: 200,
      body: {
        access_token,
        api_domain: sandbox.url,
        token_type: "Bearer",
        ...(s.omitExpiresIn ? {} : { expires_in }),
        scope: s.grantedScopes.join(" "),
      },
    };
  }

  // ---------------------------------------------------------------------------- Books checks

  function checkToken(authorization: string | undefined, scope: string): Answer | undefined {
    const token = /^Zoho-oauthtoken (\S+)$/.exec(authorization ?? "")?.[1];
    if (!token) return said(401, 14, "invalidToken");
    const expiresAt = state.tokens.get(token);
    // Zoho answers 57 alike for an unknown, expired or revoked token and for a missing scope.
    if (
      expiresAt === undefined ||
      expiresAt <= now() ||
      !sandbox.settings.grantedScopes.includes(scope)
    )
      return said(401, 57, "notAuthorized");
    return undefined;
  }

  /** The user belongs to the member organizations only; a missing id gets the same answer. */
  function checkOrganization(organizationId: string | null): Answer | undefined {
    if (organizationId !== null && members.has(organizationId)) return undefined;
    const code = sandbox.settings.invalidOrganizationCode;
    return said(400, code, code === 6024 ? "notMember" : "invalidOrganization");
  }

  /** Calls in progress are limited per organization, as the minute and the day are. */
  function checkConcurrency(organizationId: string): Answer | undefined {
    if ((inFlightOf.get(organizationId) ?? 0) < sandbox.settings.concurrencyLimit) return undefined;
    return said(429, 1070, "tooManyInProgress");
  }

  /** The daily window `t` falls in, counted from the origin, and whole seconds until it ends. */
  function dailyWindow(t: number): { index: number; resetSeconds: number } {
    const { dailyWindowSeconds, dailyResetOrigin } = sandbox.settings;
    const windowMs = dailyWindowSeconds * 1000;
    const origin = dailyResetOrigin ?? state.origin;
    const index = Math.floor((t - origin) / windowMs);
    return { index, resetSeconds: Math.ceil((origin + (index + 1) * windowMs - t) / 1000) };
  }

  /**
   * Counts the request against the organization's calendar minute and daily window (sandbox
   * clock), or refuses it. What counts: every request that got past auth, organization and
   * concurrency; a request refused here (429) is not counted, so the organization is blocked for
   * exactly the rest of the minute (or window), however often a client retries meanwhile.
   * `headers`: the daily quota as reported with the answer (also with a refusal), when there is one.
   */
  function takeQuota(organizationId: string): {
    refusal: Answer | undefined;
    headers: Record<string, string>;
  } {
    const s = sandbox.settings;
    const t = now();
    const minute = Math.floor(t / 60_000);
    const { index: day, resetSeconds } = dailyWindow(t);
    const usage = usageOf(organizationId); // only a member organization gets this far
    if (usage.minute !== minute) Object.assign(usage, { minute, inMinute: 0 });
    if (usage.day !== day) Object.assign(usage, { day, inDay: 0 });
    let refusal: Answer | undefined;
    if (usage.inMinute >= s.rateLimitPerMinute) refusal = said(429, 44, "perMinute");
    else if (s.dailyLimit !== null && usage.inDay >= s.dailyLimit)
      refusal = said(429, s.dailyLimitCode, "daily");
    else {
      usage.inMinute++;
      usage.inDay++;
    }
    const headers: Record<string, string> =
      s.dailyLimit === null || !s.rateLimitHeaders
        ? {}
        : {
            "X-Rate-Limit-Limit": String(s.dailyLimit),
            "X-Rate-Limit-Remaining": String(Math.max(0, s.dailyLimit - usage.inDay)),
            "X-Rate-Limit-Reset": String(resetSeconds),
          };
    return { refusal, headers };
  }

  /** Whether a fault strikes this request: one of the next N for sure, else by the seeded PRNG. */
  function strikes(next: "failNext" | "hangNext", rate: number): boolean {
    const s = sandbox.settings;
    if (s[next] > 0) {
      s[next]--;
      return true;
    }
    return rate > 0 && state.random() < rate;
  }

  function failure(): Answer {
    if (sandbox.settings.failureStyle === "html") return { status: 502, body: OUTAGE_PAGE };
    // Zoho's internal errors come as code 5 or 1000; alternate so clients meet both.
    const code = state.jsonFailures++ % 2 === 0 ? 5 : 1000;
    return said(500, code, "internal");
  }

  // ---------------------------------------------------------------------------- Books operations

  /** An organization's minute and day counts. */
  function usageOf(organizationId: string) {
    let usage = state.usage.get(organizationId);
    if (!usage) {
      usage = { minute: 0, inMinute: 0, day: 0, inDay: 0 };
      state.usage.set(organizationId, usage);
    }
    return usage;
  }

  /** An organization's contacts, by contact_id (the map keeps the seed's order). */
  function contactsOf(organizationId = ORGANIZATION_ID): StoredContact[] {
    return [...state.contacts.values()].filter((c) => c.organization_id === organizationId);
  }

  function changeStatus(contact: StoredContact, status: "active" | "inactive"): void {
    if (contact.status === status) return;
    contact.status = status;
    contact.last_modified_time = zohoTime(now());
  }

  function operate(route: Route, params: URLSearchParams): Answer {
    const s = sandbox.settings;
    const organizationId = params.get("organization_id") ?? ORGANIZATION_ID;
    if (route.contactId === undefined) return listContacts(params, organizationId);
    const contact = state.contacts.get(route.contactId);
    if (contact?.organization_id !== organizationId) {
      const id = s.notFoundCode === 2 ? "invalidContactId" : "doesNotExist";
      return said(s.notFoundStatus, s.notFoundCode, id);
    }
    if (!route.action) return success({ contact: detailOf(contact) });
    const target = route.action;
    if (contact.status === target && s.alreadyInStateAnswer === "error") {
      return target === "active"
        ? said(400, 3031, "alreadyActive")
        : said(400, 3032, "alreadyInactive");
    }
    changeStatus(contact, target);
    return said(200, 0, target === "active" ? "markedActive" : "markedInactive");
  }

  /** The CRM ids a contact is linked to by Zoho's CRM integration, if it is. */
  const crmLink = (id: string) => state.crm.seed.bookLinks.get(id);

  /** `GET /contacts/{id}`'s contact: the CRM link and every amount added to Zoho's detail shape. */
  function detailOf(contact: StoredContact) {
    const link = crmLink(contact.contact_id);
    return {
      ...contactDetail(contact),
      outstanding_payable_amount: contact.outstanding_payable_amount,
      is_linked_with_zohocrm: link !== undefined,
      ...(link ?? {}),
    };
  }

  /** A list row, with the CRM ids only when booksListCrmIds says rows carry them. */
  function rowOf(contact: StoredContact) {
    const link = crmLink(contact.contact_id);
    return sandbox.settings.booksListCrmIds && link
      ? { ...listRow(contact), ...link }
      : listRow(contact);
  }

  function listContacts(params: URLSearchParams, organizationId: string): Answer {
    const filter = STATUS_FILTERS[params.get("filter_by") ?? "Status.All"];
    if (!filter) return said(400, 2, "invalidFilter");
    const byStatus = (c: StoredContact) => filter(c, (id) => crmLink(id) !== undefined);
    // Documented filters: the contacts linked to a CRM account or contact.
    const zcrmAccount = params.get("zcrm_account_id");
    const zcrmContact = params.get("zcrm_contact_id");
    const page = positiveInteger(params.get("page")) ?? 1;
    const perPage = Math.min(PAGE_SIZE_MAX, positiveInteger(params.get("per_page")) ?? 200);
    // Zoho matches these loosely (any case, any part): callers must compare exactly themselves.
    // `email` is "email of the contact person": any person's, though a row shows the primary's.
    const email = params.get("email")?.toLowerCase();
    const text = params.get("search_text")?.toLowerCase();
    // Undocumented (zoho-facts.md): contacts modified at or after the time, unless ignored.
    const since = sandbox.settings.lastModifiedTimeFilter
      ? Date.parse(params.get("last_modified_time") ?? "")
      : Number.NaN;
    const matching = contactsOf(organizationId)
      .filter(byStatus)
      .filter((c) => !email || c.contact_persons.some((p) => p.email.toLowerCase().includes(email)))
      .filter(
        (c) =>
          !text ||
          c.contact_name.toLowerCase().includes(text) ||
          c.email.toLowerCase().includes(text),
      )
      .filter((c) => Number.isNaN(since) || Date.parse(c.last_modified_time) >= since)
      .filter((c) => zcrmAccount === null || crmLink(c.contact_id)?.zcrm_account_id === zcrmAccount)
      .filter(
        (c) => zcrmContact === null || crmLink(c.contact_id)?.zcrm_contact_id === zcrmContact,
      );
    const sorted = sortContacts(matching, params.get("sort_column"), params.get("sort_order"));
    if (!sorted) return said(400, 2, "invalidFilter");
    return success({
      contacts: sorted.slice((page - 1) * perPage, page * perPage).map(rowOf),
      page_context: { page, per_page: perPage, has_more_page: page * perPage < sorted.length },
    });
  }

  async function books(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    route: Route,
  ): Promise<Answer | undefined> {
    const method = route.action ? "POST" : "GET";
    if (req.method !== method) return methodNotAllowed(req.method, method);
    const scope = route.action ? sandbox.settings.requiredScope : READ_SCOPE;
    const organizationId = url.searchParams.get("organization_id");
    const refusal =
      checkToken(req.headers.authorization, scope) ??
      checkOrganization(organizationId) ??
      checkConcurrency(organizationId as string);
    if (refusal) return refusal;
    // From here on every answer carries the daily quota (as of this request), as Zoho's do.
    const quota = takeQuota(organizationId as string);
    const reply = quota.refusal ?? (await carryOut(res, url, route, organizationId as string));
    // An outage page comes from a proxy in front of Books: no quota on it.
    if (!reply || typeof reply.body === "string") return reply;
    return { ...reply, headers: { ...reply.headers, ...quota.headers } };
  }

  /** A counted request: the faults (latency, hang, failure), then the operation. */
  async function carryOut(
    res: ServerResponse,
    url: URL,
    route: Route,
    organizationId: string,
  ): Promise<Answer | undefined> {
    inFlight++;
    inFlightOf.set(organizationId, (inFlightOf.get(organizationId) ?? 0) + 1);
    state.stats.maxInFlight = Math.max(state.stats.maxInFlight, inFlight);
    try {
      const s = sandbox.settings;
      if (s.latencyMs > 0) await sleep(s.latencyMs);
      if (strikes("hangNext", s.hangRate)) {
        await closed(res); // never answered: in progress until the client (or close()) hangs up
        return undefined;
      }
      if (strikes("failNext", s.failureRate)) return failure();
      return operate(route, url.searchParams);
    } finally {
      inFlight--;
      inFlightOf.set(organizationId, (inFlightOf.get(organizationId) ?? 1) - 1);
    }
  }

  // ---------------------------------------------------------------------------- HTTP

  async function answer(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    route: Route,
  ): Promise<Answer | undefined> {
    if (route.endpoint.startsWith("crm.")) {
      const authorization = req.headers.authorization;
      return crm.answer(req.method ?? "", url.pathname, url.searchParams, authorization, () =>
        readJson(req),
      );
    }
    switch (route.endpoint) {
      case "control":
        return controlAnswer(sandbox, req.method ?? "", url.pathname, () => readJson(req));
      case "token":
        if (req.method !== "POST") return methodNotAllowed(req.method, "POST");
        return grant(await grantParams(req, url));
      case "unknown":
        return said(404, 404, "invalidUrl");
      default:
        return books(req, res, url, route);
    }
  }

  /** Records the request on arrival, answers it, and counts it once answered (or abandoned). */
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://sandbox");
    const route = routeOf(url.pathname);
    const entry: RecordedRequest = {
      at: now(),
      method: req.method ?? "",
      url: (req.url ?? "").replace(SECRET_PARAMS, "$1[REDACTED]"),
      endpoint: route.endpoint,
      status: 0,
      authorization: req.headers.authorization ? "present" : "absent",
    };
    state.requests.push(entry);
    let reply: Answer | undefined;
    try {
      reply = await answer(req, res, url, route);
    } catch (error) {
      reply = zohoError(500, 500, `Sandbox error: ${String(error)}`);
    }
    if (reply) {
      entry.status = reply.status;
      const code = (reply.body as Json | null | undefined)?.code;
      if (typeof code === "number") entry.code = code;
      if (typeof code === "string") entry.crmCode = code;
      send(res, reply);
    }
    if (route.endpoint.startsWith("crm.")) crm.count(entry.endpoint, entry.status, entry.crmCode);
    else if (route.endpoint !== "control") count(entry);
  }

  function count(entry: RecordedRequest): void {
    const stats = state.stats;
    stats.calls[entry.endpoint] = (stats.calls[entry.endpoint] ?? 0) + 1;
    stats.byStatus[entry.status] = (stats.byStatus[entry.status] ?? 0) + 1;
    if (entry.code !== undefined) stats.byCode[entry.code] = (stats.byCode[entry.code] ?? 0) + 1;
    if (entry.status === 429) stats.throttled++;
  }

  const crm = createCrm({
    get settings() {
      return sandbox.settings;
    },
    state: () => state.crm,
    now,
    tokenIsLive(token) {
      const expiresAt = state.tokens.get(token);
      return expiresAt !== undefined && expiresAt > now();
    },
    url: () => sandbox.url,
  });

  const server = createServer((req, res) => void handle(req, res));
  // Node's default keeps an idle connection 5 s, then closes it: a request the client sends on it
  // at that moment fails with "socket hang up" (ECONNRESET), which tests with one SDK attempt
  // cannot retry. Kept open here; close() ends them all.
  server.keepAliveTimeout = 10 * 60_000;
  server.listen(options.port ?? 0, "127.0.0.1");
  await once(server, "listening"); // rejects on an error such as EADDRINUSE
  const { port } = server.address() as AddressInfo;

  const sandbox: Sandbox = {
    url: `http://127.0.0.1:${port}`,
    settings: resolveSettings(startSettings),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections(); // hanging requests included: nothing is awaited
      }),
    reset() {
      state = seededState(contactCount, inactiveEvery, organizations, options.crm);
      Object.assign(sandbox.settings, resolveSettings(startSettings)); // same object: held references stay live
    },
    advanceClock(seconds) {
      state.clockOffsetMs += seconds * 1000;
    },
    now,
    dailyQuota() {
      const { dailyLimit } = sandbox.settings;
      const { index, resetSeconds } = dailyWindow(now());
      const usage = usageOf(ORGANIZATION_ID);
      const used = usage.day === index ? usage.inDay : 0;
      const remaining = dailyLimit === null ? null : Math.max(0, dailyLimit - used);
      return { limit: dailyLimit, used, remaining, resetSeconds };
    },
    issueToken,
    revokeAccessTokens: () => state.tokens.clear(),
    contact(id) {
      const found = state.contacts.get(id);
      return found && publicContact(found);
    },
    setContactStatus(id, status) {
      const found = state.contacts.get(id);
      if (!found) throw new Error(`The sandbox has no contact ${id}`);
      changeStatus(found, status);
    },
    contacts: (organizationId) => contactsOf(organizationId).map(publicContact),
    stats: () => structuredClone(state.stats),
    requests: () => state.requests.map((entry) => ({ ...entry })),
    clearRequests() {
      state.stats = emptyStats();
      state.crm.stats = emptyCrmStats();
      state.requests = [];
    },
    setContactAmounts(id, amounts) {
      const found = state.contacts.get(id);
      if (!found) throw new Error(`The sandbox has no contact ${id}`);
      for (const [name, value] of Object.entries(amounts)) {
        if (!AMOUNTS.includes(name as keyof SandboxContactAmounts))
          throw new TypeError(`${name} is not an amount of a contact`);
        if (typeof value !== "number" || !Number.isFinite(value))
          throw new TypeError(`${name} must be a number`);
      }
      Object.assign(found, amounts);
    },
    contactAmounts(id) {
      const found = state.contacts.get(id);
      if (!found) return undefined;
      return {
        outstanding_receivable_amount: found.outstanding_receivable_amount,
        outstanding_payable_amount: found.outstanding_payable_amount,
        unused_credits_receivable_amount: found.unused_credits_receivable_amount,
      };
    },
    crm: crm.sandboxCrm,
  };
  return sandbox;
}

/** The amounts a contact carries, settable through setContactAmounts. */
const AMOUNTS: readonly (keyof SandboxContactAmounts)[] = [
  "outstanding_receivable_amount",
  "outstanding_payable_amount",
  "unused_credits_receivable_amount",
];

/** Everything reset() starts afresh. */
function seededState(
  contactCount: number,
  inactiveEvery: number,
  organizations: string[],
  crmSeed: SandboxOptions["crm"],
) {
  const contacts = new Map<string, StoredContact>();
  const seed = seedContacts(contactCount, inactiveEvery);
  organizations.forEach((organizationId, index) => {
    for (const [i, c] of seed.entries()) {
      // the main organization's ids as seeded; another's in its own range
      const id = index === 0 ? c.contact_id : memberContactId(index, i + 1);
      contacts.set(id, {
        ...c,
        contact_id: id,
        organization_id: organizationId,
        outstanding_payable_amount: 0,
      });
    }
  });
  for (const c of seedForeignContacts())
    contacts.set(c.contact_id, {
      ...c,
      organization_id: FOREIGN_ORGANIZATION_ID,
      outstanding_payable_amount: 0,
    });
  return {
    /** the CRM organization: its records, channels, credits and stats */
    crm: crmState(seed, crmSeed),
    clockOffsetMs: 0,
    contacts,
    /** access token → expiry on the sandbox clock, oldest first (one refresh token, one user) */
    tokens: new Map<string, number>(),
    grantTimes: [] as number[],
    grantsBlockedUntil: 0,
    /** per organization: its Books requests in the current calendar minute and daily window */
    usage: new Map<string, { minute: number; inMinute: number; day: number; inDay: number }>(),
    /** where daily windows are counted from unless dailyResetOrigin says otherwise (sandbox clock) */
    origin: Date.now(),
    random: prng(FAULT_SEED),
    jsonFailures: 0,
    stats: emptyStats(),
    requests: [] as RecordedRequest[],
  };
}

function routeOf(path: string): Route {
  if (path.startsWith("/__sandbox/")) return { endpoint: "control" };
  if (path === "/oauth/v2/token") return { endpoint: "token" };
  if (path.startsWith("/crm/")) return { endpoint: crmEndpoint(path) };
  const books = BOOKS_PATH.exec(path);
  if (!books) return { endpoint: "unknown" };
  const [, contactId, action] = books;
  if (action === "active" || action === "inactive")
    return { endpoint: `contact.${action}`, contactId, action };
  return contactId ? { endpoint: "contact.get", contactId } : { endpoint: "contacts.list" };
}

/** The grant's parameters, from a form body or the query string (Zoho takes either). */
async function grantParams(req: IncomingMessage, url: URL): Promise<URLSearchParams> {
  const form = req.headers["content-type"]?.startsWith("application/x-www-form-urlencoded");
  const params = new URLSearchParams(form ? await readText(req) : "");
  for (const [name, value] of url.searchParams) if (!params.has(name)) params.set(name, value);
  return params;
}

function zohoError(status: number, code: number, message: string): Answer {
  return { status, body: { code, message } };
}

function success(fields: Json): Answer {
  return { status: 200, body: { code: 0, message: "success", ...fields } };
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

function publicContact({
  organization_id: _,
  outstanding_payable_amount: __,
  ...contact
}: StoredContact): SandboxContact {
  return structuredClone(contact);
}

/** A row of the contact list: the primary person's `email`, no `contact_persons`. */
function listRow(contact: StoredContact): Omit<SandboxContact, "contact_persons"> {
  const { contact_persons: _, ...row } = publicContact(contact);
  return row;
}

/** `GET /contacts/{id}`'s contact: no top-level `email`, the addresses in `contact_persons`. */
function contactDetail(contact: StoredContact): Omit<SandboxContact, "email"> {
  const { email: _, ...detail } = publicContact(contact);
  return detail;
}

/**
 * The list in `sort_column` order (`sort_order` A or D; ties by contact id). Without a column, the
 * seed's order, which stands in for Zoho's default (contact_name): both shift when contacts come
 * and go. undefined for a column the sandbox does not know.
 */
function sortContacts(
  contacts: StoredContact[],
  column: string | null,
  order: string | null,
): StoredContact[] | undefined {
  if (column === null) return order === "D" ? contacts.reverse() : contacts;
  const keys: Record<string, (c: StoredContact) => string | number> = {
    contact_name: (c) => c.contact_name,
    last_modified_time: (c) => Date.parse(c.last_modified_time),
  };
  const key = keys[column];
  if (!key) return undefined;
  const sign = order === "D" ? -1 : 1;
  return contacts.sort((a, b) => {
    const [x, y] = [key(a), key(b)];
    if (x !== y) return (x < y ? -1 : 1) * sign;
    return (a.contact_id < b.contact_id ? -1 : 1) * sign;
  });
}

/** Zoho's timestamp form: 2026-01-01T00:00:00+0000 */
function zohoTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "+0000");
}

function positiveInteger(text: string | null): number | undefined {
  const n = Number(text);
  return text !== null && Number.isInteger(n) && n > 0 ? n : undefined;
}

/** A small deterministic PRNG (mulberry32), so fault rates strike the same requests every run. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Resolves once the client, or close(), has hung up. */
function closed(res: ServerResponse): Promise<void> {
  if (res.socket === null || res.socket.destroyed) return Promise.resolve();
  return new Promise((resolve) => res.once("close", () => resolve()));
}

function send(res: ServerResponse, answer: Answer): void {
  if (res.writableEnded || res.destroyed) return;
  if (answer.body === undefined) {
    // 204: no body, no content type (the CRM's COQL answer to a query that matches nothing)
    res.writeHead(answer.status, answer.headers);
    res.end();
    return;
  }
  const html = typeof answer.body === "string";
  res.writeHead(answer.status, {
    "content-type": html ? "text/html; charset=UTF-8" : "application/json;charset=UTF-8",
    ...answer.headers,
  });
  res.end(html ? answer.body : JSON.stringify(answer.body));
}

async function readText(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** The JSON body ({} when empty), or undefined when it is not JSON. */
async function readJson(req: IncomingMessage): Promise<unknown> {
  try {
    return JSON.parse((await readText(req)) || "{}");
  } catch {
    return undefined;
  }
}
