import * as z from "zod/mini";
import type { ActivationRequest } from "../activation";
import { ServiceError } from "../errors";
import { zohoIdSchema } from "../ids";

/** A trimmed string of at most `max` characters; `nonEmpty` refuses one that is blank. */
function text(name: string, max: number, nonEmpty = true) {
  return z
    .string({ error: `${name} must be a string` })
    .check(
      z.trim(),
      ...(nonEmpty ? [z.minLength(1, `${name} must not be empty`)] : []),
      z.maxLength(max, `${name} is at most ${max} characters`),
    );
}

/** An object that names what it does not take, instead of zod's generic words. */
function strictError(name: string, shape: string) {
  return (issue: { code?: string; keys?: string[] }) =>
    issue.code === "unrecognized_keys"
      ? `${name} does not take ${(issue.keys ?? []).join(", ")}: it is ${shape}`
      : `${name} must be a JSON object: ${shape}`;
}

/**
 * Why a job was queued, for a job a CRM rule decided (lib/sync, lib/crm): the rule, the CRM
 * record, and the field and value that decided. Kept in the job record, the contact's history
 * and the outcome event, so "why was this customer deactivated?" has an answer.
 */
export const JobReasonSchema = z.strictObject(
  {
    rule: text("reason.rule", 200),
    crm_record_id: text("reason.crm_record_id", 64),
    field: text("reason.field", 100),
    /** may be empty: a rule can decide on a field with no value */
    value: text("reason.value", 200, false),
    source: z.enum(["zoho_crm", "hubspot"], {
      error: 'reason.source must be "zoho_crm" or "hubspot"',
    }),
  },
  {
    error: strictError(
      "reason",
      '{"rule", "crm_record_id", "field", "value", "source": "zoho_crm" | "hubspot"}',
    ),
  },
);

export type JobReason = z.infer<typeof JobReasonSchema>;

/**
 * Checks before the job's change. `outstanding`: a deactivation reads the contact first and is
 * held, not made, while a customer has an outstanding receivable or unused credits, or a vendor
 * an outstanding payable. An activation has nothing to guard and ignores it.
 */
export const JobGuardSchema = z.strictObject(
  { outstanding: z.boolean({ error: "guard.outstanding must be true or false" }) },
  { error: strictError("guard", '{"outstanding": true | false}') },
);

export type JobGuard = z.infer<typeof JobGuardSchema>;

/**
 * One activation job: the body of a queue message, and one item of `POST /activations`.
 * A contact is named by `contact_id`, or by `email` when the sender only knows that (with
 * `contact_type` when a customer and a vendor share the address).
 */
export const ActivationJobSchema = z
  .object(
    {
      contact_id: z.optional(zohoIdSchema("contact_id")),
      email: z.optional(
        z
          .string({ error: "email must be a string" })
          .check(
            z.trim(),
            z.maxLength(254, "email is too long"),
            z.email("email is not an email address"),
          ),
      ),
      contact_type: z.optional(
        z.enum(["customer", "vendor"], { error: 'contact_type must be "customer" or "vendor"' }),
      ),
      organization_id: z.optional(zohoIdSchema("organization_id")),
      action: z._default(
        z.enum(["activate", "deactivate"], { error: 'action must be "activate" or "deactivate"' }),
        "activate",
      ),
      source: z.optional(
        z.string({ error: "source must be a string" }).check(z.maxLength(64, "source is too long")),
      ),
      requested_at: z.optional(z.iso.datetime({ error: "requested_at must be an ISO-8601 time" })),
      /** for a job a CRM rule decided: why */
      reason: z.optional(JobReasonSchema),
      /** checks before a deactivation; none unless asked (the sync asks for rule-driven jobs) */
      guard: z.optional(JobGuardSchema),
      /** given by the service when it accepts the job (a caller's own is replaced) */
      job_id: z.optional(z.uuid({ error: "job_id must be a UUID" })),
    },
    { error: "a job must be a JSON object" },
  )
  .check(
    z.refine((job) => (job.contact_id === undefined) !== (job.email === undefined), {
      error: "name the contact by exactly one of contact_id or email",
    }),
    z.refine((job) => job.contact_type === undefined || job.email !== undefined, {
      error: "contact_type goes with email: it says which contact the email means",
    }),
  );

export type ActivationJob = z.infer<typeof ActivationJobSchema>;

/** Validates a job; the error says every problem at once. */
export function parseJob(value: unknown): ActivationJob {
  const parsed = ActivationJobSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new ServiceError("INVALID_REQUEST", describeIssues(parsed.error.issues));
}

/** A queue message body, which may not even be JSON. */
export function parseJobMessage(body: string): ActivationJob {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    throw new ServiceError("INVALID_REQUEST", "The message body is not JSON.");
  }
  return parseJob(value);
}

export function jobToRequest(job: ActivationJob): ActivationRequest {
  return {
    ...(job.contact_id === undefined ? {} : { contactId: job.contact_id }),
    ...(job.email === undefined ? {} : { email: job.email }),
    ...(job.contact_type === undefined ? {} : { contactType: job.contact_type }),
    ...(job.organization_id === undefined ? {} : { organizationId: job.organization_id }),
    action: job.action,
    ...(job.guard?.outstanding === true ? { guardOutstanding: true } : {}),
  };
}

export function describeIssues(
  issues: ReadonlyArray<{ path: PropertyKey[]; message: string }>,
): string {
  return `${issues.map((issue) => issue.message).join("; ")}.`;
}
