import * as z from "zod/mini";
import { emailCandidates } from "../activation";
import { toServiceError } from "../errors";
import { ZOHO_ID_PATTERN } from "../ids";
import type { PlannedChange } from "../sync/sync";
import type { BooksContact, ZohoBooksClient } from "../zoho/books-client";
import { changeFor } from "./change";
import { COQL_LIMITS, coqlString } from "./coql";
import { buildBooksIndex, type CrmRecord, type MatchResult, matchRecord } from "./match";
import { evaluateRules, type MatchStrategy, ruleFields } from "./rules";
import { emailFields, readFields, type ZohoCrmSource } from "./source";
import type { WatchConfig } from "./watch";
import type { ZohoCrmClient } from "./zoho-crm-client";

/**
 * Zoho CRM change notifications, the receiving side: what a notification says, reading the
 * notified records (COQL `where id in (…)`, at most 50 ids a query), and the same rules and
 * matching as the scheduled sync, to plan the real-time jobs.
 *
 * A notification (Zoho's Notification APIs overview; crm-oas v8): `{server_time, query_params,
 * module, resource_uri, ids, affected_fields, operation, channel_id, token}`, `operation` one of
 * `insert` (Zoho's word for the `create` event), `update`, `delete`; ids only, no record values
 * but the changed ones when `return_affected_field_values` was asked.
 */

/** More ids than this in one notification is not one Zoho sends (a mass update of 100 at most a call). */
export const MAX_NOTIFIED_IDS = 1000;

const idSchema = z.union([
  z.string().check(z.regex(ZOHO_ID_PATTERN, "ids must be record ids (decimal digits)")),
  z
    .number()
    .check(z.int(), z.positive())
    .check(z.refine(Number.isSafeInteger, "an id given as a number must be a safe integer")),
]);

/** The body Zoho POSTs to a channel's notify_url; `token` is checked apart (constant time). */
export const NotificationSchema = z.object(
  {
    module: z.string({ error: "module must be a string" }),
    ids: z
      .array(idSchema, { error: "ids must be an array of record ids" })
      .check(
        z.minLength(1, "ids must not be empty"),
        z.maxLength(MAX_NOTIFIED_IDS, `ids holds at most ${MAX_NOTIFIED_IDS} record ids`),
      ),
    operation: z.enum(["insert", "update", "delete"], {
      error: 'operation must be "insert", "update" or "delete"',
    }),
    channel_id: z.union([z.string(), z.number()], { error: "channel_id must be a channel id" }),
    token: z.optional(z.nullable(z.string())),
  },
  { error: "the body must be a Zoho CRM notification" },
);

export type Notification = z.infer<typeof NotificationSchema>;

/**
 * The COQL query reading `ids` (at most 50: COQL's `in` takes no more) with every field the rules
 * and the matching read, as the sync's query selects them.
 *
 * @example
 * idsQuery(source, ["4150868000000000001"]);
 * // "select id, Account_Type, Books_Contact_Id, Modified_Time from Accounts where id in ('4150868000000000001') limit 50"
 */
export function idsQuery(source: ZohoCrmSource, ids: ReadonlyArray<string>): string {
  if (ids.length === 0 || ids.length > COQL_LIMITS.maxInValues)
    throw new RangeError(`a COQL in takes 1 to ${COQL_LIMITS.maxInValues} values`);
  const fields = [
    ...new Set(["id", ...ruleFields(source.rules), ...readFields(source), "Modified_Time"]),
  ];
  return `select ${fields.join(", ")} from ${source.module} where id in (${ids.map(coqlString).join(", ")}) limit ${COQL_LIMITS.maxInValues}`;
}

/** The notified records that still exist (a deleted one is absent: it changes nothing), 50 ids a query. */
export async function readNotified(
  crm: ZohoCrmClient,
  source: ZohoCrmSource,
  ids: ReadonlyArray<string>,
): Promise<CrmRecord[]> {
  await crm.checkScopes(source.module);
  const records: CrmRecord[] = [];
  const unique = [...new Set(ids)];
  for (let i = 0; i < unique.length; i += COQL_LIMITS.maxInValues) {
    const chunk = unique.slice(i, i + COQL_LIMITS.maxInValues);
    const { rows } = await crm.coql(idsQuery(source, chunk), source.module);
    for (const row of rows) records.push({ ...row, id: String(row.id) });
  }
  return records;
}

/** What the notified records asked for. */
export interface NotifiedPlan {
  changes: PlannedChange[];
  /** records no rule has an opinion on */
  no_opinion: number;
  /** deactivations the rules want while `apply_deactivations` is off */
  deactivations_skipped: number;
  /** contacts already in the wanted state */
  unchanged: number;
  unmatched: string[];
  ambiguous: string[];
  /** contacts the records want both active and inactive: left alone */
  conflicting: string[];
  /** Books calls the matching made */
  books_calls: number;
}

/**
 * Applies the source's rules to each record, finds its Books contact by the source's strategies
 * (each looked up only when the ones before found nothing: by id, by the integration's link, by
 * email), and plans a change where the contact's status differs. Deactivations only where
 * `apply_deactivations`, guarded as the input says; ambiguity, no match or a conflict: no change.
 */
export async function planNotified(
  books: ZohoBooksClient,
  organizationId: string,
  config: WatchConfig,
  records: ReadonlyArray<CrmRecord>,
  now: Date,
): Promise<NotifiedPlan> {
  const before = books.calls;
  const plan: NotifiedPlan = {
    changes: [],
    no_opinion: 0,
    deactivations_skipped: 0,
    unchanged: 0,
    unmatched: [],
    ambiguous: [],
    conflicting: [],
    books_calls: 0,
  };
  const byContact = new Map<string, PlannedChange[]>();
  for (const record of records) {
    const decision = evaluateRules(record, config.source.rules, now, { multiValue: "array" });
    if (!decision) plan.no_opinion++;
    else if (decision.status === "inactive" && !config.apply_deactivations)
      plan.deactivations_skipped++;
    else {
      const { result, contacts } = await matchNotified(
        books,
        organizationId,
        config.source,
        record,
      );
      if ("ambiguous" in result) plan.ambiguous.push(record.id);
      else if ("unmatched" in result) plan.unmatched.push(record.id);
      else if (contacts.get(result.matched)?.status === decision.status) plan.unchanged++;
      else {
        const change = changeFor(result.matched, { record, decision }, config);
        byContact.set(result.matched, [...(byContact.get(result.matched) ?? []), change]);
      }
    }
  }
  for (const [contactId, changes] of byContact) {
    if (new Set(changes.map((c) => c.action)).size > 1) plan.conflicting.push(contactId);
    else plan.changes.push(changes[0] as PlannedChange);
  }
  plan.books_calls = books.calls - before;
  return plan;
}

/**
 * The record's contact by the strategies in order, each looked up in Books only when the ones
 * before found none, then decided by the sync's own `matchRecord`. An email match is kept only
 * when the address names that contact alone among every contact person (as the sync checks it).
 */
async function matchNotified(
  books: ZohoBooksClient,
  organizationId: string,
  source: ZohoCrmSource,
  record: CrmRecord,
): Promise<{ result: MatchResult; contacts: Map<string, BooksContact> }> {
  const contacts = new Map<string, BooksContact>();
  const context = { zcrmModule: source.module, emailFields: emailFields(source) };
  const strategies: MatchStrategy[] = [...source.match];
  for (let i = 0; i < strategies.length; i++) {
    const strategy = strategies[i] as MatchStrategy;
    for (const row of await lookUp(books, organizationId, source, record, strategy))
      contacts.set(row.contact_id, { ...contacts.get(row.contact_id), ...row });
    const index = buildBooksIndex([...contacts.values()]);
    const result = matchRecord(record, strategies.slice(0, i + 1), index, context);
    if ("unmatched" in result) continue;
    if ("matched" in result && result.by === "email") {
      const email = emailFields(source)
        .map((f) => record[f])
        .find((v): v is string => typeof v === "string" && v.trim() !== "");
      const candidates = await emailCandidates(books, email ?? "", organizationId);
      if (candidates.length !== 1 || candidates[0] !== result.matched)
        return {
          result: { ambiguous: [...new Set([result.matched, ...candidates])], by: "email" },
          contacts,
        };
    }
    return { result, contacts };
  }
  return { result: { unmatched: true, notes: [] }, contacts };
}

/** The Books contacts one strategy could match the record with (one Books call, or none). */
async function lookUp(
  books: ZohoBooksClient,
  organizationId: string,
  source: ZohoCrmSource,
  record: CrmRecord,
  strategy: MatchStrategy,
): Promise<BooksContact[]> {
  if (strategy.kind === "books_id_field") {
    const raw = record[strategy.field];
    const id = typeof raw === "number" ? String(raw) : typeof raw === "string" ? raw.trim() : "";
    if (!ZOHO_ID_PATTERN.test(id)) return [];
    try {
      const { contact_persons: _persons, ...detail } = await books.getContact(id, organizationId);
      return [{ ...detail, contact_id: id } as BooksContact];
    } catch (error) {
      if (toServiceError(error).code === "CONTACT_NOT_FOUND") return [];
      throw error;
    }
  }
  if (strategy.kind === "zcrm_link") {
    const link = source.module === "Accounts" ? "zcrm_account_id" : "zcrm_contact_id";
    const { contacts } = await books.listContacts({
      organizationId,
      filterBy: "Status.All",
      ...(link === "zcrm_account_id" ? { zcrmAccountId: record.id } : { zcrmContactId: record.id }),
    });
    return contacts.map((row) => ({ ...row, [link]: record.id }));
  }
  const rows: BooksContact[] = [];
  for (const field of emailFields(source)) {
    const email = record[field];
    if (typeof email !== "string" || email.trim() === "") continue;
    const page = await books.listContacts({
      organizationId,
      filterBy: "Status.All",
      email: email.trim(),
    });
    rows.push(...page.contacts);
  }
  return rows;
}
