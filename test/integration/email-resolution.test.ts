import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { changeContactStatus, findContactIdByEmail } from "../../lib/activation";
import type { ServiceError } from "../../lib/errors";
import { jobToRequest, parseJob } from "../../lib/jobs/job";
import { ZohoBooksClient } from "../../lib/zoho/books-client";
import {
  ORGANIZATION_ID,
  type Sandbox,
  SEED,
  sandboxSecret,
  startSandbox,
} from "../../local/sandbox";
import { type Ledger, startLedger } from "../support/ledger";
import { mockSecretStore } from "../support/secret-store";

// An email names a contact through any of its contact persons, not only the primary one the
// list shows: the service reads each candidate the email filter returns and never guesses.

let sandbox: Sandbox;
let secret: ReturnType<typeof mockSecretStore>;
let ledger: Ledger;
let books: ZohoBooksClient;

beforeAll(async () => {
  sandbox = await startSandbox({ contacts: 30 });
  secret = mockSecretStore({});
  ledger = await startLedger();
});
afterAll(() => Promise.all([sandbox.close(), ledger.close()]));
beforeEach(async () => {
  sandbox.reset();
  secret.set(sandboxSecret(sandbox));
  await ledger.reset();
  await ledger.storeToken("zoho/books", sandbox.issueToken(), sandbox.url);
  books = new ZohoBooksClient({ tokens: ledger.tokenStore(secret.sm), timeoutMs: 2000 });
});

const find = (email: string, contactType?: "customer" | "vendor") =>
  findContactIdByEmail(books, email, ORGANIZATION_ID, { contactType });
const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error("expected a failure");
    },
    (e: unknown) => e as ServiceError,
  );
const calls = (endpoint: string) => sandbox.requests().filter((r) => r.endpoint === endpoint);

describe("findContactIdByEmail against the sandbox", () => {
  it("finds a contact by its primary email in one call: its list row shows that email", async () => {
    expect(await find(SEED.inactiveEmail)).toBe(SEED.inactiveIds[1]);
    expect(calls("contacts.list")).toHaveLength(1);
    expect(calls("contact.get")).toHaveLength(0);
  });

  it("finds a contact by a secondary contact person's email, which its list row does not show", async () => {
    expect(await find(SEED.secondaryEmail)).toBe(SEED.secondaryEmailId);
  });

  it("compares exactly after trimming and case folding, primary or not", async () => {
    expect(await find(`  ${SEED.mixedCaseEmail.toUpperCase()} `)).toBe(SEED.mixedCaseId);
    expect(await find(" OPS3@example.COM")).toBe(SEED.mixedCaseSecondaryId);
  });

  it("leaves out a loose match of Zoho's filter (contact 12's xcontact1@…)", async () => {
    expect(await find(SEED.looseEmail)).toBe(SEED.activeId);
    // only the candidate whose row shows another email is read
    expect(calls("contact.get").map((r) => r.url)).toEqual([
      `/books/v3/contacts/${SEED.looseMatchIds[1]}?organization_id=${ORGANIZATION_ID}`,
    ]);
  });

  it("refuses to guess between two contacts with the address, naming both", async () => {
    for (const [email, ids] of [
      [SEED.ambiguousEmail, SEED.ambiguousIds],
      [SEED.customerVendorEmail, [SEED.customerId, SEED.vendorId]],
    ] as const) {
      const error = await failure(find(email));
      expect(error).toMatchObject({
        code: "CONTACT_AMBIGUOUS",
        worker: "park",
        details: { candidates: [...ids] },
      });
      expect(error.message).toContain("contact_type");
    }
  });

  it("chooses between a customer and a vendor sharing an email by contact_type", async () => {
    expect(await find(SEED.customerVendorEmail, "customer")).toBe(SEED.customerId);
    expect(await find(SEED.customerVendorEmail, "vendor")).toBe(SEED.vendorId);
  });

  it("reads only the candidates of the type asked for", async () => {
    await find(SEED.customerVendorEmail, "vendor");
    expect(calls("contact.get").map((r) => r.url)).toEqual([
      `/books/v3/contacts/${SEED.vendorId}?organization_id=${ORGANIZATION_ID}`,
    ]);
  });

  it("is CONTACT_NOT_FOUND for an address no person has, or none of the type asked for", async () => {
    // Each lookup made only when awaited: a rejection is never left without a handler.
    for (const attempt of [
      () => find("nobody@example.com"),
      () => find(SEED.secondaryEmail, "vendor"),
      () => find("contact1@example.co"), // Zoho's filter finds contacts 1 and 12; neither is it
    ]) {
      expect(await attempt().catch((e: ServiceError) => e)).toMatchObject({
        code: "CONTACT_NOT_FOUND",
        details: { candidates: [] },
      });
    }
  });
});

describe("a job naming its contact by email", () => {
  it("activates the contact a secondary person's email names", async () => {
    sandbox.setContactStatus(SEED.secondaryEmailId, "inactive");
    const request = jobToRequest(parseJob({ email: SEED.secondaryEmail }));
    const outcome = await changeContactStatus(
      { books, tokens: { getSecret: async () => ({ organization_id: ORGANIZATION_ID }) as never } },
      request,
    );
    expect(outcome).toMatchObject({ contact_id: SEED.secondaryEmailId, outcome: "activated" });
  });

  it("carries contact_type to the resolution", async () => {
    const request = jobToRequest(
      parseJob({ email: SEED.customerVendorEmail, contact_type: "vendor", action: "deactivate" }),
    );
    expect(request).toMatchObject({ contactType: "vendor" });
    const outcome = await changeContactStatus(
      { books, tokens: { getSecret: async () => ({ organization_id: ORGANIZATION_ID }) as never } },
      request,
    );
    expect(outcome).toMatchObject({ contact_id: SEED.vendorId, outcome: "deactivated" });
  });

  it("refuses a contact_type that is not customer or vendor, or one without an email", () => {
    expect(() => parseJob({ email: "a@example.com", contact_type: "lead" })).toThrow(
      /contact_type must be "customer" or "vendor"/,
    );
    expect(() => parseJob({ contact_id: "1", contact_type: "vendor" })).toThrow(
      /contact_type goes with email/,
    );
  });
});
