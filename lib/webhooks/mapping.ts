import { ServiceError, toServiceError } from "../errors";
import { type ActivationJob, parseJob } from "../jobs/job";
import type { NamedWebhookSource, WebhookMapping } from "./config";

/** The sender's values of a status (case-insensitive) when the source names none. */
export const DEFAULT_ACTIONS: Readonly<Record<string, "activate" | "deactivate">> = {
  active: "activate",
  activate: "activate",
  inactive: "deactivate",
  deactivate: "deactivate",
};

/**
 * Where the usual senders put things; a source's `mapping` overrides field by field.
 *
 * - `zoho-crm`: a Zoho CRM workflow webhook, form-encoded (its default) or JSON, whose
 *   parameters the operator names `email` (or `contact_id`), `status`, and optionally
 *   `organization_id` and `event_id`.
 * - `hubspot`: the HubSpot Webhooks API's JSON array of events. An event carries one changed
 *   property and HubSpot's own `objectId`, which Books does not know: the contact is the
 *   `propertyValue` of a `zoho_books_activate` or `zoho_books_deactivate` contact property (a
 *   HubSpot workflow copies the Books contact id into it), and the property's name says what to do.
 */
export const PRESETS: Readonly<Record<"default" | "zoho-crm" | "hubspot", WebhookMapping>> = {
  default: {
    contact_id: "contact_id",
    email: "email",
    action: "action",
    organization_id: "organization_id",
    event_id: "event_id",
  },
  "zoho-crm": {
    contact_id: "contact_id",
    email: "email",
    action: "status",
    organization_id: "organization_id",
    event_id: "event_id",
  },
  hubspot: {
    event_id: "eventId",
    contact_id: "propertyValue",
    action: "propertyName",
    actions: { zoho_books_activate: "activate", zoho_books_deactivate: "deactivate" },
    where: {
      subscriptionType: ["contact.propertyChange", "object.propertyChange"],
      propertyName: ["zoho_books_activate", "zoho_books_deactivate"],
    },
  },
};

/** A job a webhook asks for: an activation job, and the sender's event id for dedupe. */
export type WebhookJob = ActivationJob & { source: string; event_id?: string };

export interface MappedWebhook {
  jobs: Array<{ index: number; job: WebhookJob }>;
  /** events that matched the source's `where` but not a valid job, by position */
  rejected: Array<{ index: number; error: ServiceError }>;
  /** events the source's `where` leaves out (other subscriptions of the same sender) */
  skipped: number;
}

/**
 * Turns a webhook payload into activation jobs, by the source's mapping (its `preset`, then its
 * own `mapping` field by field). Paths are dot paths (`properties.email`, `events.0.id`); a key
 * that itself holds dots (`Contacts.Email`, a form field) is found as it is. A payload that maps
 * to no valid job is `INVALID_REQUEST` saying what was missing.
 *
 * @example
 * const source = webhookSource(config, "zoho-crm");
 * mapWebhookPayload(source, { email: "ann@example.com", status: "Inactive" });
 * // { jobs: [{ index: 0, job: { email: "ann@example.com", action: "deactivate", source: "zoho-crm" } }], … }
 */
export function mapWebhookPayload(source: NamedWebhookSource, payload: unknown): MappedWebhook {
  const mapping: WebhookMapping = { ...PRESETS[source.preset ?? "default"], ...source.mapping };
  const listed = mapping.events ? valueAt(payload, mapping.events) : payload;
  if (mapping.events && !Array.isArray(listed)) {
    throw new ServiceError(
      "INVALID_REQUEST",
      `The payload has no list of events at ${mapping.events}.`,
    );
  }
  const events = Array.isArray(listed) ? listed : [listed];
  const result: MappedWebhook = { jobs: [], rejected: [], skipped: 0 };
  events.forEach((event, index) => {
    if (!matches(event, mapping.where)) {
      result.skipped++;
      return;
    }
    try {
      result.jobs.push({ index, job: eventToJob(source, mapping, event) });
    } catch (error) {
      result.rejected.push({ index, error: toServiceError(error) });
    }
  });
  if (result.jobs.length > 0) return result;
  const [first] = result.rejected;
  if (first === undefined) {
    throw new ServiceError(
      "INVALID_REQUEST",
      events.length === 0
        ? "The payload holds no events."
        : `No event of the payload is one this source handles (where: ${Object.keys(mapping.where ?? {}).join(", ")}).`,
    );
  }
  const at = events.length > 1 || Array.isArray(listed) ? `Event ${first.index}: ` : "";
  throw new ServiceError("INVALID_REQUEST", `${at}${first.error.message}`);
}

function eventToJob(
  source: NamedWebhookSource,
  mapping: WebhookMapping,
  event: unknown,
): WebhookJob {
  const contactId = scalar(event, mapping.contact_id);
  const email = contactId === undefined ? scalar(event, mapping.email) : undefined;
  if (contactId === undefined && email === undefined) {
    throw new ServiceError(
      "INVALID_REQUEST",
      `Found no contact: nothing at ${describe(mapping.contact_id)} (contact_id) or ${describe(mapping.email)} (email).`,
    );
  }
  const wanted = scalar(event, mapping.action);
  if (wanted === undefined) {
    throw new ServiceError("INVALID_REQUEST", `Found no status at ${describe(mapping.action)}.`);
  }
  const actions = lowerKeys(mapping.actions ?? DEFAULT_ACTIONS);
  const key = wanted.toLowerCase();
  const action = Object.hasOwn(actions, key) ? actions[key] : undefined;
  if (action === undefined) {
    throw new ServiceError(
      "INVALID_REQUEST",
      `The status at ${describe(mapping.action)} is not one of ${Object.keys(actions).join(", ")}.`,
    );
  }
  const organizationId = scalar(event, mapping.organization_id) ?? source.organization_id;
  const eventId = scalar(event, mapping.event_id);
  const job = parseJob({
    ...(contactId === undefined ? { email } : { contact_id: contactId }),
    ...(organizationId === undefined ? {} : { organization_id: organizationId }),
    action,
    source: source.name,
  });
  if (eventId !== undefined && eventId.length > 200) {
    throw new ServiceError("INVALID_REQUEST", `The event id at ${mapping.event_id} is too long.`);
  }
  return { ...job, source: source.name, ...(eventId === undefined ? {} : { event_id: eventId }) };
}

/** The value at a dot path: a string, or a number written as digits; blank is absent. */
function scalar(event: unknown, path: string | undefined): string | undefined {
  if (!path) return undefined;
  const value = valueAt(event, path);
  if (typeof value === "string") return value.trim() === "" ? undefined : value.trim();
  if (typeof value === "number" && Number.isSafeInteger(value)) return String(value);
  return undefined;
}

function valueAt(value: unknown, path: string): unknown {
  if (path === "") return value;
  if (isRecord(value) && Object.hasOwn(value, path)) return value[path];
  const dot = path.indexOf(".");
  if (dot < 0) return undefined;
  const head = path.slice(0, dot);
  return isRecord(value) && Object.hasOwn(value, head)
    ? valueAt(value[head], path.slice(dot + 1))
    : undefined;
}

function matches(event: unknown, where: WebhookMapping["where"]): boolean {
  return Object.entries(where ?? {}).every(([path, wanted]) => {
    const value = scalar(event, path);
    return value !== undefined && (Array.isArray(wanted) ? wanted : [wanted]).includes(value);
  });
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null;

const lowerKeys = <T>(record: Readonly<Record<string, T>>) =>
  Object.fromEntries(Object.entries(record).map(([key, value]) => [key.toLowerCase(), value]));

const describe = (path: string | undefined) => (path ? `"${path}"` : "(not mapped)");
