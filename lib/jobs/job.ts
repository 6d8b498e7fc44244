import * as z from "zod/mini";
import type { ActivationRequest } from "../activation";
import { ServiceError } from "../errors";
import { zohoIdSchema } from "../ids";

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
  };
}

export function describeIssues(
  issues: ReadonlyArray<{ path: PropertyKey[]; message: string }>,
): string {
  return `${issues.map((issue) => issue.message).join("; ")}.`;
}
