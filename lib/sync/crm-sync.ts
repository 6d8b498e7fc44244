import { createHash } from "node:crypto";
import { emailCandidates } from "../activation";
import { organizationFor } from "../credentials/secret";
import { changeFor } from "../crm/change";
import {
  buildBooksIndex,
  type CrmRecord,
  type MatchableContact,
  type MatchContext,
  matchRecord,
} from "../crm/match";
import { evaluateRules, type MatchStrategy, type RuleDecision } from "../crm/rules";
import { type CrmSource, emailFields } from "../crm/source";
import { ServiceError } from "../errors";
import { ZOHO_ID_PATTERN } from "../ids";
import { logger } from "../observability";
import type {
  BooksContact,
  ContactStatus,
  StatusFilter,
  ZohoBooksClient,
} from "../zoho/books-client";
import { type CrmClients, readCrm } from "./crm-read";
import type { BooksStatuses, CrmLedger, CrmLink } from "./crm-state";
import {
  brief,
  changedSince,
  type HeldContact,
  listContacts,
  type PlannedChange,
  queueChanges,
  runSync,
  SAMPLE,
  type SyncDependencies,
  type SyncInput,
  type SyncSummary,
  WATERMARK_MARGIN_MS,
  withoutPending,
} from "./sync";

/**
 * The scheduled sync when it reads the CRM itself (`source.type` `zoho_crm` or `hubspot`,
 * contract: "CRM sources and rules"): read the CRM → evaluate the rules → list Books and learn
 * the links it needs → match each record to one Books contact → plan → report → queue → move the
 * watermark. Everything is read before anything is queued, so a CRM failure ends the run with
 * nothing queued and the watermark where it was.
 */

export interface CrmSyncDependencies extends SyncDependencies, CrmClients {
  /** the Books statuses and CRM links kept between runs; without it every run lists Books */
  crmLedger?: CrmLedger;
}

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
): Promise<CrmSyncSummary> {
  const { source } = input;
  if (isCrmSource(source)) return runCrmSync(deps, { ...input, source });
  return runSync(deps, { ...input, source });
}

/**
 * A CRM run's summary: the sync's, and how the run knew Books. `held` is not in it: the guard
 * reads each contact when its job runs, after the run has ended; `guarded` counts the
 * deactivations queued with the guard, and each held job is in its job record (`held`), the
 * contact's history and an `Activation held` event (docs/sync.md, "What the guard costs").
 */
export interface CrmSyncSummary extends SyncSummary {
  /** `listing`: status lists read; `statuses`: the ledger's statuses and the contacts modified since */
  books_read?: "listing" | "statuses";
  /** `statuses`: the Books contacts modified since this time were read */
  books_modified_since?: string | null;
  /** deactivations queued with the guard (`guard.outstanding`): the worker may hold them */
  guarded?: number;
  /** `zcrm_link`: links kept in the ledger at the start, learned (rows or lookups) and forgotten */
  links_known?: number;
  links_learned?: number;
  links_forgotten?: number;
  /** DynamoDB requests for the Books statuses and the CRM links (not the watermark nor pending) */
  crm_ledger_requests?: number;
  /** whether the run kept the Books statuses (false: too many contacts for one item) */
  books_statuses_kept?: boolean;
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
 * lists every contact (and reports the records that match none) and keeps their statuses; an
 * incremental run reads those and the contacts modified since, or lists the status lists a change
 * can come from, or nothing when no record can change anything ({@link readBooks}).
 */
export async function runCrmSync(
  deps: CrmSyncDependencies,
  input: CrmSyncInput,
): Promise<CrmSyncSummary> {
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
  const ledgerBefore = deps.crmLedger?.requests ?? 0;
  const books = await readBooks(deps, organizationId, input, decided.records, now);
  const plan = await planCrmRun(deps, organizationId, input, decided.records, books);
  const summary = summarizeCrm(organizationId, input, { since, read, decided, books, plan });
  summary.zoho_calls = deps.books.calls - callsBefore;
  const ledgerRequests = () => (deps.crmLedger?.requests ?? 0) - ledgerBefore;
  summary.crm_ledger_requests = ledgerRequests();
  if (plan.changes.length > input.max_changes)
    throw new ServiceError(
      "SYNC_LIMIT_EXCEEDED",
      `The run would make ${plan.changes.length} changes, more than max_changes ${input.max_changes}; nothing was queued. Check the rules, or raise max_changes.`,
      { details: brief(summary) },
    );
  if (input.dry_run) return { ...summary, planned: plan.changes };
  summary.jobs_queued = await queueChanges(deps, organizationId, plan.changes, now(), summary);
  // Books as this run saw it, for the next incremental runs (a snapshot too big is dropped).
  if (books.statuses && deps.crmLedger) {
    summary.books_statuses_kept = await deps.crmLedger
      .saveBooksStatuses(organizationId, books.statuses)
      .catch((error: unknown) => {
        logger.warn("Could not keep the Books statuses; the next run lists Books", {
          error: (error as Error).message,
        });
        return false;
      });
    summary.crm_ledger_requests = ledgerRequests();
  }
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

/** A Books contact as a run knows it: a list row, or an id and status kept in the ledger. */
type KnownContact = MatchableContact & { status: ContactStatus };

/** What a run read of Books. */
interface BooksRead {
  /** by contact id: what the run knows of each contact, the CRM link set where known */
  contacts: Map<string, KnownContact>;
  /** how: status lists (`listing`), or the statuses kept in the ledger and the contacts modified since */
  from: "listing" | "statuses";
  filters: StatusFilter[];
  /** `statuses`: the contacts modified since this were read */
  modifiedSince: Date | undefined;
  listCalls: number;
  /** Books rows read (listings and lookups) */
  rowsRead: number;
  lookups: number;
  /** records whose link was not looked up (the run's lookups were used up): left alone */
  notLookedUp: Set<string>;
  /** Books statuses to keep for the next runs, when the run knows every contact's */
  statuses: BooksStatuses | undefined;
  links: { known: number; learned: number; forgotten: number };
}

/** Whether a record's opinion can lead to a job at all (deactivations only when applied). */
const canChange = (input: CrmSyncInput) => (d: Decided) =>
  d.decision.status === "active" || input.apply_deactivations;

const linkField = (source: CrmSource) =>
  source.type === "zoho_crm" && source.module === "Contacts"
    ? "zcrm_contact_id"
    : "zcrm_account_id";

/**
 * What the run needs of Books, as cheaply as it can have it, then the CRM links it still lacks
 * ({@link learnLinks}):
 * - an incremental run whose organization has Books statuses in the ledger (a full run keeps
 *   them) reads only the contacts modified since they were taken (`Status.All` newest first,
 *   stopping at the first older row: one call in a quiet hour) and knows every contact's status;
 * - otherwise it lists: a full run every contact (`Status.All`), an incremental run only the
 *   status lists a change can come from, nothing when no record can change anything.
 * A record needs no contact's status to be exact: the job sets the status the CRM wants, and one
 * whose contact is already so ends `already_active` / `already_inactive` (lib/activation.ts).
 */
async function readBooks(
  deps: CrmSyncDependencies,
  organizationId: string,
  input: CrmSyncInput,
  decided: ReadonlyArray<Decided>,
  now: () => Date,
): Promise<BooksRead> {
  const relevant = decided.filter(canChange(input));
  const before = deps.books.calls;
  const crmLedger = deps.crmLedger;
  const read: BooksRead = {
    contacts: new Map(),
    from: "listing",
    filters: [],
    modifiedSince: undefined,
    listCalls: 0,
    rowsRead: 0,
    lookups: 0,
    notLookedUp: new Set(),
    statuses: undefined,
    links: { known: 0, learned: 0, forgotten: 0 },
  };
  if (input.mode === "incremental" && relevant.length === 0) return read;
  // The email strategy compares list rows' emails, which the kept statuses do not hold.
  const kept =
    input.mode === "incremental" && !input.source.match.some((s) => s.kind === "email")
      ? await crmLedger?.booksStatuses(organizationId).catch(ledgerWarning("Books statuses"))
      : undefined;
  let rows: BooksContact[];
  if (kept) {
    const since = new Date(kept.asOf.getTime() - WATERMARK_MARGIN_MS);
    const listedAt = now();
    const listed = await listContacts(deps.books, organizationId, "Status.All", since);
    rows = listed.contacts;
    for (const row of rows) kept.statuses.set(row.contact_id, row.status);
    for (const [contact_id, status] of kept.statuses)
      read.contacts.set(contact_id, { contact_id, status });
    // A contact deleted during a listing of several pages may have shifted another past a page
    // boundary: then the next run reads from the same time again.
    const stable = listed.pages <= 1 || !(await changedSince(deps.books, organizationId, listedAt));
    Object.assign(read, {
      from: "statuses",
      filters: ["Status.All"],
      modifiedSince: since,
      statuses: { asOf: stable ? listedAt : kept.asOf, statuses: kept.statuses },
    });
  } else {
    const wants = (status: ContactStatus) => relevant.some((d) => d.decision.status === status);
    read.filters =
      input.mode === "full"
        ? ["Status.All"]
        : [
            ...(wants("active") ? (["Status.Inactive"] as const) : []),
            ...(wants("inactive") ? (["Status.Active"] as const) : []),
          ];
    const listedAt = now();
    rows = [];
    for (const filterBy of read.filters)
      rows.push(...(await listContacts(deps.books, organizationId, filterBy, undefined)).contacts);
    if (input.mode === "full")
      read.statuses = {
        asOf: listedAt,
        statuses: new Map(rows.map((row) => [row.contact_id, row.status])),
      };
  }
  for (const row of rows) read.contacts.set(row.contact_id, { ...row });
  read.listCalls = deps.books.calls - before;
  read.rowsRead = rows.length;
  await learnLinks(deps, organizationId, input, relevant, read, rows, now());
  return read;
}

/** A warning instead of a failure: what the ledger keeps for the CRM sync only saves calls. */
const ledgerWarning = (what: string) => (error: unknown) => {
  logger.warn(
    `Could not read the CRM sync's ${what} from the ledger; the run reads Books instead`,
    {
      error: (error as Error).message,
    },
  );
  return undefined;
};

/**
 * `zcrm_link` needs each contact's `zcrm_account_id` / `zcrm_contact_id`. Zoho's list sample
 * shows no such field on rows (the contact's detail has them). The links a run learns are kept
 * in the ledger (`ledgerKeys.crmLink`, one item per CRM record, read with one Query):
 * - rows that carry the link are the truth for their contacts: the kept links are corrected by
 *   them (a contact relinked or unlinked in Books is forgotten at once), and a full listing
 *   forgets the links of contacts that no longer exist;
 * - a record with no kept link, when the rows read carry none, is looked up with the documented
 *   filter `GET /contacts?zcrm_account_id=<id>` (`zcrm_contact_id` for the Contacts module): one
 *   Books call a record, at most {@link MAX_LINK_LOOKUPS} a run, its answer kept (a link for
 *   90 days, "linked to none" for 7, then looked up again: Books may relink a contact).
 */
async function learnLinks(
  deps: CrmSyncDependencies,
  organizationId: string,
  input: CrmSyncInput,
  relevant: ReadonlyArray<Decided>,
  read: BooksRead,
  rows: ReadonlyArray<BooksContact>,
  now: Date,
): Promise<void> {
  const { source } = input;
  const at = source.match.findIndex((strategy) => strategy.kind === "zcrm_link");
  if (source.type !== "zoho_crm" || at < 0) return;
  const field = linkField(source);
  const crmLedger = deps.crmLedger;
  const stored =
    (await crmLedger?.links(organizationId, source.module).catch(ledgerWarning("CRM links"))) ??
    new Map<string, CrmLink>();
  const rowsCarryLinks = rows.some(
    (c) => c.zcrm_account_id !== undefined || c.zcrm_contact_id !== undefined,
  );
  const knownAtStart = stored.size;
  const changes = reconcileLinks(stored, rows, {
    field,
    rowsCarryLinks,
    everyContact: input.mode === "full",
  });
  // The kept links (corrected) set on the contacts the run knows; a row's own link wins.
  for (const [crmId, link] of stored)
    for (const id of link.contacts) {
      const contact = read.contacts.get(id);
      if (contact && contact[field] === undefined) contact[field] = crmId;
    }

  const lookups = rowsCarryLinks
    ? []
    : await lookUpLinks(deps.books, organizationId, input, relevant, read, stored, now);
  read.links = {
    known: knownAtStart,
    learned: lookups.length + [...changes.put.values()].filter((l) => l.from === "rows").length,
    forgotten: changes.remove.length,
  };
  for (const [id, link] of lookups) changes.put.set(id, link);
  // a link forgotten above and learned again by a lookup is one write, not a put and a delete
  changes.remove = changes.remove.filter((id) => !changes.put.has(id));
  if (crmLedger && (changes.put.size > 0 || changes.remove.length > 0))
    await crmLedger.saveLinks(organizationId, source.module, changes).catch((error: unknown) =>
      logger.warn("Could not keep the CRM links learned; the next run learns them again", {
        error: (error as Error).message,
      }),
    );
}

/**
 * The links the run still needs, looked up one record at a time (see {@link learnLinks}):
 * records that can change something, that no earlier strategy matched and whose link is not kept.
 */
async function lookUpLinks(
  books: ZohoBooksClient,
  organizationId: string,
  input: CrmSyncInput,
  relevant: ReadonlyArray<Decided>,
  read: BooksRead,
  stored: ReadonlyMap<string, CrmLink>,
  now: Date,
): Promise<Array<[string, CrmLink]>> {
  const { source } = input;
  const at = source.match.findIndex((strategy) => strategy.kind === "zcrm_link");
  const field = linkField(source);
  const lookups: Array<[string, CrmLink]> = [];
  const earlier: MatchStrategy[] = source.match.slice(0, at);
  const index = buildBooksIndex([...read.contacts.values()]);
  const context = matchContext(source);
  // An incremental run that listed only the status a change can come from: a record that names
  // a Books contact by id that is not listed names one already as wanted (or none).
  const namesContact = (record: CrmRecord) =>
    input.mode === "incremental" &&
    read.from === "listing" &&
    earlier.some(
      (s) =>
        s.kind === "books_id_field" &&
        typeof record[s.field] === "string" &&
        ZOHO_ID_PATTERN.test((record[s.field] as string).trim()),
    );
  const needed = relevant
    .filter(
      ({ record }) =>
        ZOHO_ID_PATTERN.test(record.id) &&
        !stored.has(record.id) &&
        !namesContact(record) &&
        (!earlier.length || "unmatched" in matchRecord(record, earlier, index, context)),
    )
    .map(({ record }) => record.id);
  // Over the cap, each day starts further on, so a full run learns every link within a few days
  // instead of the same first ones every day.
  const start =
    needed.length > MAX_LINK_LOOKUPS
      ? (Math.floor(now.getTime() / 86_400_000) * MAX_LINK_LOOKUPS) % needed.length
      : 0;
  const ordered = [...needed.slice(start), ...needed.slice(0, start)];
  for (const id of ordered.slice(MAX_LINK_LOOKUPS)) read.notLookedUp.add(id);
  for (const id of ordered.slice(0, MAX_LINK_LOOKUPS)) {
    const { contacts: found } = await books.listContacts({
      organizationId,
      filterBy: "Status.All",
      ...(field === "zcrm_account_id" ? { zcrmAccountId: id } : { zcrmContactId: id }),
    });
    for (const row of found) {
      read.contacts.set(row.contact_id, {
        ...read.contacts.get(row.contact_id),
        ...row,
        [field]: id,
      });
      read.statuses?.statuses.set(row.contact_id, row.status);
      read.rowsRead++;
    }
    lookups.push([id, { contacts: found.map((row) => row.contact_id), from: "lookup" }]);
  }
  read.lookups = Math.min(ordered.length, MAX_LINK_LOOKUPS);
  return lookups;
}

/**
 * The kept links corrected by what the rows read say (and `stored` with them): a row that carries
 * the link states its contact's link; a full listing (`everyContact`) also says which contacts
 * exist. Returns the items to write.
 */
export function reconcileLinks(
  stored: Map<string, CrmLink>,
  rows: ReadonlyArray<MatchableContact>,
  options: {
    field: "zcrm_account_id" | "zcrm_contact_id";
    rowsCarryLinks: boolean;
    everyContact: boolean;
  },
): { put: Map<string, CrmLink>; remove: string[] } {
  const { field, rowsCarryLinks, everyContact } = options;
  const listed = new Set(rows.map((row) => row.contact_id));
  const next = new Map<string, Set<string>>();
  for (const [crmId, link] of stored)
    next.set(
      crmId,
      new Set(
        link.contacts.filter(
          (id) => !(rowsCarryLinks && listed.has(id)) && !(everyContact && !listed.has(id)),
        ),
      ),
    );
  if (rowsCarryLinks)
    for (const row of rows) {
      const crmId = row[field];
      if (crmId) next.set(crmId, (next.get(crmId) ?? new Set()).add(row.contact_id));
    }
  const put = new Map<string, CrmLink>();
  const remove: string[] = [];
  for (const [crmId, ids] of next) {
    const before = stored.get(crmId);
    const contacts = [...ids].sort();
    const same =
      before !== undefined &&
      before.contacts.length === contacts.length &&
      [...before.contacts].sort().every((id, i) => id === contacts[i]);
    if (same) continue;
    // a link no contact holds any more is forgotten (a kept "linked to none" stays as it is)
    if (contacts.length === 0) remove.push(crmId);
    else put.set(crmId, { contacts, from: rowsCarryLinks ? "rows" : (before?.from ?? "rows") });
  }
  for (const crmId of remove) stored.delete(crmId);
  for (const [crmId, link] of put) stored.set(crmId, link);
  return { put, remove };
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
  /** deactivations the guard held lately: reported, not queued again */
  held: HeldContact[];
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
    held: [],
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
  const pending = await deps.ledger?.pendingContacts(organizationId);
  const { changes, alreadyQueued, held } = withoutPending(plan.changes, pending);
  return { ...plan, changes, alreadyQueued, held };
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
): CrmSyncSummary {
  const { plan, books } = run;
  const count = (action: string) => plan.changes.filter((c) => c.action === action).length;
  return {
    organization_id: organizationId,
    mode: input.mode,
    dry_run: input.dry_run,
    listed: books.filters,
    modified_since: run.since?.toISOString() ?? null,
    contacts_read: books.rowsRead,
    desired: run.decided.records.length,
    duplicates: plan.duplicates,
    to_activate: count("activate"),
    to_deactivate: count("deactivate"),
    deactivations_skipped: plan.deactivationsSkipped,
    unmatched: plan.unmatched.length,
    ambiguous: plan.ambiguous.length,
    conflicting: plan.conflicting.length,
    already_queued: plan.alreadyQueued,
    held: plan.held.length,
    held_sample: plan.held.slice(0, SAMPLE),
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
    books_read: books.from,
    books_modified_since: books.modifiedSince?.toISOString() ?? null,
    guarded: plan.changes.filter((change) => change.guard?.outstanding).length,
    links_known: books.links.known,
    links_learned: books.links.learned,
    links_forgotten: books.links.forgotten,
    crm_ledger_requests: 0,
  };
}
