/** A Books contact as the sandbox keeps it. */
export interface SandboxContact {
  contact_id: string;
  contact_name: string;
  company_name: string;
  contact_type: "customer" | "vendor";
  status: "active" | "inactive";
  email: string;
  last_modified_time: string;
}

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
export const contactId = (n: number) => String(FIRST_ID + n);

/**
 * The main organization's contacts, the same every time: every 4th inactive, every 3rd a
 * vendor, every 10th (from 7) with a mixed-case email; contacts 5 and 6 share an email; contact
 * 12's email contains contact 1's, so a loose email search for contact 1 finds both.
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
      last_modified_time: "2026-01-01T00:00:00+0000",
    };
  });
}

export function seedForeignContacts(): SandboxContact[] {
  return [1, 2, 3].map((n) => ({
    contact_id: String(470_000_000_000_000 + n),
    contact_name: `Foreign ${n}`,
    company_name: "Elsewhere Ltd",
    contact_type: "customer",
    status: "active",
    email: `foreign${n}@example.org`,
    last_modified_time: "2026-01-01T00:00:00+0000",
  }));
}

/** Notable seed contacts, for tests and the README's curl session (valid for 20+ contacts). */
export const SEED = {
  organizationId: ORGANIZATION_ID,
  activeId: contactId(1),
  inactiveId: contactId(4),
  /** inactive contacts with a unique email: 4, 8, 16, 20, … (12 is left out: its email is odd) */
  inactiveIds: Array.from({ length: 60 }, (_, i) => 4 * (i + 1))
    .filter((n) => n !== 12)
    .map(contactId),
  inactiveEmail: "contact8@example.com",
  ambiguousEmail: "shared@example.com",
  unknownId: "460000099999999",
} as const;
