import { createHash } from "node:crypto";
import { emailCandidates } from "../activation";
import { organizationFor } from "../credentials/secret";
import { changeFor } from "../crm/change";
import { buildBooksIndex, type CrmRecord, type MatchContext, matchRecord } from "../crm/match";
import { evaluateRules, type MatchStrategy, type RuleDecision } from "../crm/rules";
import { type CrmSource, emailFields } from "../crm/source";
import { ServiceError } from "../errors";
import { ZOHO_ID_PATTERN } from "../ids";
import { logger } from "../observability";
import type { BooksContact, StatusFilter, ZohoBooksClient } from "../zoho/books-client";
import { type CrmClients, readCrm } from "./crm-read";
import {
  brief,
  listContacts,
  type PlannedChange,
  queueChanges,
  runSync,
  SAMPLE,
  type SyncDependencies,
  type SyncInput,
  type SyncSummary,
  WATERMARK_MARGIN_MS,
} from "./sync";

/**
 * The scheduled sync when it reads the CRM itself (`source.type` `zoho_crm` or `hubspot`,
 * contract: "CRM sources and rules"): read the CRM → evaluate the rules → list Books and learn
 * the links it needs → match each record to one Books contact → plan → report → queue → move the
 * watermark. Everything is read before anything is queued, so a CRM failure ends the run with
 * nothing queued and the watermark where it was.
 */

export interface CrmSyncDependencies extends SyncDependencies, CrmClients {}

export type CrmSyncInput = Omit<SyncInput, "source"> & { source: CrmSource };

/**
 * Books list calls a run may spend to learn which contact a CRM record is linked to, when list
 * rows do not carry `zcrm_account_id` / `zcrm_contact_id` (`GET /contacts?zcrm_account_id=…`, one
 * call a record): at the bulk lane's pace about two and a half minutes of the run's five. The
 * records beyond are left alone this run and counted (`link_lookups_skipped`).
 */
export const MAX_LINK_LOOKUPS = 200;

/** Whether the input's source is a CRM the run reads itself. */
export function isCrmSource(source: SyncInput["source"]): source is CrmSource {
  return source.type === "zoho_crm" || source.type === "hubspot";
}

/**
 * One scheduled run, whatever its source: a CRM ({@link runCrmSync}) or a desired-state
 * document (`runSync`).
 */
export function runScheduledSync(
  deps: CrmSyncDependencies,
  input: SyncInput,
): Promise<SyncSummary> {
  const { source } = input;
  if (isCrmSource(source)) return runCrmSync(deps, { ...input, source });
  return runSync(deps, { ...input, source });
}

/** A record with the rule's opinion on it. */
interface Decided {
  record: CrmRecord;
  decision: RuleDecision;
}

/**
 * One run over a CRM source. Incremental runs read the records modified since the last
 * successful run's read (less {@link WATERMARK_MARGIN_MS}) when the source and options are the
 * same as then; otherwise, and on full runs, every record a rule can decide. Books: a full run
 * lists every contact (and reports the records that match none); an incremental run lists only
 * the status lists a change can come from, or none when no record has an opinion.
 */
export async function runCrmSync(
  deps: CrmSyncDependencies,
  input: CrmSyncInput,
): Promise<SyncSummary> {
  const { organizationId } = await organizationFor(deps.tokens, input.organization_id);
  const now = deps.now ?? (() => new Date());
  const digest = crmDigest(input);
  const previous =
    input.mode === "incremental" ? await deps.ledger?.state(organizationId) : undefined;
  const since =
    previous?.digest === digest
      ? new Date(previous.listedAt.getTime() - WATERMARK_MARGIN_MS)
      : undefined;
  const readAt = now();
  const read = await readCrm(deps, input.source, { since, now: readAt });
  const decided = decide(read.records, input.source, readAt);
  const callsBefore = deps.books.calls;
  const books = await readBooks(deps, organizationId, input, decided.records, readAt);
  const plan = await planCrmRun(deps, organizationId, input, decided.records, books);
  const summary = summarizeCrm(organizationId, input, { since, read, decided, books, plan });
  summary.zoho_calls = deps.books.calls - callsBefore;
  if (plan.changes.length > input.max_changes)
    throw new ServiceError(
      "SYNC_LIMIT_EXCEEDED",
      `The run would make ${plan.changes.length} changes, more than max_changes ${input.max_changes}; nothing was queued. Check the rules, or raise max_changes.`,
      { details: brief(summary) },
    );
  if (input.dry_run) return { ...summary, planned: plan.changes };
  summary.jobs_queued = await queueChanges(deps, organizationId, plan.changes, now(), summary);
  // Only a run that did all it planned moves the watermark: a failed run reads again.
  await deps.ledger?.saveState(organizationId, { listedAt: readAt, digest }).catch((error) =>
    logger.warn("Could not save the CRM sync watermark; the next run reads the CRM again", {
      error: (error as Error).message,
    }),
  );
  return summary;
}

/** What decides what a run reads and plans: a change of any of it reads everything again. */
function crmDigest(input: CrmSyncInput): string {
  return createHash("sha256")
    .update(
      JSON.stringify({
        v: "crm1",
        source: input.source,
        apply_deactivations: input.apply_deactivations,
        guard: input.guard,
      }),
    )
    .digest("hex");
}

/** Each record's first rule with an opinion; records without one are only counted. */
function decide(
  records: ReadonlyArray<CrmRecord>,
  source: CrmSource,
  now: Date,
): { records: Decided[]; noOpinion: number } {
  const multiValue = source.type === "hubspot" ? "semicolon" : "array";
  const decided: Decided[] = [];
  for (const record of records) {
    const decision = evaluateRules(record, source.rules, now, { multiValue });
    if (decision) decided.push({ record, decision });
  }
  return { records: decided, noOpinion: records.length - decided.length };
}

/** What a run read of Books. */
interface BooksRead {
  /** by contact id: the listed rows, and the rows link lookups found (with the link set) */
  contacts: Map<string, BooksContact>;
  filters: StatusFilter[];
  listCalls: number;
  lookups: number;
  /** records whose link was not looked up (the run's lookups were used up): left alone */
  notLookedUp: Set<string>;
}

/** Whether a record's opinion can lead to a job at all (deactivations only when applied). */
const canChange = (input: CrmSyncInput) => (d: Decided) =>
  d.decision.status === "active" || input.apply_deactivations;

/** Lists Books (see {@link runCrmSync}), then learns the CRM links the rows do not carry. */
async function readBooks(
  deps: CrmSyncDependencies,
  organizationId: string,
  input: CrmSyncInput,
  decided: ReadonlyArray<Decided>,
  now: Date,
): Promise<BooksRead> {
  const relevant = decided.filter(canChange(input));
  const wants = (status: "active" | "inactive") =>
    relevant.some((d) => d.decision.status === status);
  const filters: StatusFilter[] =
    input.mode === "full"
      ? ["Status.All"]
      : [
          ...(wants("active") ? (["Status.Inactive"] as const) : []),
          ...(wants("inactive") ? (["Status.Active"] as const) : []),
        ];
  const before = deps.books.calls;
  const contacts = new Map<string, BooksContact>();
  for (const filterBy of filters) {
    const listed = await listContacts(deps.books, organizationId, filterBy, undefined);
    for (const contact of listed.contacts) contacts.set(contact.contact_id, contact);
  }
  const listCalls = deps.books.calls - before;
  const learned = await learnLinks(deps.books, organizationId, input.source, relevant, contacts, {
    now,
    mode: input.mode,
  });
  return { contacts, filters, listCalls, ...learned };
}

/**
 * `zcrm_link` needs each contact's `zcrm_account_id` / `zcrm_contact_id`. Zoho's list sample
 * shows no such field on rows (the contact's detail has them); when the rows read carry none,
 * each record the earlier strategies could not match is looked up with the documented filter
 * `GET /contacts?zcrm_account_id=<id>` (`zcrm_contact_id` for the Contacts module): one Books call
 * a record, at most {@link MAX_LINK_LOOKUPS} a run. The rows found join `contacts` with the link set.
 */
async function learnLinks(
  books: ZohoBooksClient,
  organizationId: string,
  source: CrmSource,
  relevant: ReadonlyArray<Decided>,
  contacts: Map<string, BooksContact>,
  { now, mode }: { now: Date; mode: CrmSyncInput["mode"] },
): Promise<{ lookups: number; notLookedUp: Set<string> }> {
  const notLookedUp = new Set<string>();
  const at = source.match.findIndex((strategy) => strategy.kind === "zcrm_link");
  if (source.type !== "zoho_crm" || at < 0) return { lookups: 0, notLookedUp };
  const rowsCarryLinks = [...contacts.values()].some(
    (c) => c.zcrm_account_id !== undefined || c.zcrm_contact_id !== undefined,
  );
  if (rowsCarryLinks) return { lookups: 0, notLookedUp };
  const before: MatchStrategy[] = source.match.slice(0, at);
  const index = buildBooksIndex([...contacts.values()]);
  const context = matchContext(source);
  // An incremental run lists only the status a change can come from: a record that names a Books
  // contact by id that is not listed names one already as wanted (or none), and needs no lookup.
  const namesContact = (record: CrmRecord) =>
    mode === "incremental" &&
    before.some(
      (s) =>
        s.kind === "books_id_field" &&
        typeof record[s.field] === "string" &&
        ZOHO_ID_PATTERN.test((record[s.field] as string).trim()),
    );
  const needed = relevant
    .filter(
      ({ record }) =>
        ZOHO_ID_PATTERN.test(record.id) &&
        !namesContact(record) &&
        (!before.length || "unmatched" in matchRecord(record, before, index, context)),
    )
    .map(({ record }) => record.id);
  // Over the cap, each day starts further on, so a full run learns every link within a few days
  // instead of the same first ones every day.
  const start =
    needed.length > MAX_LINK_LOOKUPS
      ? (Math.floor(now.getTime() / 86_400_000) * MAX_LINK_LOOKUPS) % needed.length
      : 0;
  const ordered = [...needed.slice(start), ...needed.slice(0, start)];
  for (const id of ordered.slice(MAX_LINK_LOOKUPS)) notLookedUp.add(id);
  const linkField = source.module === "Accounts" ? "zcrm_account_id" : "zcrm_contact_id";
  for (const id of ordered.slice(0, MAX_LINK_LOOKUPS)) {
    const { contacts: rows } = await books.listContacts({
      organizationId,
      filterBy: "Status.All",
      ...(linkField === "zcrm_account_id" ? { zcrmAccountId: id } : { zcrmContactId: id }),
    });
    for (const row of rows)
      contacts.set(row.contact_id, { ...contacts.get(row.contact_id), ...row, [linkField]: id });
  }
  return { lookups: Math.min(ordered.length, MAX_LINK_LOOKUPS), notLookedUp };
}

function matchContext(source: CrmSource): MatchContext {
  return {
    ...(source.type === "zoho_crm" ? { zcrmModule: source.module } : {}),
    emailFields: emailFields(source),
  };
}

/** What a run plans, and what it found on the way. */
interface CrmPlan {
  changes: PlannedChange[];
  matched: number;
  unmatched: Array<{ crm_record_id: string; notes: string[] }>;
  ambiguous: Array<{ crm_record_id: string; by: string; candidates: string[] }>;
  /** contacts records want both active and inactive: left alone */
  conflicting: string[];
  /** records that wanted a contact already wanted alike by another record */
  duplicates: number;
  deactivationsSkipped: number;
  alreadyQueued: number;
}

/** Matches every record with an opinion, and plans one change per contact whose status differs. */
async function planCrmRun(
  deps: CrmSyncDependencies,
  organizationId: string,
  input: CrmSyncInput,
  decided: ReadonlyArray<Decided>,
  books: BooksRead,
): Promise<CrmPlan> {
  const index = buildBooksIndex([...books.contacts.values()]);
  const context = matchContext(input.source);
  const plan: CrmPlan = {
    changes: [],
    matched: 0,
    unmatched: [],
    ambiguous: [],
    conflicting: [],
    duplicates: 0,
    deactivationsSkipped: 0,
    alreadyQueued: 0,
  };
  const wanted = new Map<string, { first: Decided; by: string; statuses: Set<string> }>();
  for (const d of decided) {
    if (books.notLookedUp.has(d.record.id)) continue;
    const match = matchRecord(d.record, input.source.match, index, context);
    if ("matched" in match) {
      plan.matched++;
      const seen = wanted.get(match.matched);
      if (!seen)
        wanted.set(match.matched, {
          first: d,
          by: match.by,
          statuses: new Set([d.decision.status]),
        });
      else {
        if (seen.statuses.has(d.decision.status)) plan.duplicates++;
        seen.statuses.add(d.decision.status);
      }
    } else if ("ambiguous" in match)
      plan.ambiguous.push({
        crm_record_id: d.record.id,
        by: match.by,
        candidates: match.ambiguous,
      });
    // An incremental run lists only some contacts: "none found" there says nothing; nor does
    // it for a deactivation not applied, whose link was not looked up.
    else if (input.mode === "full" && canChange(input)(d))
      plan.unmatched.push({ crm_record_id: d.record.id, notes: match.notes });
  }
  const byEmail = new Map<string, string>();
  for (const [contactId, { first, by, statuses }] of wanted) {
    const contact = books.contacts.get(contactId);
    if (statuses.size > 1) plan.conflicting.push(contactId);
    else if (!contact || contact.status === first.decision.status) continue;
    else if (first.decision.status === "inactive" && !input.apply_deactivations)
      plan.deactivationsSkipped++;
    else {
      plan.changes.push(changeFor(contactId, first, input));
      if (by === "email") byEmail.set(contactId, recordEmail(first.record, input.source));
    }
  }
  await checkEmailMatches(deps.books, organizationId, plan, byEmail);
  const pending = (await deps.ledger?.pendingContacts(organizationId)) ?? new Set<string>();
  const before = plan.changes.length;
  plan.changes = plan.changes.filter((change) => !pending.has(change.contact_id));
  plan.alreadyQueued = before - plan.changes.length;
  return plan;
}

function recordEmail(record: CrmRecord, source: CrmSource): string {
  for (const field of emailFields(source)) {
    const value = record[field];
    if (typeof value === "string" && value.trim() !== "") return value;
  }
  return "";
}

/**
 * A list row shows only the primary person's email, so a contact matched by email may share the
 * address with another contact's secondary person (or one an incremental run did not list): each
 * change matched by email is checked as a job's email is (findContactIdByEmail, one call or more)
 * and kept only when the address names that contact alone.
 */
async function checkEmailMatches(
  books: ZohoBooksClient,
  organizationId: string,
  plan: CrmPlan,
  byEmail: ReadonlyMap<string, string>,
): Promise<void> {
  const dropped = new Set<string>();
  for (const [contactId, email] of byEmail) {
    const candidates = await emailCandidates(books, email, organizationId);
    if (candidates.length === 1 && candidates[0] === contactId) continue;
    dropped.add(contactId);
    const change = plan.changes.find((c) => c.contact_id === contactId);
    plan.matched--;
    plan.ambiguous.push({
      crm_record_id: change?.reason?.crm_record_id ?? "",
      by: "email",
      candidates: [...new Set([contactId, ...candidates])].sort(),
    });
  }
  plan.changes = plan.changes.filter((change) => !dropped.has(change.contact_id));
}

/** The run's summary: the contract's fields, and what it read of the CRM and how it matched. */
function summarizeCrm(
  organizationId: string,
  input: CrmSyncInput,
  run: {
    since: Date | undefined;
    read: { records: CrmRecord[]; calls: number };
    decided: { records: Decided[]; noOpinion: number };
    books: BooksRead;
    plan: CrmPlan;
  },
): SyncSummary {
  const { plan, books } = run;
  const count = (action: string) => plan.changes.filter((c) => c.action === action).length;
  return {
    organization_id: organizationId,
    mode: input.mode,
    dry_run: input.dry_run,
    listed: books.filters,
    modified_since: run.since?.toISOString() ?? null,
    contacts_read: books.contacts.size,
    desired: run.decided.records.length,
    duplicates: plan.duplicates,
    to_activate: count("activate"),
    to_deactivate: count("deactivate"),
    deactivations_skipped: plan.deactivationsSkipped,
    unmatched: plan.unmatched.length,
    ambiguous: plan.ambiguous.length,
    conflicting: plan.conflicting.length,
    already_queued: plan.alreadyQueued,
    jobs_queued: 0,
    zoho_calls: 0,
    list_calls: books.listCalls,
    unmatched_sample: [],
    ambiguous_sample: [],
    conflicting_sample: plan.conflicting.slice(0, SAMPLE).map((contact_id) => ({ contact_id })),
    source_type: input.source.type,
    crm_records_read: run.read.records.length,
    crm_calls: run.read.calls,
    no_opinion: run.decided.noOpinion,
    matched: plan.matched,
    unmatched_records: plan.unmatched.slice(0, SAMPLE),
    ambiguous_records: plan.ambiguous.slice(0, SAMPLE),
    link_lookups: books.lookups,
    link_lookups_skipped: books.notLookedUp.size,
  };
}
