import type { WebhookDedupe } from "../jobs/records";
import type { WebhookAuthorization } from "./authorize";

/**
 * What makes the event at `index` of a delivery one job however often it comes: the sender's
 * event id when it has one; else, when a signature with a timestamp let the delivery in, that
 * signature (as its digest) and the event's place, until the signature's window closes; else
 * nothing (a token has no window: without an event id every delivery is a job).
 *
 * @example
 * deliveryDedupe(authorizeWebhook(source, request), job.event_id, index);
 * // { signatureDigest: "9f…", index: 0, until: 1796000360 }
 */
export function deliveryDedupe(
  authorization: WebhookAuthorization,
  eventId: string | undefined,
  index: number,
): WebhookDedupe | undefined {
  if (eventId !== undefined) return { eventId };
  if (authorization.by !== "signature") return undefined;
  return { signatureDigest: authorization.replayKey, index, until: authorization.rememberUntil };
}
