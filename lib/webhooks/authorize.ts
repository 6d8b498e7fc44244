import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { ServiceError } from "../errors";
import type { WebhookRequest } from "./body";
import type { WebhookSource } from "./config";

/** Signatures older than this are replays. */
export const MAX_SIGNATURE_AGE_SECONDS = 300;
/** How far ahead of our clock a sender's clock may be. */
export const MAX_CLOCK_SKEW_SECONDS = 30;

export const DEFAULT_SIGNATURE_HEADER = "x-signature";
export const DEFAULT_TIMESTAMP_HEADER = "x-signature-timestamp";

/** Why a webhook was refused, for logs and metrics only: the answer says nothing of it. */
export type WebhookRefusal =
  | "no credentials"
  | "wrong token"
  | "wrong signature"
  | "bad timestamp"
  | "expired signature"
  | "future signature";

/**
 * A webhook without a valid token or signature: 401, and one message whatever the reason, so a
 * caller learns nothing by trying. `reason` is for the log line.
 */
export class WebhookUnauthorizedError extends ServiceError {
  readonly reason: WebhookRefusal;

  constructor(reason: WebhookRefusal) {
    super("UNAUTHORIZED", "Missing or invalid webhook token or signature.");
    this.reason = reason;
  }
}

/**
 * Checks a webhook request against its source's secrets, or throws
 * {@link WebhookUnauthorizedError}. Accepted:
 * - a token of `tokens` as `Authorization: Bearer …`, in the source's `token_header`, or as
 *   `?token=`;
 * - an HMAC-SHA256 (hex, optionally `sha256=`-prefixed) with a key of `hmac_secrets` of
 *   `<timestamp>.<raw body>`, in `signature_header` (default `x-signature`), the Unix time in
 *   seconds in `timestamp_header` (default `x-signature-timestamp`); older than 5 minutes or
 *   more than 30 s ahead is refused.
 * Every secret is tried (two are valid during a rotation) and compared in constant time.
 *
 * @example
 * authorizeWebhook(config["zoho-crm"], webhookRequest(event)); // throws on a bad token
 */
export function authorizeWebhook(
  source: WebhookSource,
  request: WebhookRequest,
  now: number = Date.now(),
): void {
  const signature = request.headers[source.signature_header ?? DEFAULT_SIGNATURE_HEADER];
  const presented = presentedToken(source, request);
  if (source.hmac_secrets?.length && signature !== undefined) {
    const refusal = checkSignature(source, request, signature, now);
    if (refusal === undefined) return;
    // A token, where the source also takes one, is still worth a look.
    if (!(source.tokens?.length && presented !== undefined)) {
      throw new WebhookUnauthorizedError(refusal);
    }
  }
  if (presented === undefined) throw new WebhookUnauthorizedError("no credentials");
  if (!anyEqual(source.tokens ?? [], presented, (token) => sha256(token))) {
    throw new WebhookUnauthorizedError("wrong token");
  }
}

function presentedToken(source: WebhookSource, request: WebhookRequest): string | undefined {
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? "")?.[1];
  const named = source.token_header ? request.headers[source.token_header] : undefined;
  return bearer ?? named ?? request.query.token;
}

function checkSignature(
  source: WebhookSource,
  request: WebhookRequest,
  signature: string,
  now: number,
): WebhookRefusal | undefined {
  const timestamp = request.headers[source.timestamp_header ?? DEFAULT_TIMESTAMP_HEADER] ?? "";
  if (!/^\d{1,12}$/.test(timestamp)) return "bad timestamp";
  const age = now / 1000 - Number(timestamp);
  if (age > MAX_SIGNATURE_AGE_SECONDS) return "expired signature";
  if (age < -MAX_CLOCK_SKEW_SECONDS) return "future signature";
  const hex = signature.trim().replace(/^sha256=/i, "");
  if (!/^[0-9a-f]{64}$/i.test(hex)) return "wrong signature";
  const given = Buffer.from(hex, "hex");
  const signed = Buffer.concat([Buffer.from(`${timestamp}.`), request.body]);
  const ok = anyEqual(source.hmac_secrets ?? [], given, (secret) =>
    createHmac("sha256", secret).update(signed).digest(),
  );
  return ok ? undefined : "wrong signature";
}

/**
 * Whether `presented` equals the digest of one of `secrets`, comparing 32-byte digests with
 * `timingSafeEqual` and trying every secret, so the time taken says nothing about which matched.
 */
function anyEqual(
  secrets: ReadonlyArray<string>,
  presented: string | Buffer,
  digest: (secret: string) => Buffer,
): boolean {
  const given = typeof presented === "string" ? sha256(presented) : presented;
  let matched = false;
  for (const secret of secrets) {
    if (timingSafeEqual(digest(secret), given)) matched = true;
  }
  return matched;
}

const sha256 = (text: string) => createHash("sha256").update(text).digest();
