import { createHash } from "node:crypto";
import type { S3Client } from "@aws-sdk/client-s3";
import type { SQSClient } from "@aws-sdk/client-sqs";
import * as z from "zod/mini";
import { type Action, emailCandidates, type Hold, normalizeEmail } from "../activation";
import { organizationFor, type SecretReader } from "../credentials/secret";
import { HubSpotSourceSchema, ZohoCrmSourceSchema } from "../crm/source";
import { ServiceError } from "../errors";
import { zohoIdSchema } from "../ids";
import { describeIssues } from "../jobs/job";
import { acceptJobs, type UnqueuedJob } from "../jobs/queue";
import type { JobRecords } from "../jobs/records";
import { logger } from "../observability";
import type {
  BooksContact,
  ContactStatus,
  StatusFilter,
  ZohoBooksClient,
} from "../zoho/books-client";
import {
  DESIRED_STATE_SOURCES,
  type DesiredEntry,
  type DesiredState,
  loadDesiredState,
  type SourceConflict,
  type SyncSource,
} from "./source";
import type { PendingJob, SyncLedger } from "./state";

export {
  type DesiredEntry,
  type DesiredState,
  loadDesiredState,
  MAX_SOURCE_BYTES,
  parseCsv,
  parseDesiredState,
} from "./source";

/**
 * Where a run's wishes come from: a desired-state document (`url`, `s3`, `inline`), or a CRM the
 * run reads itself with rules (`zoho_crm`, `hubspot`: lib/crm/source.ts, lib/sync/crm-sync.ts).
 */
export const SyncSourceSchema = z.discriminatedUnion(
  "type",
  [...DESIRED_STATE_SOURCES, ZohoCrmSourceSchema, HubSpotSourceSchema],
  {
    error:
      'source must be {"type": "url", "url": …}, {"type": "s3", "bucket": …, "key": …}, {"type": "inline", "contacts": […]}, {"type": "zoho_crm", "module", "rules", "match"} or {"type": "hubspot", "object", "rules", "match"}',
  },
);

/** The EventBridge rule's constant input. */
export const SyncInputSchema = z.object(
  {
    organization_id: z.optional(zohoIdSchema("organization_id")),
    /**
     * incremental (hourly): lists only what can change, since the last run where it can;
     * full (daily): lists every contact, and reports the entries that match none
     */
    mode: z._default(
      z.enum(["incremental", "full"], { error: 'mode must be "incremental" or "full"' }),
      "incremental",
    ),
    source: SyncSourceSchema,
    /**
     * the check the worker makes before a deactivation a CRM rule asked for: a contact with an
     * outstanding receivable, unused credits or an outstanding payable is held, not deactivated
     */
    guard: z._default(
      z.object(
        {
          outstanding: z._default(
            z.boolean({ error: "guard.outstanding must be true or false" }),
            true,
          ),
        },
        { error: 'guard must be {"outstanding": true | false}' },
      ),
      { outstanding: true },
    ),
    apply_deactivations: z._default(
      z.boolean({ error: "apply_deactivations must be true or false" }),
      false,
    ),
    max_changes: z._default(
      z
        .number({ error: "max_changes must be a number" })
        .check(z.int(), z.nonnegative("max_changes must be 0 or more")),
      500,
    ),
    dry_run: z._default(z.boolean({ error: "dry_run must be true or false" }), false),
  },
  { error: "the sync input must be a JSON object" },
);

export type SyncInput = z.infer<typeof SyncInputSchema>;

/** An input whose source is a desired-state document (what {@link runSync} reads). */
export type DesiredStateSyncInput = Omit<SyncInput, "source" | "guard"> & {
  source: SyncSource;
  guard?: SyncInput["guard"];
};

export function parseSyncInput(value: unknown): SyncInput {
  const parsed = SyncInputSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new ServiceError("INVALID_REQUEST", `Sync input: ${describeIssues(parsed.error.issues)}`);
}

/** Why a CRM rule asked for a change: carried by the job into its record, history and event. */
export interface ChangeReason {
  /** for people: "Account_Type is Former Customer", "no activity for 365 days (last 2025-01-01)" */
  rule: string;
  crm_record_id: string;
  /** the field the rule read, and the value that decided */
  field: string;
  value: string;
  source: "zoho_crm" | "hubspot";
}

export interface PlannedChange {
  contact_id: string;
  action: Action;
  /** CRM sources: the rule, record and value that decided (in the job's body) */
  reason?: ChangeReason;
  /** CRM sources, rule-driven deactivations while the input's guard is on (in the job's body) */
  guard?: { outstanding: true };
}

export interface SyncPlan {
  changes: PlannedChange[];
  /** entries that match no Books contact */
  unmatched: DesiredEntry[];
  /** entries whose email matches several Books contacts, with the candidates */
  ambiguous: Array<{ entry: DesiredEntry; candidates: string[] }>;
  /** contacts the source names more than once (by id and by email) with different wishes: left alone */
  conflicting: string[];
  /** entries that want a contact inactive while `apply_deactivations` is off */
  deactivationsSkipped: number;
  /** contacts of `changes` named by email only (runSync checks them against every contact person) */
  byEmailOnly: Map<string, string>;
}

type PlannedContact = Pick<BooksContact, "contact_id" | "status" | "email">;

/**
 * What a run would change: activate where the source wants active and Books has inactive;
 * deactivate where the source wants inactive and Books has active, only if asked to. Nothing
 * is guessed: an entry that matches no contact or several contacts, or a contact another entry
 * wants in the other state, is reported and left alone; two entries (by id and by email) with
 * the same wish are one. Pure, so it is property-tested.
 */
export function planChanges(
  books: ReadonlyArray<PlannedContact>,
  desired: ReadonlyArray<DesiredEntry>,
  options: { applyDeactivations: boolean },
): SyncPlan {
  const byId = new Map(books.map((contact) => [contact.contact_id, contact]));
  const byEmail = new Map<string, PlannedContact[]>();
  for (const contact of books) {
    if (!contact.email) continue;
    const key = normalizeEmail(contact.email);
    byEmail.set(key, [...(byEmail.get(key) ?? []), contact]);
  }

  const plan: SyncPlan = {
    changes: [],
    unmatched: [],
    ambiguous: [],
    conflicting: [],
    deactivationsSkipped: 0,
    byEmailOnly: new Map(),
  };
  const wanted = new Map<
    string,
    { contact: PlannedContact; statuses: Set<ContactStatus>; byId: boolean; email?: string }
  >();
  for (const entry of desired) {
    const matches = entry.contact_id
      ? [byId.get(entry.contact_id)].filter((c) => c !== undefined)
      : (byEmail.get(normalizeEmail(entry.email ?? "")) ?? []);
    const [contact] = matches;
    if (!contact) plan.unmatched.push(entry);
    else if (matches.length > 1)
      plan.ambiguous.push({ entry, candidates: matches.map((c) => c.contact_id) });
    else {
      const named = wanted.get(contact.contact_id) ?? {
        contact,
        statuses: new Set<ContactStatus>(),
        byId: false,
      };
      named.statuses.add(entry.status);
      if (entry.contact_id) named.byId = true;
      else named.email = normalizeEmail(entry.email ?? "");
      wanted.set(contact.contact_id, named);
    }
  }

  for (const [contactId, { contact, statuses, byId, email }] of wanted) {
    const [status] = statuses;
    if (statuses.size > 1) plan.conflicting.push(contactId);
    else if (status === undefined || contact.status === status) continue;
    else if (status === "inactive" && !options.applyDeactivations) plan.deactivationsSkipped++;
    else {
      plan.changes.push({
        contact_id: contactId,
        action: status === "active" ? "activate" : "deactivate",
      });
      if (!byId && email) plan.byEmailOnly.set(contactId, email);
    }
  }
  return plan;
}

export interface SyncDependencies {
  books: ZohoBooksClient;
  tokens: SecretReader;
  sqs: SQSClient;
  records: Pick<JobRecords, "accepted" | "forget">;
  /** the watermark and the pending jobs; without it every run lists by status, and nothing is held back */
  ledger?: SyncLedger;
  /** for `s3` sources: the client, created on the first such read */
  s3?: () => Promise<S3Client>;
  /** the bulk queue */
  queueUrl: string;
  /** timeout of the source read */
  timeoutMs: number;
  fetch?: typeof fetch;
  now?: () => Date;
}

/** What a run did, as the contract lists it; returned and logged. */
export interface SyncSummary {
  organization_id: string;
  mode: "incremental" | "full";
  dry_run: boolean;
  /** the lists read (`filter_by`) and, when the run read only recent changes, since when */
  listed: StatusFilter[];
  modified_since: string | null;
  contacts_read: number;
  desired: number;
  /** entries that repeated another with the same wish */
  duplicates: number;
  to_activate: number;
  to_deactivate: number;
  deactivations_skipped: number;
  /** full runs only: an incremental run does not read the contacts that could match */
  unmatched: number;
  ambiguous: number;
  /** names (and contacts) the source wants both active and inactive: left alone */
  conflicting: number;
  /** planned changes left out because the contact has a sync job waiting */
  already_queued: number;
  /** planned deactivations left out because the guard held the contact's last one lately (lib/sync/state.ts) */
  held: number;
  /** the first of them, with what held them */
  held_sample: HeldContact[];
  jobs_queued: number;
  /** every Zoho call of the run; `list_calls` of them listed contacts */
  zoho_calls: number;
  list_calls: number;
  /** the first entries that matched nothing, several contacts, or conflicting wishes */
  unmatched_sample: DesiredEntry[];
  ambiguous_sample: Array<{ entry: DesiredEntry; candidates: string[] }>;
  conflicting_sample: SourceConflict[];
  /** CRM sources only (lib/sync/crm-sync.ts): what the run read of the CRM and how it matched */
  source_type?: "zoho_crm" | "hubspot";
  /** CRM records read (each once, however many pages or overlapping reads named it) */
  crm_records_read?: number;
  /** CRM calls (COQL queries, HubSpot searches): CRM credits, apart from `zoho_calls` (Books) */
  crm_calls?: number;
  /** records no rule had an opinion on: left alone */
  no_opinion?: number;
  /** records with an opinion that found their Books contact */
  matched?: number;
  /** the first records that matched no Books contact (full runs), with what an operator may fix */
  unmatched_records?: Array<{ crm_record_id: string; notes: string[] }>;
  /** the first records that matched several Books contacts, with the candidates */
  ambiguous_records?: Array<{ crm_record_id: string; by: string; candidates: string[] }>;
  /** Books list calls made to learn a CRM record's Books contact (`zcrm_link`, rows without ids) */
  link_lookups?: number;
  /** records left alone because the run's link lookups were used up (the next run goes on) */
  link_lookups_skipped?: number;
  /** dry runs: every change the run would queue, with the rule, record and value that decided */
  planned?: Array<PlannedChange>;
}

/** Summaries list at most this many entries (or records) of each kind. */
export const SAMPLE = 20;
/**
 * An incremental run asks for contacts modified since the last run's start less this margin:
 * Zoho's clock and ours differ, its times have whole seconds, and ">=" or ">" is not documented.
 */
export const WATERMARK_MARGIN_MS = 10 * 60_000;

/**
 * The digest of what the source wants (entries in a canonical order) and of the options that
 * decide what is listed: an incremental run may read only recent changes when it is unchanged.
 */
export function desiredDigest(state: DesiredState, applyDeactivations: boolean): string {
  const lines = state.entries
    .map((e) => `${e.contact_id ?? `@${normalizeEmail(e.email ?? "")}`} ${e.status}`)
    .sort();
  return createHash("sha256")
    .update(`v1 ${applyDeactivations}\n${lines.join("\n")}`)
    .digest("hex");
}

/**
 * One reconciliation, as a pipeline: read the desired state (`loadDesiredState`) → list Books
 * ({@link listBooks}) → plan, leaving out contacts with a sync job waiting ({@link planRun}) →
 * report ({@link summarize}) → queue one job per change on the bulk queue ({@link queueChanges})
 * → move the watermark. A run over `max_changes` queues nothing.
 *
 * What is listed (docs/sync.md):
 * - full: `Status.All`, every contact: only the whole list tells an entry already in the wanted
 *   state from one that matches no contact, so only a full run reports `unmatched`.
 * - incremental: only the contacts a change can come from: `Status.Inactive` when an entry
 *   wants a contact active, `Status.Active` when deactivations are applied and an entry wants
 *   one inactive. When the source is the same as at the last successful run (same digest), only
 *   the contacts modified since that run started (less a margin) can need a change, so the list
 *   is read newest first (`sort_column=last_modified_time`, `sort_order=D`, and Zoho's
 *   undocumented `last_modified_time` filter) and stops at the first older row: one call for a
 *   quiet hour, whether or not Zoho honours the filter.
 *
 * Newest-first pages stay stable while contacts change: a contact modified during the listing
 * moves to the front (read twice at worst, never skipped); a contact that leaves a status list
 * mid-listing can shift one row across a page boundary, which the daily full run catches.
 */
export async function runSync(
  deps: SyncDependencies,
  input: DesiredStateSyncInput,
): Promise<SyncSummary> {
  const { organizationId } = await organizationFor(deps.tokens, input.organization_id);
  const now = deps.now ?? (() => new Date());
  const desired = await loadDesiredState(input.source, deps);
  const callsBefore = deps.books.calls;
  const listing = await listBooks(deps, organizationId, input, desired, now);
  const planned = await planRun(deps, organizationId, input, desired, listing);
  const summary = summarize(organizationId, input, desired, listing, planned, {
    zohoCalls: deps.books.calls - callsBefore,
  });
  if (planned.changes.length > input.max_changes) {
    throw new ServiceError(
      "SYNC_LIMIT_EXCEEDED",
      `The run would make ${planned.changes.length} changes, more than max_changes ${input.max_changes}; nothing was queued. Check the source, or raise max_changes.`,
      { details: brief(summary) },
    );
  }
  if (input.dry_run) return summary;
  summary.jobs_queued = await queueChanges(deps, organizationId, planned.changes, now(), summary);
  // Only a run that did all it planned moves the watermark: a failed run is read again.
  await deps.ledger
    ?.saveState(organizationId, {
      listedAt: listing.listedAt,
      digest: listing.stable ? listing.digest : "",
    })
    .catch((error: unknown) =>
      logger.warn("Could not save the sync watermark; the next run lists by status", {
        error: (error as Error).message,
      }),
    );
  return summary;
}

/** What a run read of Books: the contacts, and how (filters, since when, stable pages). */
export interface BooksListing {
  contacts: BooksContact[];
  filters: StatusFilter[];
  since: Date | undefined;
  listedAt: Date;
  /** whether no contact can have been skipped between pages (else the next run reads all again) */
  stable: boolean;
  listCalls: number;
  /** the desired state's digest, saved with the watermark */
  digest: string;
}

/**
 * The status lists a run reads: every contact on a full run; on an incremental run only the
 * lists a change can come from (see {@link runSync}).
 */
export function listingFilters(
  input: Pick<SyncInput, "mode" | "apply_deactivations">,
  desired: DesiredState,
): StatusFilter[] {
  if (input.mode === "full") return ["Status.All"];
  const wants = (status: ContactStatus) => desired.entries.some((e) => e.status === status);
  return [
    ...(wants("active") ? (["Status.Inactive"] as const) : []),
    ...(input.apply_deactivations && wants("inactive") ? (["Status.Active"] as const) : []),
  ];
}

/** Step 2: list Books, only what changed since the watermark when the source is unchanged. */
async function listBooks(
  deps: SyncDependencies,
  organizationId: string,
  input: Pick<SyncInput, "mode" | "apply_deactivations" | "dry_run">,
  desired: DesiredState,
  now: () => Date,
): Promise<BooksListing> {
  const digest = desiredDigest(desired, input.apply_deactivations);
  const callsBefore = deps.books.calls;
  const previous =
    input.mode === "incremental" ? await deps.ledger?.state(organizationId) : undefined;
  const since =
    previous?.digest === digest
      ? new Date(previous.listedAt.getTime() - WATERMARK_MARGIN_MS)
      : undefined;
  const filters = listingFilters(input, desired);
  const listedAt = now();
  const contacts = new Map<string, BooksContact>();
  let pages = 0;
  for (const filterBy of filters) {
    const listed = await listContacts(deps.books, organizationId, filterBy, since);
    pages = Math.max(pages, listed.pages);
    for (const contact of listed.contacts) contacts.set(contact.contact_id, contact);
  }
  // A contact that left a status list during a listing of several pages may have shifted
  // another past a page boundary, unread and unmodified: then the next run reads the whole
  // status list again instead of the changes only. One call, only after several pages.
  const stable =
    input.mode === "full" ||
    pages <= 1 ||
    !(await changedSince(deps.books, organizationId, listedAt));
  const listCalls = deps.books.calls - callsBefore;
  return { contacts: [...contacts.values()], filters, since, listedAt, stable, listCalls, digest };
}

/** Step 3: the plan, its email-only matches checked, less the contacts with a sync job waiting. */
async function planRun(
  deps: SyncDependencies,
  organizationId: string,
  input: Pick<SyncInput, "mode" | "apply_deactivations" | "dry_run">,
  desired: DesiredState,
  listing: BooksListing,
): Promise<{ plan: SyncPlan } & ReturnType<typeof withoutPending>> {
  const plan = planChanges(listing.contacts, desired.entries, {
    applyDeactivations: input.apply_deactivations,
  });
  // Most entries match none of the few contacts read: only a full run can call them unmatched.
  if (input.mode === "incremental") plan.unmatched = [];
  await checkEmailsAgainstAll(deps.books, organizationId, plan);
  const pending = await deps.ledger?.pendingContacts(organizationId);
  return { plan, ...withoutPending(plan.changes, pending) };
}

/** A contact whose guarded deactivation was held lately, and why. */
export type HeldContact = { contact_id: string } & Hold;

/**
 * The changes whose contact has no sync job waiting and was not held lately; those that have are
 * counted, and the held ones reported with what held them.
 */
export function withoutPending(
  planned: PlannedChange[],
  pending: ReadonlyMap<string, PendingJob> | undefined,
): { changes: PlannedChange[]; alreadyQueued: number; held: HeldContact[] } {
  const changes = planned.filter((change) => !pending?.has(change.contact_id));
  const held = planned.flatMap((change) => {
    const hold = pending?.get(change.contact_id)?.held;
    return hold ? [{ contact_id: change.contact_id, ...hold }] : [];
  });
  return { changes, held, alreadyQueued: planned.length - changes.length - held.length };
}

/** Step 4: what the run found and will do, as the contract lists it (`jobs_queued` set later). */
export function summarize(
  organizationId: string,
  input: Pick<SyncInput, "mode" | "apply_deactivations" | "dry_run">,
  desired: DesiredState,
  listing: Pick<BooksListing, "contacts" | "filters" | "since" | "listCalls">,
  { plan, changes, alreadyQueued, held }: { plan: SyncPlan } & ReturnType<typeof withoutPending>,
  counts: { zohoCalls: number },
): SyncSummary {
  const count = (action: Action) => changes.filter((change) => change.action === action).length;
  const conflicting: SourceConflict[] = [
    ...desired.conflicts,
    ...plan.conflicting.map((contact_id) => ({ contact_id })),
  ];
  return {
    organization_id: organizationId,
    mode: input.mode,
    dry_run: input.dry_run,
    listed: listing.filters,
    modified_since: listing.since?.toISOString() ?? null,
    contacts_read: listing.contacts.length,
    desired: desired.entries.length,
    duplicates: desired.duplicates,
    to_activate: count("activate"),
    to_deactivate: count("deactivate"),
    deactivations_skipped: plan.deactivationsSkipped,
    unmatched: plan.unmatched.length,
    ambiguous: plan.ambiguous.length,
    conflicting: conflicting.length,
    already_queued: alreadyQueued,
    held: held.length,
    held_sample: held.slice(0, SAMPLE),
    jobs_queued: 0,
    zoho_calls: counts.zohoCalls,
    list_calls: listing.listCalls,
    unmatched_sample: plan.unmatched.slice(0, SAMPLE),
    ambiguous_sample: plan.ambiguous.slice(0, SAMPLE),
    conflicting_sample: conflicting.slice(0, SAMPLE),
  };
}

/** The summary without its samples: what an error's details carry. */
export function brief(summary: SyncSummary) {
  return {
    ...summary,
    unmatched_sample: undefined,
    ambiguous_sample: undefined,
    conflicting_sample: undefined,
    unmatched_records: undefined,
    ambiguous_records: undefined,
    planned: undefined,
  };
}

/**
 * Step 5: one job per change on the bulk queue (`source: "sync"`), each contact marked pending
 * first. Returns how many were queued; if SQS took only some, clears the marks of the others
 * and throws with the SQS error's code (the next run plans them again; jobs are idempotent).
 */
export async function queueChanges(
  deps: SyncDependencies,
  organizationId: string,
  changes: PlannedChange[],
  requestedAt: Date,
  summary: SyncSummary,
): Promise<number> {
  if (changes.length === 0) return 0;
  const jobs = changes.map((change, index) => ({
    index,
    job: {
      ...change,
      organization_id: organizationId,
      source: "sync",
      requested_at: requestedAt.toISOString(),
      job_id: randomJobId(),
    },
  }));
  // Marked before they are queued (as acceptJobs records them): a worker done with a job
  // before a later write would leave its contact held back until the item expires.
  await deps.ledger
    ?.markPending(
      organizationId,
      jobs.map(({ job }) => ({
        contact_id: job.contact_id,
        job_id: job.job_id,
        action: job.action,
      })),
    )
    .catch((error: unknown) =>
      // Without the items the next run may queue the same jobs again (harmless).
      logger.warn("Could not record the pending sync jobs", { error: (error as Error).message }),
    );
  const { queued, failed } = await acceptJobs(deps, deps.queueUrl, jobs);
  if (failed.length === 0) return queued.length;
  await deps.ledger
    ?.unmarkPending(
      organizationId,
      failed.map(({ index }) => (changes[index] as PlannedChange).contact_id),
    )
    .catch((error: unknown) =>
      logger.warn("Could not clear the pending items of jobs that were not queued", {
        error: (error as Error).message,
      }),
    );
  const [{ error }] = failed as [UnqueuedJob];
  throw new ServiceError(
    error.code,
    `Queued ${queued.length} of ${changes.length} jobs; the rest could not be queued: ${error.message}`,
    {
      details: { ...brief(summary), jobs_queued: queued.length },
      retryAfterSeconds: error.retryAfterSeconds,
    },
  );
}

function randomJobId(): string {
  return globalThis.crypto.randomUUID();
}

/**
 * One status list, newest first. With `since`, stops at the first row modified before it (the
 * rest are older), which also bounds the listing when Zoho ignores the `last_modified_time`
 * filter; a row out of order means the sort was not honoured either, and the listing goes on.
 */
export async function listContacts(
  books: ZohoBooksClient,
  organizationId: string,
  filterBy: StatusFilter,
  since: Date | undefined,
): Promise<{ contacts: BooksContact[]; pages: number }> {
  const contacts: BooksContact[] = [];
  let sorted = true;
  let previous = Number.POSITIVE_INFINITY;
  let pages = 0;
  for await (const page of books.listAllContacts({
    organizationId,
    filterBy,
    sortColumn: "last_modified_time",
    sortOrder: "D",
    ...(since ? { modifiedSince: since } : {}),
  })) {
    pages++;
    let older = false;
    for (const contact of page.contacts) {
      const modified = Date.parse(contact.last_modified_time ?? "");
      if (Number.isNaN(modified) || modified > previous) sorted = false;
      previous = Number.isNaN(modified) ? previous : modified;
      if (since && sorted && modified < since.getTime()) older = true;
      else contacts.push(contact);
    }
    if (older) break;
  }
  return { contacts, pages };
}

/** Whether any contact was modified at or after `at` (the newest contact, one call). */
export async function changedSince(
  books: ZohoBooksClient,
  organizationId: string,
  at: Date,
): Promise<boolean> {
  const { contacts } = await books.listContacts({
    organizationId,
    filterBy: "Status.All",
    modifiedSince: at,
    sortColumn: "last_modified_time",
    sortOrder: "D",
    perPage: 1,
  });
  const newest = Date.parse(contacts[0]?.last_modified_time ?? "");
  // Zoho's times have whole seconds: a change in the listing's first second counts.
  return !Number.isNaN(newest) && newest >= Math.floor(at.getTime() / 1000) * 1000;
}

/**
 * A list row shows only the primary person's email, so an email that names one contact of the
 * list may also be another contact's (a secondary person's, or one an incremental run did not
 * read): the API would refuse it as ambiguous. Each change named by email only is resolved as a
 * job's email is (findContactIdByEmail: one call, and one more per candidate whose row shows
 * another email), and kept only when it names that contact alone.
 */
async function checkEmailsAgainstAll(
  books: ZohoBooksClient,
  organizationId: string,
  plan: SyncPlan,
): Promise<void> {
  const dropped = new Set<string>();
  for (const [contactId, email] of plan.byEmailOnly) {
    const candidates = await emailCandidates(books, email, organizationId);
    if (candidates.length === 1 && candidates[0] === contactId) continue;
    dropped.add(contactId);
    plan.ambiguous.push({
      entry: {
        email,
        status:
          plan.changes.find((c) => c.contact_id === contactId)?.action === "activate"
            ? "active"
            : "inactive",
      },
      candidates: [...new Set([contactId, ...candidates])],
    });
  }
  plan.changes = plan.changes.filter((change) => !dropped.has(change.contact_id));
}
