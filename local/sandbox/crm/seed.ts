import type { SandboxContact } from "../types";
import { ACCOUNT_TYPES, type CrmModuleName, SEGMENTS } from "./schema";

/**
 * How a seed CRM account relates to the Books contact of the same number:
 * - "integration": linked by Zoho's CRM integration: the Books contact carries `zcrm_account_id`,
 *   `zcrm_contact_id` and `is_linked_with_zohocrm: true`; the CRM contact has its email.
 * - "field": the account's custom field `Books_Contact_Id` holds the Books contact id; the CRM
 *   contact has its email; nothing on the Books side.
 * - "email": only the CRM contact's `Email` (the Books contact's primary email) relates them.
 * - "none": nothing relates them (another email, no field, no link).
 */
export type CrmLink = "integration" | "field" | "email" | "none";

/** A CRM record as the sandbox keeps it: field API name → value (a lookup holds the target's id). */
export type CrmRecord = Record<string, unknown> & { id: string };

export interface CrmSeedOptions {
  /** accounts (each with one contact); default: as many as Books contacts */
  accounts?: number;
  /** how account n relates to Books contact n; default: every one "integration" */
  linkOf?: (n: number) => CrmLink;
}

/** A mix for tests of matching: every 10th unlinked, every 10th (from 5) by field, every 10th (from 7) by email only. */
export function mixedCrmLinks(n: number): CrmLink {
  if (n % 10 === 0) return "none";
  if (n % 10 === 5) return "field";
  if (n % 10 === 7) return "email";
  return "integration";
}

const ACCOUNT_BASE = "4150868000";
const CONTACT_BASE = "4150869000";
/** The id of the n-th seed account (or contact): 19 digits, increasing, like Zoho's. */
export const crmAccountId = (n: number) => `${ACCOUNT_BASE}${String(n).padStart(9, "0")}`;
export const crmContactId = (n: number) => `${CONTACT_BASE}${String(n).padStart(9, "0")}`;

const CREATED = "2025-06-01T00:00:00+00:00";
const MODIFIED = "2026-01-01T00:00:00+00:00";

export interface CrmSeed {
  records: Record<CrmModuleName, CrmRecord[]>;
  /** Books contact id → the CRM ids it is linked to by the integration */
  bookLinks: Map<string, { zcrm_account_id: string; zcrm_contact_id: string }>;
  links: CrmLink[];
}

/**
 * The CRM organization, the same every time: account n (from 1) is Books contact n's company,
 * related as `linkOf(n)` says; every 4th is a "Former Customer" (the Books seed's inactive ones),
 * every 7th otherwise a "Prospect", the rest "Customer"; every 5th has no Last_Activity_Time,
 * the others one n days before 2026-01-01; Segments: [Retail] on every 3rd, [Wholesale, Online]
 * on the one after it, none on the next. Each account has one contact, its `Account_Name` looking the account up.
 */
export function seedCrm(books: readonly SandboxContact[], options: CrmSeedOptions = {}): CrmSeed {
  const count = options.accounts ?? books.length;
  const linkOf = options.linkOf ?? (() => "integration");
  const accounts: CrmRecord[] = [];
  const contacts: CrmRecord[] = [];
  const bookLinks = new Map<string, { zcrm_account_id: string; zcrm_contact_id: string }>();
  const links: CrmLink[] = [];
  for (let n = 1; n <= count; n++) {
    const book = books[n - 1];
    const link: CrmLink = book ? linkOf(n) : "none";
    links.push(link);
    const accountId = crmAccountId(n);
    const contactId = crmContactId(n);
    let type: string = ACCOUNT_TYPES[0];
    if (n % 4 === 0) type = "Former Customer";
    else if (n % 7 === 0) type = "Prospect";
    accounts.push({
      id: accountId,
      Account_Name: book ? book.company_name : `CRM Account ${n}`,
      Account_Type: type,
      Last_Activity_Time:
        n % 5 === 0
          ? null
          : new Date(Date.parse(MODIFIED) - n * 86_400_000)
              .toISOString()
              .replace(/\.\d{3}Z$/, "+00:00"),
      Created_Time: CREATED,
      Modified_Time: MODIFIED,
      Books_Contact_Id: link === "field" && book ? book.contact_id : null,
      Segments: [[SEGMENTS[0]], [SEGMENTS[1], SEGMENTS[2]], []][n % 3],
    });
    contacts.push({
      id: contactId,
      First_Name: "Contact",
      Last_Name: String(n),
      Full_Name: `Contact ${n}`,
      Email: link === "none" || !book ? `crm-only${n}@example.org` : book.email,
      Account_Name: accountId,
      Last_Activity_Time: null,
      Created_Time: CREATED,
      Modified_Time: MODIFIED,
    });
    if (link === "integration" && book)
      bookLinks.set(book.contact_id, { zcrm_account_id: accountId, zcrm_contact_id: contactId });
  }
  return { records: { Accounts: accounts, Contacts: contacts }, bookLinks, links };
}
