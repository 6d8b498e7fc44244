import { seedContacts as seedBooksContacts } from "../sandbox/seed";

/** The two object types the sandbox serves. */
export type ObjectType = "contacts" | "companies";
export const OBJECT_TYPES: readonly ObjectType[] = ["contacts", "companies"];

/**
 * A property's type as HubSpot names it. `enumeration` with `multiple` is a multiple-checkbox
 * property: HubSpot stores its values as one string joined by `;`.
 */
export interface PropertyDefinition {
  type: "string" | "number" | "datetime" | "enumeration";
  /** the internal values of an enumeration (per portal; compared case-sensitively) */
  options?: readonly string[];
  multiple?: boolean;
  /** may name a record in `idProperty` (batch read) */
  unique?: boolean;
  /** set by HubSpot itself: a write through the control API may not set it */
  readOnly?: boolean;
}

/** This portal's lifecycle stages (HubSpot's default internal values). */
export const LIFECYCLE_STAGES = [
  "subscriber",
  "lead",
  "marketingqualifiedlead",
  "salesqualifiedlead",
  "opportunity",
  "customer",
  "evangelist",
  "other",
] as const;

/** A custom multiple-checkbox property, to exercise `;`-joined values. */
export const BILLING_SYSTEMS = ["zoho_books", "stripe", "chargebee"] as const;

const shared: Record<string, PropertyDefinition> = {
  hs_object_id: { type: "number", unique: true, readOnly: true },
  createdate: { type: "datetime", readOnly: true },
  lifecyclestage: { type: "enumeration", options: LIFECYCLE_STAGES },
  notes_last_contacted: { type: "datetime" },
  notes_last_updated: { type: "datetime" },
  hs_last_sales_activity_timestamp: { type: "datetime" },
  zoho_books_contact_id: { type: "string", unique: true },
  billing_systems: { type: "enumeration", options: BILLING_SYSTEMS, multiple: true },
};

/** The properties this portal defines, by object type. Any other name is unknown (400 in a filter). */
export const PROPERTIES: Record<ObjectType, Readonly<Record<string, PropertyDefinition>>> = {
  contacts: {
    ...shared,
    email: { type: "string", unique: true },
    firstname: { type: "string" },
    lastname: { type: "string" },
    lastmodifieddate: { type: "datetime", readOnly: true },
  },
  companies: {
    ...shared,
    name: { type: "string" },
    domain: { type: "string" },
    hs_lastmodifieddate: { type: "datetime", readOnly: true },
  },
};

/** Each type's last-modified property (HubSpot names it differently for contacts). */
export const LAST_MODIFIED: Record<ObjectType, string> = {
  contacts: "lastmodifieddate",
  companies: "hs_lastmodifieddate",
};

/** What a search or read answers when it names no `properties` (HubSpot's documented defaults). */
export const DEFAULT_PROPERTIES: Record<ObjectType, readonly string[]> = {
  contacts: ["createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"],
  companies: ["createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"],
};

/** Always answered, even when `properties` names others (as HubSpot's example answers show). */
export const ALWAYS_RETURNED: Record<ObjectType, readonly string[]> = {
  contacts: ["createdate", "hs_object_id", "lastmodifieddate"],
  companies: ["createdate", "hs_lastmodifieddate", "hs_object_id"],
};

/** The portal's private-app token. A test value: nothing real. */
export const HUBSPOT_TOKEN = "pat-na1-5a4d1b2e-0000-4000-8000-00000000c0de";

/** The portal (hub) id, as HubSpot tokens belong to one account. */
export const PORTAL_ID = 20_000_001;

/** The first ids: record i (from 1) of each type has FIRST_ID[type] + i. */
export const FIRST_ID: Record<ObjectType, number> = {
  contacts: 1_000_000,
  companies: 2_000_000,
};

export const SEED_TIME = Date.parse("2026-01-01T00:00:00.000Z");
const MINUTE = 60_000;

/** A stored record: every property value is a string; an absent key is "no value". */
export interface SeedRecord {
  id: string;
  properties: Record<string, string>;
  createdAt: number;
  updatedAt: number;
  archived: boolean;
}

export interface SeedOptions {
  /** records of each type; default 300, the Zoho Books sandbox's default contact count */
  records?: number;
  /**
   * Every n-th record (from the n-th) has no `zoho_books_contact_id` and no Books email or
   * domain: nothing links it to Books. 0 (default): none.
   */
  unlinkedEvery?: number;
  /** Every n-th record keeps its Books email (contacts) but has no `zoho_books_contact_id`. 0: none. */
  emailOnlyEvery?: number;
}

/**
 * The seed, the same every time: record i of each type is linked to the Books sandbox's seed
 * contact i (its id in `zoho_books_contact_id`; for contacts its primary email, first and last
 * name). Every 4th is `lifecyclestage` `other`, the rest `customer`, in line with the Books
 * seed's every-4th-inactive. `notes_last_contacted` is empty on every 3rd,
 * `hs_last_sales_activity_timestamp` on every 5th; `billing_systems` is `zoho_books`, with
 * `;stripe` on every 3rd. Times are minutes after 2026-01-01 and increase with i.
 */
export function seedRecords(type: ObjectType, options: SeedOptions = {}): SeedRecord[] {
  const count = options.records ?? 300;
  const books = seedBooksContacts(count);
  return books.map((contact, index) => {
    const i = index + 1;
    const unlinked = every(i, options.unlinkedEvery);
    const emailOnly = !unlinked && every(i, options.emailOnlyEvery);
    const created = SEED_TIME + i * 1000;
    const modified = SEED_TIME + i * MINUTE;
    const properties: Record<string, string> = {
      hs_object_id: String(FIRST_ID[type] + i),
      createdate: iso(created),
      [LAST_MODIFIED[type]]: iso(modified),
      lifecyclestage: i % 4 === 0 ? "other" : "customer",
    };
    if (i % 3 !== 0) properties.notes_last_contacted = iso(modified - MINUTE / 2);
    if (i % 5 !== 0) properties.hs_last_sales_activity_timestamp = iso(modified - MINUTE / 4);
    if (!unlinked) {
      properties.billing_systems = i % 3 === 0 ? "zoho_books;stripe" : "zoho_books";
      if (!emailOnly) properties.zoho_books_contact_id = contact.contact_id;
    }
    if (type === "contacts") {
      const person = contact.contact_persons[0];
      properties.firstname = person?.first_name ?? "Contact";
      properties.lastname = person?.last_name ?? String(i);
      properties.email = unlinked ? `hubspot-only${i}@example.org` : contact.email;
    } else {
      properties.name = `Company ${i}`;
      properties.domain = unlinked ? `hubspot-only${i}.example.org` : `company${i}.example.com`;
    }
    return {
      id: properties.hs_object_id as string,
      properties,
      createdAt: created,
      updatedAt: modified,
      archived: false,
    };
  });
}

function every(i: number, n: number | undefined): boolean {
  return n !== undefined && n > 0 && i % n === 0;
}

/** HubSpot's datetime form in answers: 2026-01-01T00:00:00.000Z */
export function iso(ms: number): string {
  return new Date(ms).toISOString();
}
