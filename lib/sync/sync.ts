import type { SQSClient } from "@aws-sdk/client-sqs";
import * as z from "zod/mini";
import { type Action, normalizeEmail } from "../activation";
import type { ZohoSecret } from "../credentials/secret";
import { ServiceError } from "../errors";
import { ZOHO_ID_PATTERN } from "../ids";
import { describeIssues } from "../jobs/job";
import { acceptJobs } from "../jobs/queue";
import type { JobRecords } from "../jobs/records";
import type { BooksContact, ContactStatus, ZohoBooksClient } from "../zoho/books-client";

const zohoId = (field: string) =>
  z
    .string({ error: `${field} must be a string of digits` })
    .check(z.regex(ZOHO_ID_PATTERN, `${field} must be 1 to 25 digits`));

/** One line of the desired-state document: a contact, named by Books id or primary email. */
const DesiredEntrySchema = z
  .object({
    contact_id: z.optional(zohoId("contact_id")),
    email: z.optional(
      z
        .string({ error: "email must be a string" })
        .check(z.trim(), z.minLength(3, "email is too short")),
    ),
    status: z.enum(["active", "inactive"], { error: 'status must be "active" or "inactive"' }),
  })
  .check(
    z.refine((entry) => (entry.contact_id === undefined) !== (entry.email === undefined), {
      error: "each contact is named by exactly one of contact_id or email",
    }),
  );

export type DesiredEntry = z.infer<typeof DesiredEntrySchema>;

/** The CRM's export: `{"contacts": [...]}`. */
export const DesiredStateSchema = z.object(
  { contacts: z.array(DesiredEntrySchema, { error: "contacts must be an array" }) },
  { error: 'the document must be {"contacts": [...]}' },
);

/** The EventBridge rule's constant input. */
export const SyncInputSchema = z.object(
  {
    organization_id: z.optional(zohoId("organization_id")),
    source: z.discriminatedUnion(
      "type",
      [
        z.object({
          type: z.literal("url"),
          url: z.url({ protocol: /^https?$/, error: "source.url must be an http(s) URL" }),
        }),
        z.object({
          type: z.literal("inline"),
          contacts: z.array(z.unknown(), { error: "source.contacts must be an array" }),
        }),
      ],
      { error: 'source must be {"type": "url", "url": …} or {"type": "inline", "contacts": […]}' },
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

export function parseSyncInput(value: unknown): SyncInput {
  const parsed = SyncInputSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new ServiceError("INVALID_REQUEST", `Sync input: ${describeIssues(parsed.error.issues)}`);
}

/** Validates the desired-state document; duplicates are refused, since one of them would be a guess. */
export function parseDesiredState(value: unknown): DesiredEntry[] {
  const parsed = DesiredStateSchema.safeParse(value);
  if (!parsed.success) {
    throw new ServiceError(
      "SYNC_SOURCE_FAILED",
      `The source document is invalid: ${describeIssues(parsed.error.issues)}`,
    );
  }
  const seen = new Set<string>();
  for (const entry of parsed.data.contacts) {
    const key = entry.contact_id ?? `email:${normalizeEmail(entry.email ?? "")}`;
    if (seen.has(key)) {
      throw new ServiceError(
        "SYNC_SOURCE_FAILED",
        `The source document names ${entry.contact_id ? `contact_id ${entry.contact_id}` : "an email"} more than once; nothing was queued.`,
        { details: { duplicate: entry.contact_id ?? normalizeEmail(entry.email ?? "") } },
      );
    }
    seen.add(key);
  }
  return parsed.data.contacts;
}

export interface PlannedChange {
  contact_id: string;
  action: Action;
}

export interface SyncPlan {
  changes: PlannedChange[];
  /** entries that match no Books contact */
  unmatched: DesiredEntry[];
  /** entries whose email matches several Books contacts, with the candidates */
  ambiguous: Array<{ entry: DesiredEntry; candidates: string[] }>;
  /** contacts the source names more than once (by id and by email): left alone */
  conflicting: string[];
  /** entries that want a contact inactive while `apply_deactivations` is off */
  deactivationsSkipped: number;
}

type PlannedContact = Pick<BooksContact, "contact_id" | "status" | "email">;

/**
 * What a run would change: activate where the source wants active and Books has inactive;
 * deactivate where the source wants inactive and Books has active, only if asked to. Nothing
 * is guessed: an entry that matches no contact, several contacts, or a contact another entry
 * also names, is reported and left alone. Pure, so it is property-tested.
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
  };
  const wanted = new Map<string, { contact: PlannedContact; statuses: ContactStatus[] }>();
  for (const entry of desired) {
    const matches = entry.contact_id
      ? [byId.get(entry.contact_id)].filter((c) => c !== undefined)
      : (byEmail.get(normalizeEmail(entry.email ?? "")) ?? []);
    const [contact] = matches;
    if (!contact) plan.unmatched.push(entry);
    else if (matches.length > 1)
      plan.ambiguous.push({ entry, candidates: matches.map((c) => c.contact_id) });
    else {
      const named = wanted.get(contact.contact_id) ?? { contact, statuses: [] };
      named.statuses.push(entry.status);
      wanted.set(contact.contact_id, named);
    }
  }

  for (const [contactId, { contact, statuses }] of wanted) {
    const [status] = statuses;
    if (statuses.length > 1) plan.conflicting.push(contactId);
    else if (status === undefined || contact.status === status) continue;
    else if (status === "inactive" && !options.applyDeactivations) plan.deactivationsSkipped++;
    else
      plan.changes.push({
        contact_id: contactId,
        action: status === "active" ? "activate" : "deactivate",
      });
  }
  return plan;
}

/** A desired-state document larger than this is refused (about 50,000 entries). */
export const MAX_SOURCE_BYTES = 5 * 1024 * 1024;

/**
 * Reads the desired state. A URL source is fetched with a timeout and a size cap; a 5xx, a
 * timeout, a body that is not JSON or not a valid document fails the run before anything is
 * queued, with a message that says which.
 */
export async function loadDesiredState(
  source: SyncInput["source"],
  options: { timeoutMs: number; fetch?: typeof fetch },
): Promise<DesiredEntry[]> {
  if (source.type === "inline") return parseDesiredState({ contacts: source.contacts });
  const where = new URL(source.url).origin; // never the query string: it may hold a token
  const fail = (why: string) =>
    new ServiceError(
      "SYNC_SOURCE_FAILED",
      `The sync source at ${where} ${why}; nothing was queued.`,
    );
  let text: string;
  try {
    const response = await (options.fetch ?? fetch)(source.url, {
      headers: { accept: "application/json" },
      signal: AbortSignal.timeout(options.timeoutMs),
    });
    if (!response.ok) throw fail(`answered HTTP ${response.status}`);
    text = await readCapped(response, MAX_SOURCE_BYTES, fail);
  } catch (error) {
    if (error instanceof ServiceError) throw error;
    throw (error as Error)?.name === "TimeoutError"
      ? fail(`did not answer within ${options.timeoutMs} ms`)
      : fail("could not be reached");
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    throw fail("did not answer JSON");
  }
  return parseDesiredState(document);
}

async function readCapped(
  response: Response,
  maxBytes: number,
  fail: (why: string) => ServiceError,
): Promise<string> {
  const declared = Number(response.headers.get("content-length") ?? "0");
  if (declared > maxBytes) throw fail(`answered more than ${maxBytes} bytes`);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body ?? []) {
    size += chunk.byteLength;
    if (size > maxBytes) throw fail(`answered more than ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

export interface SyncDependencies {
  books: ZohoBooksClient;
  tokens: { getSecret(): Promise<ZohoSecret> };
  sqs: SQSClient;
  records: Pick<JobRecords, "accepted">;
  /** the bulk queue */
  queueUrl: string;
  /** timeout of the source fetch */
  timeoutMs: number;
  fetch?: typeof fetch;
}

/** What a run did, as the contract lists it; returned and logged. */
export interface SyncSummary {
  organization_id: string;
  dry_run: boolean;
  contacts_read: number;
  desired: number;
  to_activate: number;
  to_deactivate: number;
  deactivations_skipped: number;
  unmatched: number;
  ambiguous: number;
  conflicting: number;
  jobs_queued: number;
  zoho_calls: number;
  /** the first entries that matched nothing or several contacts, to look at */
  unmatched_sample: DesiredEntry[];
  ambiguous_sample: Array<{ entry: DesiredEntry; candidates: string[] }>;
}

const SAMPLE = 20;

/**
 * One reconciliation: read the desired state, list Books contacts page by page, plan, and
 * queue one job per change (`source: "sync"`). A run over `max_changes` queues nothing.
 *
 * Books is listed with `Status.All`: only a full list can tell an entry that is already in the
 * wanted state from one that matches no contact at all.
 */
export async function runSync(deps: SyncDependencies, input: SyncInput): Promise<SyncSummary> {
  const organizationId = input.organization_id ?? (await deps.tokens.getSecret()).organization_id;
  if (organizationId === undefined) {
    throw new ServiceError(
      "INVALID_REQUEST",
      "Sync input: name organization_id, or set a default organization_id in the secret.",
    );
  }
  const desired = await loadDesiredState(input.source, deps);

  const callsBefore = deps.books.calls;
  const contacts: BooksContact[] = [];
  for await (const page of deps.books.listAllContacts({ organizationId, filterBy: "Status.All" })) {
    contacts.push(...page.contacts);
  }
  const plan = planChanges(contacts, desired, { applyDeactivations: input.apply_deactivations });
  const count = (action: Action) =>
    plan.changes.filter((change) => change.action === action).length;
  const summary: SyncSummary = {
    organization_id: organizationId,
    dry_run: input.dry_run,
    contacts_read: contacts.length,
    desired: desired.length,
    to_activate: count("activate"),
    to_deactivate: count("deactivate"),
    deactivations_skipped: plan.deactivationsSkipped,
    unmatched: plan.unmatched.length,
    ambiguous: plan.ambiguous.length,
    conflicting: plan.conflicting.length,
    jobs_queued: 0,
    zoho_calls: deps.books.calls - callsBefore,
    unmatched_sample: plan.unmatched.slice(0, SAMPLE),
    ambiguous_sample: plan.ambiguous.slice(0, SAMPLE),
  };

  if (plan.changes.length > input.max_changes) {
    throw new ServiceError(
      "SYNC_LIMIT_EXCEEDED",
      `The run would make ${plan.changes.length} changes, more than max_changes ${input.max_changes}; nothing was queued. Check the source, or raise max_changes.`,
      { details: { ...summary, unmatched_sample: undefined, ambiguous_sample: undefined } },
    );
  }
  if (input.dry_run || plan.changes.length === 0) return summary;

  const requestedAt = new Date().toISOString();
  const { queued, failed } = await acceptJobs(
    deps,
    deps.queueUrl,
    plan.changes.map((change, index) => ({
      index,
      job: {
        ...change,
        organization_id: organizationId,
        source: "sync",
        requested_at: requestedAt,
      },
    })),
  );
  summary.jobs_queued = queued.length;
  if (failed.length > 0) {
    // The next run plans the same changes again; jobs are idempotent, so queueing twice is harmless.
    throw new ServiceError(
      "CONFIGURATION_ERROR",
      `Queued ${queued.length} of ${plan.changes.length} jobs; the rest could not be queued.`,
      {
        details: { ...summary, unmatched_sample: undefined, ambiguous_sample: undefined },
      },
    );
  }
  return summary;
}
