import { ENV_DEFAULTS } from "../config";
import {
  ServiceError,
  ZOHO_ALREADY_ACTIVE,
  ZOHO_ALREADY_INACTIVE,
  ZOHO_SUCCESS,
  type ZohoAnswer,
  zohoAnswerToError,
} from "../errors";
import { assertZohoId } from "../ids";
import type { CallPermit, Lane } from "../ledger/budget";
import type { AccessToken } from "./accounts";
import { parseJsonObject } from "./accounts";

/** The part of the token store the client needs. */
export interface AccessTokenSource {
  getAccessToken(): Promise<AccessToken>;
  replaceRejectedToken(rejected: string): Promise<AccessToken>;
}

/** Decides when a call to an organization may go out: the ledger's budget (see ZohoBudget). */
export interface CallBudget {
  acquire(organizationId: string, lane: Lane, options: { maxWaitMs: number }): Promise<CallPermit>;
}

/** Whose call this is and how long it may wait for the budget. */
export interface CallOptions {
  /** default: the client's `lane` */
  lane?: Lane;
  /** default: the client's `maxWaitMs` */
  maxWaitMs?: number;
  /**
   * when (epoch ms) every call must have ended: a call whose timeout no longer fits before it is
   * not started (`OUT_OF_TIME`), and none waits for the budget past the point where it would not
   */
  deadline?: number;
}

export interface ZohoBooksClientOptions {
  tokens: AccessTokenSource;
  /** every Books call takes a permit from it first; default: none (tests of the client alone) */
  budget?: CallBudget;
  /** the lane of calls that name none; default "interactive" */
  lane?: Lane;
  /** how long a call may wait for the budget unless it says otherwise; default 0 */
  maxWaitMs?: number;
  /** per-request timeout (`ZOHO_HTTP_TIMEOUT_MS`); default 10000 */
  timeoutMs?: number;
  fetch?: typeof fetch;
  now?: () => Date;
}

export type ContactStatus = "active" | "inactive";
export type StatusFilter = "Status.All" | "Status.Active" | "Status.Inactive";

/** A row of the contact list; its `email` is the primary contact person's only. */
export interface BooksContact {
  contact_id: string;
  contact_name?: string;
  company_name?: string;
  /** "customer" or "vendor" */
  contact_type?: string;
  status: ContactStatus;
  email?: string;
  last_modified_time?: string;
  /** set by Zoho's CRM integration; on list rows only where Zoho puts them there (not documented) */
  zcrm_account_id?: string;
  zcrm_contact_id?: string;
}

/** A person of a contact; a contact's addresses are its persons' (primary and others). */
export interface BooksContactPerson {
  contact_person_id?: string;
  first_name?: string;
  last_name?: string;
  email?: string;
  is_primary_contact?: boolean;
}

/** One contact as `GET /contacts/{id}` answers it: no top-level `email`, its persons instead. */
export interface BooksContactDetail extends Omit<BooksContact, "email"> {
  contact_persons: BooksContactPerson[];
  /**
   * What the contact owes and is owed, in its `currency_code` (Zoho's detail carries all four;
   * its list rows only the receivable ones): read by the deactivation guard
   */
  outstanding_receivable_amount?: number;
  unused_credits_receivable_amount?: number;
  outstanding_payable_amount?: number;
  unused_credits_payable_amount?: number;
  currency_code?: string;
}

export interface ListContactsQuery {
  organizationId: string;
  filterBy?: StatusFilter;
  /** Zoho's own email filter, which may match loosely: callers compare exactly themselves */
  email?: string;
  /** from 1 */
  page?: number;
  /** at most 200 */
  perPage?: number;
  /**
   * `last_modified_time`: contacts modified since (undocumented, used by a public integration;
   * a Zoho that ignores it answers the whole list, so callers check the rows' times themselves)
   */
  modifiedSince?: Date;
  /** `sort_column` (Zoho's default is contact_name) and `sort_order`, A or D */
  sortColumn?: "contact_name" | "last_modified_time";
  sortOrder?: "A" | "D";
  /** the contacts Zoho's CRM integration linked to this CRM account / contact (documented filters) */
  zcrmAccountId?: string;
  zcrmContactId?: string;
}

export interface ContactsPage {
  contacts: BooksContact[];
  page: number;
  hasMorePage: boolean;
}

export interface ActionResult {
  /** false when Zoho said the contact was already in that state (3031/3032) */
  changed: boolean;
  message: string;
}

export const MAX_PER_PAGE = 200;

type Json = Record<string, unknown>;

/**
 * Zoho Books API v3 client for contacts: the Mark as Active / Mark as Inactive actions, one
 * contact, and the contact list. Ids are checked before any URL is built; answers are mapped
 * by the error table; a refused token is replaced once (reload, refresh if still stale) and
 * the call tried again once.
 *
 * @example
 * const books = new ZohoBooksClient({ tokens });
 * await books.markActive("460000000026049", "123456789"); // { changed: true, message: "…" }
 */
export class ZohoBooksClient {
  readonly #tokens: AccessTokenSource;
  readonly #timeoutMs: number;
  readonly #fetch: typeof fetch;
  readonly #now: () => Date;
  readonly #budget: CallBudget | undefined;
  readonly #lane: Lane;
  readonly #maxWaitMs: number;
  /** Zoho calls made through this client (each counts against the organization's quota) */
  calls = 0;

  constructor(options: ZohoBooksClientOptions) {
    this.#tokens = options.tokens;
    this.#timeoutMs = options.timeoutMs ?? ENV_DEFAULTS.ZOHO_HTTP_TIMEOUT_MS;
    this.#fetch = options.fetch ?? fetch;
    this.#now = options.now ?? (() => new Date());
    this.#budget = options.budget;
    this.#lane = options.lane ?? "interactive";
    this.#maxWaitMs = options.maxWaitMs ?? 0;
  }

  /** Mark as Active: `POST /contacts/{id}/active` with an empty body. */
  markActive(contactId: string, organizationId: string, call?: CallOptions): Promise<ActionResult> {
    return this.#action(contactId, organizationId, "active", ZOHO_ALREADY_ACTIVE, call);
  }

  /** Mark as Inactive: `POST /contacts/{id}/inactive` with an empty body. */
  markInactive(
    contactId: string,
    organizationId: string,
    call?: CallOptions,
  ): Promise<ActionResult> {
    return this.#action(contactId, organizationId, "inactive", ZOHO_ALREADY_INACTIVE, call);
  }

  /** One contact with its contact persons (`contact_persons` is [] when Zoho lists none). */
  async getContact(
    contactId: string,
    organizationId: string,
    call?: CallOptions,
  ): Promise<BooksContactDetail> {
    const id = assertZohoId(contactId, "contact_id");
    const body = await this.#call(
      "GET",
      ["contacts", id],
      { organization_id: organizationId },
      undefined,
      call,
    );
    const contact = (body.contact ?? {}) as Partial<BooksContactDetail>;
    const persons = Array.isArray(contact.contact_persons) ? contact.contact_persons : [];
    return { ...contact, contact_persons: persons } as BooksContactDetail;
  }

  /** One page of contacts. */
  async listContacts(query: ListContactsQuery, call?: CallOptions): Promise<ContactsPage> {
    const page = query.page ?? 1;
    const perPage = Math.min(query.perPage ?? MAX_PER_PAGE, MAX_PER_PAGE);
    const body = await this.#call(
      "GET",
      ["contacts"],
      {
        organization_id: query.organizationId,
        filter_by: query.filterBy ?? "Status.All",
        page: String(page),
        per_page: String(perPage),
        ...(query.email === undefined ? {} : { email: query.email }),
        ...(query.modifiedSince === undefined
          ? {}
          : { last_modified_time: zohoTime(query.modifiedSince) }),
        ...(query.sortColumn === undefined ? {} : { sort_column: query.sortColumn }),
        ...(query.sortOrder === undefined ? {} : { sort_order: query.sortOrder }),
        ...(query.zcrmAccountId === undefined
          ? {}
          : { zcrm_account_id: assertZohoId(query.zcrmAccountId, "zcrm_account_id") }),
        ...(query.zcrmContactId === undefined
          ? {}
          : { zcrm_contact_id: assertZohoId(query.zcrmContactId, "zcrm_contact_id") }),
      },
      undefined,
      call,
    );
    const context = (body.page_context ?? {}) as Json;
    return {
      contacts: Array.isArray(body.contacts) ? (body.contacts as BooksContact[]) : [],
      page,
      hasMorePage: context.has_more_page === true,
    };
  }

  /** Every page of contacts, one request at a time, until Zoho says there is no more. */
  async *listAllContacts(
    query: Omit<ListContactsQuery, "page">,
    call?: CallOptions,
  ): AsyncGenerator<ContactsPage> {
    for (let page = 1; ; page++) {
      const result = await this.listContacts({ ...query, page }, call);
      yield result;
      if (!result.hasMorePage) return;
    }
  }

  async #action(
    contactId: string,
    organizationId: string,
    verb: "active" | "inactive",
    alreadyCode: number,
    call: CallOptions | undefined,
  ): Promise<ActionResult> {
    const id = assertZohoId(contactId, "contact_id");
    const body = await this.#call(
      "POST",
      ["contacts", id, verb],
      { organization_id: organizationId },
      alreadyCode,
      call,
    );
    return { changed: body.code === ZOHO_SUCCESS, message: String(body.message ?? "") };
  }

  /**
   * One API call, with one token replacement on 401/57/14. Each request to Zoho takes a permit
   * of the organization's budget and releases it with Zoho's answer (its quota headers, 44, 45).
   * Resolves only with a success body.
   */
  async #call(
    method: "GET" | "POST",
    path: string[],
    query: Record<string, string>,
    alreadyCode: number | undefined,
    call: CallOptions | undefined,
  ): Promise<Json> {
    const organizationId = assertZohoId(query.organization_id, "organization_id");
    let token = await this.#tokens.getAccessToken();
    for (let attempt = 1; ; attempt++) {
      const maxWaitMs = this.#budgetWaitMs(call); // before the permit: a call that cannot fit takes none
      const permit = await this.#budget?.acquire(organizationId, call?.lane ?? this.#lane, {
        maxWaitMs,
      });
      let answer: ZohoAnswer & { body: Json | undefined; headers: Headers };
      try {
        answer = await this.#send(method, token, path, query);
      } catch (error) {
        await permit?.release(neverSent(error) ? "not sent" : undefined);
        throw error;
      }
      const code = typeof answer.body?.code === "number" ? answer.body.code : undefined;
      await permit?.release({ zohoCode: code, headers: answer.headers });
      if (
        (answer.status < 300 && code === ZOHO_SUCCESS) ||
        (alreadyCode !== undefined && code === alreadyCode)
      ) {
        return answer.body as Json;
      }
      // Which ids the request carried tells an organization error from a contact error (2, 1002).
      const error = zohoAnswerToError({ ...answer, contactInPath: path.length > 1 }, this.#now());
      if (error.code !== "ZOHO_UNAUTHORIZED" || attempt > 1) throw error;
      token = await this.#tokens.replaceRejectedToken(token.accessToken);
    }
  }

  /** How long a call may wait for the budget: as asked, and never so long it could end past the deadline. */
  #budgetWaitMs(call: CallOptions | undefined): number {
    const asked = call?.maxWaitMs ?? this.#maxWaitMs;
    if (call?.deadline === undefined) return asked;
    const spareMs = call.deadline - Date.now() - this.#timeoutMs;
    if (spareMs < 0) {
      throw new ServiceError(
        "OUT_OF_TIME",
        `No time left in this invocation for a Zoho call and its ${this.#timeoutMs} ms timeout; the job is sent again.`,
        { retryAfterSeconds: 0 },
      );
    }
    return Math.min(asked, spareMs);
  }

  async #send(
    method: string,
    token: AccessToken,
    path: string[],
    query: Record<string, string>,
  ): Promise<ZohoAnswer & { body: Json | undefined; headers: Headers }> {
    const url = new URL(token.apiDomain);
    url.pathname = ["/books/v3", ...path.map(encodeURIComponent)].join("/");
    for (const [name, value] of Object.entries(query)) url.searchParams.set(name, value);
    this.calls++;
    // A timer cleared on the answer costs a third of AbortSignal.timeout(), which keeps its
    // timer alive until it fires (measured: 5 against 15 µs a call).
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), this.#timeoutMs);
    try {
      const response = await this.#fetch(url, {
        method,
        headers: {
          Authorization: `Zoho-oauthtoken ${token.accessToken}`,
          Accept: "application/json",
        },
        signal: timeout.signal,
      });
      // An outage can answer an HTML page or nothing: that is no body, not a crash.
      const body = parseJsonObject(await response.text());
      return {
        status: response.status,
        body,
        retryAfter: response.headers.get("retry-after"),
        dailyRemaining: response.headers.get("x-rate-limit-remaining"),
        dailyReset: response.headers.get("x-rate-limit-reset"),
        headers: response.headers,
      };
    } catch (error) {
      if (timeout.signal.aborted) {
        throw new ServiceError(
          "ZOHO_UNAVAILABLE",
          `Zoho Books did not answer within ${this.#timeoutMs} ms.`,
          {
            httpStatus: 504,
          },
        );
      }
      throw new ServiceError("ZOHO_UNAVAILABLE", `Could not reach Zoho Books at ${url.origin}.`, {
        cause: error,
      });
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Zoho's timestamp form, `2026-01-01T00:00:00+0000` (UTC, whole seconds). */
export function zohoTime(at: Date): string {
  return at.toISOString().replace(/\.\d{3}Z$/, "+0000");
}

/** Errors of the connection's setup (DNS, refused, no route): the request never left, Zoho counted nothing. */
const NOT_SENT_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
]);

function neverSent(error: unknown): boolean {
  const cause = (error as { cause?: { cause?: { code?: unknown }; code?: unknown } })?.cause;
  const code = cause?.code ?? cause?.cause?.code; // ServiceError → fetch's TypeError → the socket error
  return typeof code === "string" && NOT_SENT_CODES.has(code);
}
