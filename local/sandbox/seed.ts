import type { SandboxContact, SandboxContactPerson } from "./types";

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

/**
 * The user's `index`-th organization (from 0, the main one): a user may belong to several, each
 * with its own contacts and its own limits, all reached with the one token.
 */
export const memberOrganizationId = (index: number) => String(Number(ORGANIZATION_ID) + index);
/** The n-th seed contact of the user's `index`-th organization: the main one's are contactId(n). */
export const memberContactId = (index: number, n: number) =>
  String(FIRST_ID + index * 1_000_000_000 + n);

const SEED_TIME = "2026-01-01T00:00:00+0000";

/**
 * Extra (not primary) contact persons, by contact number: contact 2 has a second address of its
 * own; contact 3 one in mixed case; contact 15 (a vendor) has a person with contact 14's (a
 * customer's) address, so that address names two contacts unless the contact type is given.
 */
const SECONDARY_EMAILS: Readonly<Record<number, string>> = {
  2: "accounts2@example.com",
  3: "Ops3@Example.com",
  15: "contact14@example.com",
};

/**
 * The main organization's contacts, the same every time: every 4th inactive (every
 * `inactiveEvery`th: 20 gives 500 of 10,000, the sync benchmark's organization), every 3rd a
 * vendor, every 10th (from 7) with a mixed-case email (`Contact7@Example.com`); contacts 5 and 6
 * share an email; contact 12's email contains contact 1's, so a loose email search for contact
 * 1 finds both. Each has a primary contact person with its email; some have a second person
 * (SECONDARY_EMAILS).
 */
export function seedContacts(count: number, inactiveEvery = 4): SandboxContact[] {
  return Array.from({ length: count }, (_, i) => {
    const n = i + 1;
    let email = `contact${n}@example.com`;
    if (n % 10 === 7) email = `Contact${n}@Example.com`;
    if (n === 5 || n === 6) email = "shared@example.com";
    if (n === 12) email = "xcontact1@example.com";
    const persons = [person(n, 1, "Contact", email, true)];
    const secondary = SECONDARY_EMAILS[n];
    if (secondary) persons.push(person(n, 2, "Accounts", secondary, false));
    return {
      contact_id: contactId(n),
      contact_name: `Contact ${n}`,
      company_name: `Company ${Math.ceil(n / 2)}`,
      contact_type: n % 3 === 0 ? "vendor" : "customer",
      status: n % inactiveEvery === 0 ? "inactive" : "active",
      email,
      last_modified_time: SEED_TIME,
      outstanding_receivable_amount: 0,
      unused_credits_receivable_amount: 0,
      contact_persons: persons,
    };
  });
}

function person(
  n: number,
  k: number,
  firstName: string,
  email: string,
  primary: boolean,
): SandboxContactPerson {
  return {
    contact_person_id: String(480_000_000_000_000 + n * 10 + k),
    first_name: firstName,
    last_name: String(n),
    email,
    is_primary_contact: primary,
  };
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
    outstanding_receivable_amount: 0,
    unused_credits_receivable_amount: 0,
    contact_persons: [person(70 + n, 1, "Foreign", `foreign${n}@example.org`, true)],
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
  /** contact 2's second contact person's only: the list row shows the primary's */
  secondaryEmail: "accounts2@example.com",
  secondaryEmailId: contactId(2),
  /** contact 3's second person's, stored as `Ops3@Example.com` */
  mixedCaseSecondaryEmail: "ops3@example.com",
  mixedCaseSecondaryId: contactId(3),
  /** contact 14's (a customer) primary email and a person of contact 15 (a vendor) */
  customerVendorEmail: "contact14@example.com",
  customerId: contactId(14),
  vendorId: contactId(15),
  /** no contact has it, in any organization */
  unknownId: "460000099999999",
  /** a contact of the foreign organization: "not found" for the main one */
  foreignContactId: "470000000000001",
} as const;
