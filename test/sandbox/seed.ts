import type { SandboxContact } from "./types";

/** The user's organization, and one that exists but the user is not a member of (→ 6024). */
export const ORGANIZATION_ID = "10234695";
export const FOREIGN_ORGANIZATION_ID = "20234695";

/** What a deployment against the sandbox puts in its secret. Test values: nothing real. */
export const SANDBOX_CREDENTIALS = {
  client_id: "1000.SANDBOXCLIENTID",
  client_secret: "sandbox-client-secret",
  refresh_token: "1000.sandbox.refreshtoken",
  organization_id: ORGANIZATION_ID,
} as const;

const FIRST_ID = 460_000_000_000_000;
/** The id of the main organization's n-th seed contact (from 1): 15 digits, increasing. */
export const contactId = (n: number) => String(FIRST_ID + n);

const SEED_TIME = "2026-01-01T00:00:00+0000";

/**
 * The main organization's contacts, the same every time: every 4th inactive, every 3rd a
 * vendor, every 10th (from 7) with a mixed-case email (`Contact7@Example.com`); contacts 5 and 6
 * share an email; contact 12's email contains contact 1's, so a loose email search for contact
 * 1 finds both.
 */
export function seedContacts(count: number): SandboxContact[] {
  return Array.from({ length: count }, (_, i) => {
    const n = i + 1;
    let email = `contact${n}@example.com`;
    if (n % 10 === 7) email = `Contact${n}@Example.com`;
    if (n === 5 || n === 6) email = "shared@example.com";
    if (n === 12) email = "xcontact1@example.com";
    return {
      contact_id: contactId(n),
      contact_name: `Contact ${n}`,
      company_name: `Company ${Math.ceil(n / 2)}`,
      contact_type: n % 3 === 0 ? "vendor" : "customer",
      status: n % 4 === 0 ? "inactive" : "active",
      email,
      last_modified_time: SEED_TIME,
    };
  });
}

/** The foreign organization's own contacts: the main organization's token never sees them. */
export function seedForeignContacts(): SandboxContact[] {
  return [1, 2, 3].map((n) => ({
    contact_id: String(470_000_000_000_000 + n),
    contact_name: `Foreign ${n}`,
    company_name: "Elsewhere Ltd",
    contact_type: "customer",
    status: "active",
    email: `foreign${n}@example.org`,
    last_modified_time: SEED_TIME,
  }));
}

/**
 * Notable seed contacts, for tests and the README's curl session. Everything but `inactiveIds`
 * holds from 20 contacts on; `inactiveIds` needs 240.
 */
export const SEED = {
  organizationId: ORGANIZATION_ID,
  /** contact 1: active, unique email */
  activeId: contactId(1),
  /** contact 4: inactive, unique email */
  inactiveId: contactId(4),
  /** inactive contacts with a unique email: 4, 8, 16, 20, … (12 is left out: its email is odd) */
  inactiveIds: Array.from({ length: 60 }, (_, i) => 4 * (i + 1))
    .filter((n) => n !== 12)
    .map(contactId),
  /** contact 8's */
  inactiveEmail: "contact8@example.com",
  /** contacts 5 and 6 share it */
  ambiguousEmail: "shared@example.com",
  ambiguousIds: [contactId(5), contactId(6)],
  /** contact 1's; a loose email search also finds contact 12 (`xcontact1@example.com`) */
  looseEmail: "contact1@example.com",
  looseMatchIds: [contactId(1), contactId(12)],
  /** contact 7's, as stored: a caller must compare emails case-insensitively */
  mixedCaseEmail: "Contact7@Example.com",
  mixedCaseId: contactId(7),
  /** no contact has it, in any organization */
  unknownId: "460000099999999",
  /** a contact of the foreign organization: "not found" for the main one */
  foreignContactId: "470000000000001",
} as const;
