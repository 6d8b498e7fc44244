import type { CrmSandbox } from "./crm/crm";
import type { CrmLink, CrmSeedOptions } from "./crm/seed";
import type { SandboxSettings } from "./settings";

/** A person of a contact: Zoho keeps a contact's addresses here, the primary one and others. */
export interface SandboxContactPerson {
  contact_person_id: string;
  first_name: string;
  last_name: string;
  email: string;
  is_primary_contact: boolean;
}

/**
 * A Books contact as the sandbox keeps it. The list answers it without `contact_persons`, its
 * `email` being the primary person's; `GET /contacts/{id}` answers it without `email` (Zoho's
 * shape), the addresses being in `contact_persons`.
 */
export interface SandboxContact {
  contact_id: string;
  contact_name: string;
  company_name: string;
  contact_type: "customer" | "vendor";
  status: "active" | "inactive";
  /** the primary contact person's */
  email: string;
  last_modified_time: string;
  /** receivables still due; on list rows and the detail (Zoho's samples show it on both) */
  outstanding_receivable_amount: number;
  /** unused customer credits; on list rows and the detail */
  unused_credits_receivable_amount: number;
  contact_persons: SandboxContactPerson[];
}

/** The amounts a contact carries: the list shows the receivable ones, the detail all three. */
export interface SandboxContactAmounts {
  outstanding_receivable_amount: number;
  outstanding_payable_amount: number;
  unused_credits_receivable_amount: number;
}

export interface SandboxOptions {
  /** 0 or absent: a free port */
  port?: number;
  /** contacts in the main organization (and in each other one); default 300 */
  contacts?: number;
  /**
   * organizations the user belongs to, each with its own contacts, calendar minute, daily window
   * and calls in progress (the limits of `settings` apply to each): the main one and
   * `organizations - 1` more (`memberOrganizationId(1)`, …). Default 1.
   */
  organizations?: number;
  /** every n-th seed contact is inactive; default 4 (the seed's notable contacts assume 4) */
  inactiveEvery?: number;
  /** over DEFAULT_SETTINGS; `reset()` comes back to these. Invalid ones make startSandbox throw. */
  settings?: Partial<SandboxSettings>;
  /** the CRM organization's seed: by default one account (and contact) per Books contact, all linked */
  crm?: CrmSeedOptions;
}

export type { CrmLink, CrmSeedOptions };

/** What a request is recorded and counted as. */
export type SandboxEndpoint =
  | "token"
  | "contact.active"
  | "contact.inactive"
  | "contact.get"
  | "contacts.list"
  | "control"
  | "crm.coql"
  | "crm.fields"
  | "crm.watch"
  | "crm.unknown"
  | "unknown";

export interface RecordedRequest {
  /** arrival, on the sandbox clock (ms since the epoch) */
  at: number;
  method: string;
  /**
   * path and query as received, except the values of secret parameters (client_secret,
   * refresh_token, …), replaced by `[REDACTED]`. No header or body is ever recorded.
   */
  url: string;
  endpoint: SandboxEndpoint;
  /** 0 while the request is in progress, and for good when it was left hanging */
  status: number;
  /** the `code` of a JSON answer (Books, OAuth) */
  code?: number;
  /** the `code` of a CRM error answer (CRM codes are words) */
  crmCode?: string;
  authorization: "present" | "absent";
}

/** Counts of Books, token and unknown-path requests (control and CRM requests are not counted). */
export interface SandboxStats {
  calls: Partial<Record<SandboxEndpoint, number>>;
  /** by HTTP status; "0" counts requests left hanging */
  byStatus: Record<string, number>;
  /** by the `code` of JSON answers */
  byCode: Record<string, number>;
  /** access tokens granted at the token endpoint (issueToken() is not a grant) */
  grants: number;
  /** grants refused with "Access Denied" (too many grants) */
  grantsRefused: number;
  /** HTTP 429 answers (codes 44, 45 and 1070) */
  throttled: number;
  /** the most Books requests in progress at once, all organizations together */
  maxInFlight: number;
}

export interface SandboxDailyQuota {
  /** dailyLimit; null: no cap */
  limit: number | null;
  used: number;
  remaining: number | null;
  /** whole seconds until the window ends and the count starts again */
  resetSeconds: number;
}

export interface Sandbox {
  /** e.g. http://127.0.0.1:41234: both the accounts server (/oauth/v2/token) and the API domain (/books/v3) */
  url: string;
  /** live and mutable: read on every request */
  settings: SandboxSettings;
  /** Stops at once: open connections (a hanging request's included) are destroyed, not awaited. */
  close(): Promise<void>;
  /** Reseeds contacts; clears stats, requests, tokens, grant and rate windows and the clock offset; restores the start settings. */
  reset(): void;
  /** Moves the sandbox clock (token expiry, rate and grant windows), which is Date.now() + an offset. */
  advanceClock(seconds: number): void;
  /** the sandbox clock, in ms since the epoch */
  now(): number;
  /** the main organization's daily quota now: requests counted in the current window, seconds to its end */
  dailyQuota(): SandboxDailyQuota;
  /** a valid access token that does not count as a grant (tests seed a fresh token with it) */
  issueToken(): { access_token: string; expires_in: number };
  /** Every access token issued so far becomes invalid (→ 57). */
  revokeAccessTokens(): void;
  /** a contact of any organization, by id */
  contact(id: string): SandboxContact | undefined;
  /** Sets a contact's status as if changed in Zoho's UI (throws for an unknown id). */
  setContactStatus(id: string, status: "active" | "inactive"): void;
  /** the main organization's contacts (or the given member organization's), by contact_id */
  contacts(organizationId?: string): SandboxContact[];
  stats(): SandboxStats;
  /** every request seen (Books, OAuth, control, unknown), in order of arrival */
  requests(): RecordedRequest[];
  /** Forgets the recorded requests and the stats (Books and CRM). */
  clearRequests(): void;
  /** Sets a contact's amounts (throws for an unknown id); the other amounts are kept. */
  setContactAmounts(id: string, amounts: Partial<SandboxContactAmounts>): void;
  /** a contact's amounts, all three */
  contactAmounts(id: string): SandboxContactAmounts | undefined;
  /** the CRM served at `/crm/v8/…`: its records, stats and notification channels */
  crm: CrmSandbox;
}
