import { describe, expect, it } from "vitest";
import {
  type DesiredState,
  listingFilters,
  parseSyncInput,
  planChanges,
  summarize,
  withoutPending,
} from "../../lib/sync/sync";

// The sync's pure steps alone: what a run lists, and what it reports. Reading the source,
// listing Books and queueing talk to the sandbox and SQS (test/integration/scheduled-sync).
const desired = (...statuses: Array<"active" | "inactive">): DesiredState => ({
  entries: statuses.map((status, i) => ({ contact_id: String(100 + i), status })),
  duplicates: 0,
  conflicts: [],
});
const input = (more: Record<string, unknown> = {}) =>
  parseSyncInput({ source: { type: "inline", contacts: [] }, ...more });

describe("listingFilters: the status lists a run reads", () => {
  it("a full run reads every contact", () => {
    expect(listingFilters(input({ mode: "full" }), desired("active"))).toEqual(["Status.All"]);
  });

  it("an incremental run reads only where a change can come from", () => {
    expect(listingFilters(input(), desired("active", "inactive"))).toEqual(["Status.Inactive"]);
    expect(
      listingFilters(input({ apply_deactivations: true }), desired("active", "inactive")),
    ).toEqual(["Status.Inactive", "Status.Active"]);
    expect(listingFilters(input({ apply_deactivations: true }), desired("inactive"))).toEqual([
      "Status.Active",
    ]);
  });

  it("reads nothing when nothing can change: no deactivations applied and no one wanted active", () => {
    expect(listingFilters(input(), desired("inactive"))).toEqual([]);
  });
});

describe("summarize: what a run reports", () => {
  const books = [
    { contact_id: "100", status: "inactive" as const },
    { contact_id: "101", status: "active" as const },
    { contact_id: "102", status: "inactive" as const },
  ];
  const wanted: DesiredState = {
    entries: [
      { contact_id: "100", status: "active" },
      { contact_id: "101", status: "inactive" },
      { contact_id: "102", status: "active" },
      { contact_id: "999", status: "active" },
    ],
    duplicates: 2,
    conflicts: [{ contact_id: "555" }],
  };
  const plan = planChanges(books, wanted.entries, { applyDeactivations: false });
  const listing = {
    contacts: books,
    filters: ["Status.All" as const],
    since: undefined,
    listCalls: 1,
  };

  it("counts the changes left after pending ones, skipped deactivations, unmatched and conflicts", () => {
    const pending = new Map([["102", {}]]); // 102 has a job waiting
    const summary = summarize(
      "42",
      input({ mode: "full" }),
      wanted,
      listing,
      { plan, ...withoutPending(plan.changes, pending) },
      {
        zohoCalls: 3,
      },
    );
    expect(summary).toMatchObject({
      organization_id: "42",
      mode: "full",
      listed: ["Status.All"],
      modified_since: null,
      contacts_read: 3,
      desired: 4,
      duplicates: 2,
      to_activate: 1,
      to_deactivate: 0,
      deactivations_skipped: 1,
      unmatched: 1,
      conflicting: 1,
      already_queued: 1,
      jobs_queued: 0,
      zoho_calls: 3,
      list_calls: 1,
    });
    expect(summary.unmatched_sample).toEqual([{ contact_id: "999", status: "active" }]);
    expect(summary.conflicting_sample).toEqual([{ contact_id: "555" }]);
  });

  it("reports a contact the guard held lately, with what held it, instead of queueing it again", () => {
    const hold = {
      code: "OUTSTANDING_BALANCE" as const,
      message: "The customer has an outstanding receivable.",
      contact_type: "customer",
      amounts: { outstanding_receivable_amount: 120, unused_credits_receivable_amount: 0 },
    };
    const changes = [
      { contact_id: "1", action: "deactivate" as const },
      { contact_id: "2", action: "deactivate" as const },
      { contact_id: "3", action: "activate" as const },
    ];
    const pending = new Map([
      ["1", { held: hold }],
      ["2", {}],
    ]);
    expect(withoutPending(changes, pending)).toEqual({
      changes: [changes[2]],
      alreadyQueued: 1,
      held: [{ contact_id: "1", ...hold }],
    });
    expect(withoutPending(changes, undefined)).toEqual({ changes, alreadyQueued: 0, held: [] });
  });

  it("keeps at most 20 of each sample", () => {
    const many: DesiredState = {
      entries: Array.from({ length: 30 }, (_, i) => ({
        contact_id: String(500 + i),
        status: "active",
      })),
      duplicates: 0,
      conflicts: [],
    };
    const unmatched = planChanges([], many.entries, { applyDeactivations: false });
    const summary = summarize(
      "42",
      input(),
      many,
      { ...listing, contacts: [] },
      { plan: unmatched, changes: [], alreadyQueued: 0, held: [] },
      { zohoCalls: 0 },
    );
    expect([summary.unmatched, summary.unmatched_sample.length]).toEqual([30, 20]);
  });
});
