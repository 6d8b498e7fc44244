import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type DesiredEntry, parseDesiredState, planChanges } from "../../lib/sync/sync";

type Contact = { contact_id: string; status: "active" | "inactive"; email?: string };

// Small id and email alphabets, so that matches, misses, shared emails and duplicates all happen.
const status = fc.constantFrom("active" as const, "inactive" as const);
const email = fc.constantFrom("a@x.io", "B@x.io", "c@x.io", " d@x.io", "e@x.io");
const books = fc.uniqueArray(
  fc.record({
    contact_id: fc.stringMatching(/^[1-9]\d{0,1}$/),
    status,
    email: fc.option(email, { nil: undefined }),
  }),
  { selector: (c) => c.contact_id, maxLength: 30 },
);
const entry: fc.Arbitrary<DesiredEntry> = fc.oneof(
  fc.record({ contact_id: fc.stringMatching(/^[1-9]\d{0,1}$/), status }),
  fc.record({ email: email.map((e) => e.toUpperCase()), status }),
);
const desired = fc.array(entry, { maxLength: 40 });
// What a source may send: each contact named once (a duplicate fails the run before planning).
const validSource = fc.uniqueArray(entry, {
  selector: (e) => e.contact_id ?? e.email?.trim().toLowerCase(),
  maxLength: 40,
});

function apply(state: Contact[], changes: { contact_id: string; action: string }[]): Contact[] {
  const next = new Map(
    changes.map((c) => [c.contact_id, c.action === "activate" ? "active" : "inactive"] as const),
  );
  return state.map((c) => ({ ...c, status: next.get(c.contact_id) ?? c.status }));
}

describe("planChanges", () => {
  it("plans nothing more once its plan is applied", () => {
    fc.assert(
      fc.property(books, desired, fc.boolean(), (state, wanted, applyDeactivations) => {
        const plan = planChanges(state, wanted, { applyDeactivations });
        const again = planChanges(apply(state, plan.changes), wanted, { applyDeactivations });
        expect(again.changes).toEqual([]);
      }),
      { numRuns: 500 },
    );
  });

  it("never plans a deactivation when apply_deactivations is false", () => {
    fc.assert(
      fc.property(books, desired, (state, wanted) => {
        const plan = planChanges(state, wanted, { applyDeactivations: false });
        expect(plan.changes.filter((c) => c.action === "deactivate")).toEqual([]);
      }),
      { numRuns: 500 },
    );
  });

  it("changes each contact at most once, and only towards what the source wants", () => {
    fc.assert(
      fc.property(books, desired, fc.boolean(), (state, wanted, applyDeactivations) => {
        const plan = planChanges(state, wanted, { applyDeactivations });
        const ids = plan.changes.map((c) => c.contact_id);
        expect(new Set(ids).size).toBe(ids.length);
        for (const change of plan.changes) {
          const contact = state.find((c) => c.contact_id === change.contact_id);
          expect(contact?.status).toBe(change.action === "activate" ? "inactive" : "active");
        }
      }),
      { numRuns: 500 },
    );
  });

  it("accounts for every entry: changed, already right, unmatched, ambiguous, conflicting or skipped", () => {
    fc.assert(
      fc.property(books, desired, (state, wanted) => {
        const plan = planChanges(state, wanted, { applyDeactivations: false });
        expect(plan.unmatched.length + plan.ambiguous.length).toBeLessThanOrEqual(wanted.length);
        for (const entry of plan.unmatched) {
          if (entry.contact_id)
            expect(state.some((c) => c.contact_id === entry.contact_id)).toBe(false);
        }
        for (const { candidates } of plan.ambiguous) expect(candidates.length).toBeGreaterThan(1);
      }),
      { numRuns: 300 },
    );
  });

  it("matches emails trimmed and case-insensitively, and never guesses between several", () => {
    const state: Contact[] = [
      { contact_id: "1", status: "inactive", email: " Ann@Example.com" },
      { contact_id: "2", status: "inactive", email: "bob@example.com" },
      { contact_id: "3", status: "inactive", email: "BOB@example.com " },
    ];
    const plan = planChanges(
      state,
      [
        { email: "ann@example.COM", status: "active" },
        { email: "bob@example.com", status: "active" },
        { email: "carl@example.com", status: "active" },
      ],
      { applyDeactivations: false },
    );
    expect(plan.changes).toEqual([{ contact_id: "1", action: "activate" }]);
    expect(plan.ambiguous).toEqual([
      { entry: { email: "bob@example.com", status: "active" }, candidates: ["2", "3"] },
    ]);
    expect(plan.unmatched).toEqual([{ email: "carl@example.com", status: "active" }]);
  });

  it("leaves alone a contact named twice with different wishes", () => {
    const plan = planChanges(
      [{ contact_id: "1", status: "active", email: "a@x.io" }],
      [
        { contact_id: "1", status: "inactive" },
        { email: "a@x.io", status: "active" },
      ],
      { applyDeactivations: true },
    );
    expect(plan.changes).toEqual([]);
    expect(plan.conflicting).toEqual(["1"]);
  });
});

describe("parseDesiredState", () => {
  it("refuses a document that names the same email twice", () => {
    expect(() =>
      parseDesiredState({
        contacts: [
          { email: "a@x.io", status: "active" },
          { email: " A@X.IO", status: "inactive" },
        ],
      }),
    ).toThrow(/names an email more than once/);
  });

  it.each([
    [[], 'the document must be {"contacts": [...]}'],
    [{ contacts: [{ contact_id: "12", status: "gone" }] }, 'status must be "active" or "inactive"'],
    [
      { contacts: [{ status: "active" }] },
      "each contact is named by exactly one of contact_id or email",
    ],
  ])("refuses an invalid document %j, saying why", (document, why) => {
    expect(() => parseDesiredState(document)).toThrow(why);
  });
});

describe("runSync", () => {
  it("never queues more than max_changes: it queues the whole plan or nothing", async () => {
    const { runSync } = await import("../../lib/sync/sync");
    const { SQSClient, SendMessageBatchCommand } = await import("@aws-sdk/client-sqs");
    const { mockClient } = await import("aws-sdk-client-mock");
    const { acceptEverything } = await import("../support/queue-mock");
    const sqs = mockClient(SQSClient);
    acceptEverything(sqs);
    await fc.assert(
      fc.asyncProperty(
        books,
        validSource,
        fc.boolean(),
        fc.nat({ max: 12 }),
        async (state, wanted, applyDeactivations, maxChanges) => {
          sqs.resetHistory();
          // A Books client with this state in one page; the same contract as ZohoBooksClient's iterator.
          const client = {
            calls: 0,
            async *listAllContacts() {
              client.calls++;
              yield { contacts: state, page: 1, hasMorePage: false };
            },
          };
          const queued = () =>
            sqs
              .commandCalls(SendMessageBatchCommand)
              .reduce((n, c) => n + (c.args[0].input.Entries?.length ?? 0), 0);
          const run = runSync(
            {
              books: client as never,
              tokens: { getSecret: async () => ({}) as never },
              sqs: new SQSClient({}),
              records: { accepted: async () => undefined },
              queueUrl: "q",
              timeoutMs: 1000,
            },
            {
              organization_id: "1",
              source: { type: "inline", contacts: wanted },
              apply_deactivations: applyDeactivations,
              max_changes: maxChanges,
              dry_run: false,
            },
          );
          const planned = planChanges(state, wanted, { applyDeactivations }).changes.length;
          if (planned > maxChanges) {
            await expect(run).rejects.toMatchObject({ code: "SYNC_LIMIT_EXCEEDED" });
            expect(queued()).toBe(0);
          } else {
            expect((await run).jobs_queued).toBe(planned);
            expect(queued()).toBe(planned);
          }
        },
      ),
      { numRuns: 200 },
    );
    sqs.restore();
  });
});
