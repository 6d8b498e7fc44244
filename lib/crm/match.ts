import { normalizeEmail } from "../activation";
import { ZOHO_ID_PATTERN } from "../ids";
import type { MatchStrategy } from "./rules";

/**
 * Finds the Books contact of a CRM record by the configured strategies, in order, never by a
 * guess: a strategy that finds one contact decides, one that finds several makes the record
 * ambiguous, one that finds none hands over to the next. Pure.
 */

/** What matching needs of a Books contact (a list row, or a contact with its persons). */
export interface MatchableContact {
  contact_id: string;
  /** the list row's email: its primary person's */
  email?: string;
  /** every person of the contact (`GET /contacts/{id}`); their emails all match */
  contact_persons?: ReadonlyArray<{ email?: string }>;
  /** set by Zoho's CRM integration on a contact linked to a CRM account */
  zcrm_account_id?: string;
  /** set by Zoho's CRM integration on a contact linked to a CRM contact */
  zcrm_contact_id?: string;
}

/** The Books contacts, looked up by what the strategies compare. */
export interface BooksIndex {
  byId: ReadonlyMap<string, MatchableContact>;
  byZcrmAccountId: ReadonlyMap<string, string[]>;
  byZcrmContactId: ReadonlyMap<string, string[]>;
  /** trimmed, lower-case email of any person → contact ids */
  byEmail: ReadonlyMap<string, string[]>;
}

/**
 * Indexes the Books contacts once per run.
 *
 * @example
 * const index = buildBooksIndex([
 *   { contact_id: "460000000026049", zcrm_account_id: "554023000000238116",
 *     contact_persons: [{ email: "Ap@Zylker.com " }] },
 * ]);
 * index.byEmail.get("ap@zylker.com"); // ["460000000026049"]
 */
export function buildBooksIndex(contacts: ReadonlyArray<MatchableContact>): BooksIndex {
  const byId = new Map<string, MatchableContact>();
  const byZcrmAccountId = new Map<string, Set<string>>();
  const byZcrmContactId = new Map<string, Set<string>>();
  const byEmail = new Map<string, Set<string>>();
  const add = (map: Map<string, Set<string>>, key: string | undefined, id: string) => {
    if (!key) return;
    map.set(key, (map.get(key) ?? new Set()).add(id));
  };
  for (const contact of contacts) {
    const id = contact.contact_id;
    byId.set(id, contact);
    add(byZcrmAccountId, contact.zcrm_account_id, id);
    add(byZcrmContactId, contact.zcrm_contact_id, id);
    for (const email of [contact.email, ...(contact.contact_persons ?? []).map((p) => p.email)])
      add(byEmail, email ? normalizeEmail(email) : undefined, id);
  }
  const lists = (map: Map<string, Set<string>>) =>
    new Map([...map].map(([key, ids]) => [key, [...ids]]));
  return {
    byId,
    byZcrmAccountId: lists(byZcrmAccountId),
    byZcrmContactId: lists(byZcrmContactId),
    byEmail: lists(byEmail),
  };
}

/** A CRM record: its id and its fields (a Zoho CRM row, or a HubSpot result's properties with its id). */
export type CrmRecord = { id: string } & Readonly<Record<string, unknown>>;

/** Where the record comes from, for the strategies that depend on it. */
export interface MatchContext {
  /**
   * the Zoho CRM module the record is from, so `zcrm_link` compares its id with
   * `zcrm_account_id` (Accounts) or `zcrm_contact_id` (Contacts); leave it out for HubSpot,
   * whose ids no Books contact carries (`zcrm_link` then finds nothing)
   */
  zcrmModule?: "Accounts" | "Contacts";
  /** the record's fields that hold an email (Zoho CRM Contacts: `Email`; HubSpot contacts: `email`) */
  emailFields?: ReadonlyArray<string>;
}

export type MatchResult =
  | { matched: string; by: string }
  | { ambiguous: string[]; by: string }
  /** `notes`: what an operator may want to fix (a Books id field holding no known id) */
  | { unmatched: true; notes: string[] };

/**
 * The record's Books contact by the first strategy that finds any; `by` names that strategy.
 *
 * @example
 * matchRecord(
 *   { id: "554023000000238116", Books_Contact_Id: "", Email: "ap@zylker.com" },
 *   [{ kind: "books_id_field", field: "Books_Contact_Id" }, { kind: "zcrm_link" }, { kind: "email" }],
 *   index,
 *   { zcrmModule: "Accounts", emailFields: ["Email"] },
 * );
 * // {matched: "460000000026049", by: "zcrm_link"}
 */
export function matchRecord(
  record: CrmRecord,
  strategies: ReadonlyArray<MatchStrategy>,
  index: BooksIndex,
  context: MatchContext = {},
): MatchResult {
  const notes: string[] = [];
  for (const strategy of strategies) {
    const found = candidates(record, strategy, index, context, notes);
    const by =
      strategy.kind === "books_id_field" ? `books_id_field:${strategy.field}` : strategy.kind;
    if (found.length === 1) return { matched: found[0] as string, by };
    if (found.length > 1) return { ambiguous: [...found].sort(), by };
  }
  return { unmatched: true, notes };
}

function candidates(
  record: CrmRecord,
  strategy: MatchStrategy,
  index: BooksIndex,
  context: MatchContext,
  notes: string[],
): string[] {
  switch (strategy.kind) {
    case "books_id_field": {
      const raw = record[strategy.field];
      if (raw === undefined || raw === null || raw === "") return [];
      const id = typeof raw === "number" && Number.isSafeInteger(raw) ? String(raw) : raw;
      if (typeof id !== "string" || !ZOHO_ID_PATTERN.test(id.trim())) {
        notes.push(`${strategy.field} does not hold a Books contact id (1 to 25 digits)`);
        return [];
      }
      if (!index.byId.has(id.trim())) {
        notes.push(`${strategy.field} names Books contact ${id.trim()}, which does not exist`);
        return [];
      }
      return [id.trim()];
    }
    case "zcrm_link": {
      if (context.zcrmModule === undefined) return [];
      const links =
        context.zcrmModule === "Accounts" ? index.byZcrmAccountId : index.byZcrmContactId;
      return links.get(record.id) ?? [];
    }
    case "email": {
      const ids = new Set<string>();
      for (const field of context.emailFields ?? []) {
        const email = record[field];
        if (typeof email !== "string" || normalizeEmail(email) === "") continue;
        for (const id of index.byEmail.get(normalizeEmail(email)) ?? []) ids.add(id);
      }
      return [...ids];
    }
  }
}
