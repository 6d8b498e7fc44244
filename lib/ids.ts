import { ServiceError } from "./errors";

/** Zoho Books ids (contacts, organizations) are long decimal strings: 1 to 25 digits. */
export const ZOHO_ID_PATTERN = /^\d{1,25}$/;

/**
 * Returns `value` if it is a well-formed Zoho id, else throws `INVALID_REQUEST`. Called before
 * any URL is built, so no other character ever reaches a Zoho URL.
 */
export function assertZohoId(value: unknown, field: "contact_id" | "organization_id"): string {
  if (typeof value === "string" && ZOHO_ID_PATTERN.test(value)) return value;
  throw new ServiceError("INVALID_REQUEST", `${field} must be 1 to 25 decimal digits.`);
}
