import pRetry from "p-retry";
import { organizationFor, type SecretReader } from "./credentials/secret";
import { ServiceError, toServiceError } from "./errors";
import { assertZohoId } from "./ids";
import type { BooksContactDetail, CallOptions, ZohoBooksClient } from "./zoho/books-client";

export type Action = "activate" | "deactivate";
export type ContactType = "customer" | "vendor";
/** `held`: a guarded deactivation not made, the contact still owing or owed (see {@link Hold}) */
export type Outcome = "activated" | "already_active" | "deactivated" | "already_inactive" | "held";

/** The amounts of a Books contact the guard reads (`GET /contacts/{id}`), in its currency. */
export interface BalanceAmounts {
  outstanding_receivable_amount?: number;
  unused_credits_receivable_amount?: number;
  outstanding_payable_amount?: number;
}

/** Why a guarded deactivation was held: the contact's type and the amounts that stopped it. */
export interface Hold {
  code: "OUTSTANDING_BALANCE";
  message: string;
  contact_type: string;
  amounts: BalanceAmounts;
  currency_code?: string;
}

export interface ActivationRequest {
  /** the Books contact id; or name the contact by `email` */
  contactId?: string;
  /** the contact's email, resolved to exactly one Books contact (a CRM knows the email, not the id) */
  email?: string;
  /** with `email`: only a contact of this type, when a customer and a vendor share the address */
  contactType?: ContactType;
  /** defaults to the secret's `organization_id` */
  organizationId?: string;
  action: Action;
  /**
   * a deactivation reads the contact first (one Books call) and is held while it has an
   * outstanding balance ({@link outstandingBalance}); an activation ignores it
   */
  guardOutstanding?: boolean;
}

/** The answer of the contract: what was asked and what happened. */
export interface ActivationOutcome {
  contact_id: string;
  organization_id: string;
  action: Action;
  outcome: Outcome;
  message: string;
  /** `held` only: what stopped the deactivation */
  hold?: Hold;
}

export interface ActivationDependencies {
  books: ZohoBooksClient;
  tokens: SecretReader;
}

export interface ActivationOptions {
  /** quick retries inside this call for transient failures (see `retryInline` in the error table); default 2 */
  retries?: number;
  /** a wait longer than this (a per-minute block, the daily cap) is not waited here but returned; default 5 */
  maxInlineWaitSeconds?: number;
  /** first back-off, doubled each retry, with jitter; default 250 */
  minTimeoutMs?: number;
  /** the budget lane of the Zoho calls and how long each may wait for it; default: the client's */
  call?: CallOptions;
}

const DEFAULTS: Required<Omit<ActivationOptions, "call">> = {
  retries: 2,
  maxInlineWaitSeconds: 5,
  minTimeoutMs: 250,
};

const OUTCOMES: Record<Action, { changed: Outcome; unchanged: Outcome }> = {
  activate: { changed: "activated", unchanged: "already_active" },
  deactivate: { changed: "deactivated", unchanged: "already_inactive" },
};

/**
 * Marks one contact active or inactive and says what happened. "Already in that state" is a
 * success. Transient failures are retried a few times with exponential back-off and jitter
 * (p-retry), honouring the wait a rate limit asks for; anything else is thrown as a
 * ServiceError for the caller's error table.
 *
 * @example
 * await changeContactStatus(deps, { contactId: "460000000026049", action: "activate" });
 * // { contact_id: "460000000026049", organization_id: "123456789", action: "activate", outcome: "activated", … }
 */
export async function changeContactStatus(
  deps: ActivationDependencies,
  request: ActivationRequest,
  options: ActivationOptions = {},
): Promise<ActivationOutcome> {
  const { organizationId, fromSecret } = await organizationFor(deps.tokens, request.organizationId);
  const contactId =
    request.contactId === undefined
      ? await findContactIdByEmail(deps.books, request.email, organizationId, {
          contactType: request.contactType,
          call: options.call,
        })
      : assertZohoId(request.contactId, "contact_id");

  const explained = (error: unknown) => {
    throw explainOrganization(toServiceError(error), organizationId, fromSecret);
  };

  if (request.action === "deactivate" && request.guardOutstanding === true) {
    // A read that fails is an error like any other (retried): never a deactivation unchecked.
    const contact = await withRetries(options, () =>
      deps.books.getContact(contactId, organizationId, options.call),
    ).catch(explained);
    const hold = outstandingBalance(contact);
    if (hold !== undefined) {
      return {
        contact_id: contactId,
        organization_id: organizationId,
        action: request.action,
        outcome: "held",
        message: hold.message,
        hold,
      };
    }
  }

  const result = await withRetries(options, () =>
    request.action === "activate"
      ? deps.books.markActive(contactId, organizationId, options.call)
      : deps.books.markInactive(contactId, organizationId, options.call),
  ).catch(explained);

  const outcomes = OUTCOMES[request.action];
  return {
    contact_id: contactId,
    organization_id: organizationId,
    action: request.action,
    outcome: result.changed ? outcomes.changed : outcomes.unchanged,
    message: result.message,
  };
}

/**
 * The one Books contact with a contact person whose email is `email` (trimmed, case-insensitive),
 * optionally only among contacts of `contactType`. Zoho's email filter searches every contact
 * person and may match loosely, while a list row shows only the primary person's email: a row
 * whose email is the one wanted matches as it is, and each other candidate is read
 * (`GET /contacts/{id}`, one call each) and all its persons compared exactly. None or several
 * is an error that names the candidates, never a guess.
 */
export async function findContactIdByEmail(
  books: ZohoBooksClient,
  email: string | undefined,
  organizationId: string,
  options: { contactType?: ContactType | undefined; call?: CallOptions | undefined } = {},
): Promise<string> {
  const wanted = normalizeEmail(email ?? "");
  if (!wanted)
    throw new ServiceError("INVALID_REQUEST", "Name the contact by contact_id or email.");
  const { contactType, call } = options;
  /** candidate → whether its row already shows the email (as its primary person's) */
  const candidates = new Map<string, boolean>();
  for await (const page of books.listAllContacts(
    { organizationId, email: wanted, filterBy: "Status.All" },
    call,
  )) {
    for (const row of page.contacts) {
      if (contactType !== undefined && row.contact_type !== contactType) continue;
      const shown = normalizeEmail(row.email ?? "") === wanted;
      candidates.set(row.contact_id, shown || candidates.get(row.contact_id) === true);
    }
  }
  const hasPersonWithEmail = async (id: string) =>
    (await books.getContact(id, organizationId, call)).contact_persons.some(
      (person) => normalizeEmail(person.email ?? "") === wanted,
    );
  const matches: string[] = [];
  for (const [id, shown] of candidates) {
    if (shown || (await hasPersonWithEmail(id))) matches.push(id);
  }
  const among = contactType === undefined ? "" : ` ${contactType}`;
  if (matches.length === 1) return matches[0] as string;
  if (matches.length === 0) {
    throw new ServiceError("CONTACT_NOT_FOUND", `No Books${among} contact has this email.`, {
      details: { candidates: [] },
    });
  }
  throw new ServiceError(
    "CONTACT_AMBIGUOUS",
    `${matches.length} Books${among} contacts have this email; name one by contact_id${contactType === undefined ? " or contact_type" : ""}.`,
    { details: { candidates: matches } },
  );
}

/**
 * The Books contacts whose contact persons have `email` (every person, not only the primary):
 * one, several, or none.
 */
export function emailCandidates(
  books: ZohoBooksClient,
  email: string,
  organizationId: string,
): Promise<string[]> {
  return findContactIdByEmail(books, email, organizationId).then(
    (id) => [id],
    (error: unknown) => {
      const { code, details } = toServiceError(error);
      if (code !== "CONTACT_AMBIGUOUS" && code !== "CONTACT_NOT_FOUND") throw error;
      return (details?.candidates as string[] | undefined) ?? [];
    },
  );
}

/** The amounts each contact type is held for: what the business still owes or is owed. */
const GUARDED_AMOUNTS: Record<string, ReadonlyArray<keyof BalanceAmounts>> = {
  customer: ["outstanding_receivable_amount", "unused_credits_receivable_amount"],
  vendor: ["outstanding_payable_amount"],
};
const ALL_AMOUNTS = [...new Set(Object.values(GUARDED_AMOUNTS).flat())];

/**
 * Whether a Books contact must stay active: a customer with an outstanding receivable or unused
 * credits, a vendor with an outstanding payable (a contact of any other type: any of them).
 * Pure. An amount the answer lacks or cannot be read as a number is Zoho's unexpected answer
 * (retried), never read as zero: the guard exists so that nothing is deactivated unchecked.
 *
 * @example
 * outstandingBalance({ contact_id: "1", status: "active", contact_type: "customer",
 *   outstanding_receivable_amount: 250, unused_credits_receivable_amount: 0, contact_persons: [] });
 * // { code: "OUTSTANDING_BALANCE", contact_type: "customer", amounts: { outstanding_receivable_amount: 250, … }, … }
 */
export function outstandingBalance(contact: BooksContactDetail): Hold | undefined {
  const type = contact.contact_type ?? "";
  const names = GUARDED_AMOUNTS[type] ?? ALL_AMOUNTS;
  const amounts: BalanceAmounts = {};
  for (const name of names) {
    const raw: unknown = contact[name];
    const amount = typeof raw === "string" && raw.trim() !== "" ? Number(raw) : raw;
    if (typeof amount !== "number" || !Number.isFinite(amount)) {
      throw new ServiceError(
        "ZOHO_UNEXPECTED_ANSWER",
        `Zoho Books answered contact ${contact.contact_id} without ${name}: the guard cannot tell whether it has an outstanding balance, so it is not deactivated.`,
      );
    }
    amounts[name] = amount;
  }
  const owing = names.filter((name) => (amounts[name] ?? 0) > 0);
  if (owing.length === 0) return undefined;
  const currency = typeof contact.currency_code === "string" ? contact.currency_code : undefined;
  const listed = owing
    .map((name) => `${name} ${amounts[name]}${currency ? ` ${currency}` : ""}`)
    .join(", ");
  return {
    code: "OUTSTANDING_BALANCE",
    message: `Not deactivated: the ${type || "contact"} has an outstanding balance (${listed}).`,
    contact_type: type,
    amounts,
    ...(currency === undefined ? {} : { currency_code: currency }),
  };
}

export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

/** An organization the caller named is their mistake (400); the secret's default is ours (500). */
function explainOrganization(
  error: ServiceError,
  organizationId: string,
  fromSecret: boolean,
): ServiceError {
  if (error.code !== "INVALID_ORGANIZATION" || !fromSecret) return error;
  return new ServiceError(
    "INVALID_ORGANIZATION",
    `The secret's default organization_id ${organizationId} is not valid for this Zoho user: fix organization_id in the secret.`,
    { httpStatus: 500, zohoCode: error.zohoCode, cause: error },
  );
}

function withRetries<T>(options: ActivationOptions, attempt: () => Promise<T>): Promise<T> {
  const { retries, maxInlineWaitSeconds, minTimeoutMs } = { ...DEFAULTS, ...options };
  return pRetry(attempt, {
    retries,
    minTimeout: minTimeoutMs,
    factor: 2,
    randomize: true,
    onFailedAttempt: async ({ error, retriesLeft }) => {
      const failure = toServiceError(error);
      const wait = failure.retryAfterSeconds ?? 0;
      // Throwing here ends the retries with this error; so does a deadline the wait would pass.
      if (!failure.retryInline || wait > maxInlineWaitSeconds) throw failure;
      const deadline = options.call?.deadline;
      if (deadline !== undefined && Date.now() + wait * 1000 + minTimeoutMs * 4 > deadline)
        throw failure;
      if (retriesLeft > 0 && wait > 0)
        await new Promise((resolve) => setTimeout(resolve, wait * 1000));
    },
  });
}
