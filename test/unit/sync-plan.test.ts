import { Readable } from "node:stream";
import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { mockClient } from "aws-sdk-client-mock";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type DesiredEntry,
  loadDesiredState,
  MAX_SOURCE_BYTES,
  parseCsv,
  parseDesiredState,
  planChanges,
} from "../../lib/sync/sync";

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
  it("keeps one entry for a name given twice with the same status", () => {
    expect(
      parseDesiredState({
        contacts: [
          { email: "a@x.io", status: "active" },
          { email: " A@X.IO", status: "active" },
          { contact_id: "7", status: "inactive" },
          { contact_id: "7", status: "inactive" },
        ],
      }),
    ).toEqual({
      entries: [
        { email: "a@x.io", status: "active" },
        { contact_id: "7", status: "inactive" },
      ],
      duplicates: 2,
      conflicts: [],
    });
  });

  it("skips and reports a name given both statuses, and keeps the rest", () => {
    const state = parseDesiredState({
      contacts: [
        { email: "a@x.io", status: "active" },
        { email: " A@X.IO", status: "inactive" },
        { contact_id: "7", status: "inactive" },
        { contact_id: "7", status: "active" },
        { contact_id: "8", status: "active" },
      ],
    });
    expect(state.entries).toEqual([{ contact_id: "8", status: "active" }]);
    expect(state.conflicts).toEqual([{ email: "a@x.io" }, { contact_id: "7" }]);
  });

  it("leaves every conflicting name out and keeps every other one (property)", () => {
    fc.assert(
      fc.property(desired, (wanted) => {
        const { entries, conflicts } = parseDesiredState({ contacts: wanted });
        const name = (e: DesiredEntry) => e.contact_id ?? e.email?.trim().toLowerCase();
        const statuses = new Map<string | undefined, Set<string>>();
        for (const e of wanted)
          statuses.set(name(e), (statuses.get(name(e)) ?? new Set()).add(e.status));
        expect(entries.length + conflicts.length).toBe(statuses.size);
        for (const e of entries) expect(statuses.get(name(e))?.size).toBe(1);
        for (const c of conflicts) expect(statuses.get(c.contact_id ?? c.email)?.size).toBe(2);
      }),
      { numRuns: 300 },
    );
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
    const { acceptEverything } = await import("../../local/queue-mock");
    const sqs = mockClient(SQSClient);
    acceptEverything(sqs);
    await fc.assert(
      fc.asyncProperty(
        books,
        desired,
        fc.boolean(),
        fc.nat({ max: 12 }),
        async (state, wanted, applyDeactivations, maxChanges) => {
          sqs.resetHistory();
          // A Books client with this state in one page; the same contract as ZohoBooksClient's
          // iterator. Its email filter matches list rows exactly (no secondary persons here).
          const client = {
            calls: 0,
            async *listAllContacts(query: { email?: string }) {
              client.calls++;
              const email = query.email;
              const contacts = email
                ? state.filter((c) => c.email?.trim().toLowerCase() === email)
                : state;
              yield { contacts, page: 1, hasMorePage: false };
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
              records: { accepted: async () => undefined, forget: async () => undefined },
              queueUrl: "q",
              timeoutMs: 1000,
            },
            {
              organization_id: "1",
              mode: "full",
              source: { type: "inline", contacts: wanted },
              apply_deactivations: applyDeactivations,
              max_changes: maxChanges,
              dry_run: false,
            },
          );
          const { entries } = parseDesiredState({ contacts: wanted });
          const planned = planChanges(state, entries, { applyDeactivations }).changes.length;
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

describe("CSV sources", () => {
  it("reads a header row, quoted fields, CRLF, any column order and extra columns", () => {
    const csv =
      '\uFEFFName,Status,EMAIL,contact_id\r\n"Doe, Ann",Active,ann@x.io,\r\n"Bob ""B""",inactive,,460000000000004\r\n\r\n';
    expect(parseCsv(csv)).toEqual({
      contacts: [
        { email: "ann@x.io", status: "active" },
        { contact_id: "460000000000004", status: "inactive" },
      ],
    });
  });

  it("refuses a CSV without the columns it needs, or with an open quote", () => {
    expect(() => parseCsv("id,state\n1,active\n")).toThrow(/header row/);
    expect(() => parseCsv('email,status\n"a@x.io,active\n')).toThrow(/not closed/);
  });
});

// The local AWS endpoint (local/aws) has no S3: the S3 source is tested with
// aws-sdk-client-mock, GetObject answering a body stream as the SDK does.
describe("S3 sources (aws-sdk-client-mock)", () => {
  const s3mock = mockClient(S3Client);
  const body = (text: string) => Readable.from([Buffer.from(text)]);
  const load = (key: string) =>
    loadDesiredState(
      { type: "s3", bucket: "crm-exports", key },
      { timeoutMs: 1000, s3: async () => new S3Client({}) },
    );

  it("reads JSON, and CSV by content type or by a .csv key", async () => {
    s3mock.reset();
    s3mock
      .on(GetObjectCommand, { Key: "contacts.json" })
      .resolves({
        Body: body(JSON.stringify({ contacts: [{ contact_id: "1", status: "active" }] })) as never,
        ContentType: "application/json",
      })
      .on(GetObjectCommand, { Key: "export" })
      .resolves({ Body: body("email,status\nann@x.io,active\n") as never, ContentType: "text/csv" })
      .on(GetObjectCommand, { Key: "contacts.csv" })
      .resolves({
        Body: body("contact_id,status\n2,inactive\n") as never,
        ContentType: "binary/octet-stream",
      });
    expect((await load("contacts.json")).entries).toEqual([{ contact_id: "1", status: "active" }]);
    expect((await load("export")).entries).toEqual([{ email: "ann@x.io", status: "active" }]);
    expect((await load("contacts.csv")).entries).toEqual([{ contact_id: "2", status: "inactive" }]);
    expect(s3mock.commandCalls(GetObjectCommand)[0]?.args[0].input).toEqual({
      Bucket: "crm-exports",
      Key: "contacts.json",
    });
  });

  it("fails the run on a missing object, a refusal, an object over the cap, or an invalid one", async () => {
    s3mock.reset();
    s3mock
      .on(GetObjectCommand, { Key: "missing.csv" })
      .rejects(Object.assign(new Error("no"), { name: "NoSuchKey" }))
      .on(GetObjectCommand, { Key: "denied.csv" })
      .rejects(Object.assign(new Error("no"), { name: "AccessDenied" }))
      .on(GetObjectCommand, { Key: "big.csv" })
      .resolves({ Body: body("x") as never, ContentLength: MAX_SOURCE_BYTES + 1 })
      .on(GetObjectCommand, { Key: "bigger.csv" })
      .resolves({ Body: body(`email,status\n${"a".repeat(MAX_SOURCE_BYTES)},active\n`) as never })
      .on(GetObjectCommand, { Key: "bad.csv" })
      .resolves({ Body: body("email,status\nann@x.io,gone\n") as never });
    for (const [key, why] of [
      ["missing.csv", "s3://crm-exports/missing.csv does not exist"],
      ["denied.csv", "refused access"],
      ["big.csv", "larger than"],
      ["bigger.csv", "more than 5242880 bytes"],
      ["bad.csv", 'status must be "active" or "inactive"'],
    ] as const) {
      await expect(load(key)).rejects.toMatchObject({
        code: "SYNC_SOURCE_FAILED",
        message: expect.stringContaining(why),
      });
    }
  });
});
