import * as z from "zod/mini";
import { ServiceError } from "./errors";

/** Zoho Books ids (contacts, organizations) are long decimal strings: 1 to 25 digits. */
export const ZOHO_ID_PATTERN = /^\d{1,25}$/;

/**
 * Returns `value` if it is a well-formed Zoho id, else throws `INVALID_REQUEST`. Called before
 * any URL is built, so no other character ever reaches a Zoho URL.
 */
export function assertZohoId(
  value: unknown,
  field: "contact_id" | "organization_id" | "zcrm_account_id" | "zcrm_contact_id",
): string {
  if (typeof value === "string" && ZOHO_ID_PATTERN.test(value)) return value;
  throw new ServiceError("INVALID_REQUEST", `${field} must be 1 to 25 decimal digits.`);
}

/**
 * The same check as a zod schema, for the documents that carry ids (jobs, the sync's source and
 * input, the secrets). `field` starts the message where the path does not name the field.
 */
export function zohoIdSchema(field?: "contact_id" | "organization_id") {
  const subject = field === undefined ? "" : `${field} `;
  return z
    .string({ error: `${subject}must be a string of 1 to 25 decimal digits` })
    .check(z.regex(ZOHO_ID_PATTERN, `${subject}must be 1 to 25 decimal digits`));
}
