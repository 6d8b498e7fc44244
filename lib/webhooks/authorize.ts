import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { ServiceError } from "../errors";
import type { WebhookRequest } from "./body";
import type { WebhookSource } from "./config";

/** Signatures older than this are replays. */
export const MAX_SIGNATURE_AGE_SECONDS = 300;
/** How far ahead of our clock a sender's clock may be. */
export const MAX_CLOCK_SKEW_SECONDS = 30;
/**
 * A signature is remembered this long after its window closes: a container whose clock runs a
 * little behind another's still finds it.
 */
export const REPLAY_MARGIN_SECONDS = 60;

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
 * How a webhook was let in. By a signature, it carries `replayKey`, the SHA-256 (hex) of the
 * signature's bytes (never the signature itself, and the same for every way of writing it), and
 * `rememberUntil`, the epoch second until which a delivery of that signature could still pass:
 * its timestamp plus the 5-minute window plus {@link REPLAY_MARGIN_SECONDS}. A token has no window.
 */
export type WebhookAuthorization =
  | { by: "token" }
  | { by: "signature"; replayKey: string; rememberUntil: number };

/** HubSpot's signature v3 and its timestamp (milliseconds), as HubSpot names them. */
export const HUBSPOT_SIGNATURE_HEADER = "x-hubspot-signature-v3";
export const HUBSPOT_TIMESTAMP_HEADER = "x-hubspot-request-timestamp";

/**
 * Checks a webhook request against its source's secrets, or throws
 * {@link WebhookUnauthorizedError}. Accepted:
 * - a token of `tokens` as `Authorization: Bearer …`, in the source's `token_header`, or as
 *   `?token=`;
 * - an HMAC-SHA256 (hex, optionally `sha256=`-prefixed) with a key of `hmac_secrets` of
 *   `<timestamp>.<raw body>`, in `signature_header` (default `x-signature`), the Unix time in
 *   seconds in `timestamp_header` (default `x-signature-timestamp`);
 * - HubSpot's signature v3 with a client secret of `hubspot_client_secrets`
 *   (see {@link checkHubSpotSignature}).
 * A signature older than 5 minutes or more than 30 s ahead is refused. Every secret is tried (two
 * are valid during a rotation) and compared in constant time. A source that also takes tokens
 * takes a valid token where a signature fails.
 *
 * @example
 * const how = authorizeWebhook(config["zoho-crm"], webhookRequest(event)); // throws on a bad token
 * if (how.by === "signature") remember(how.replayKey, how.rememberUntil);
 */
export function authorizeWebhook(
  source: WebhookSource,
  request: WebhookRequest,
  now: number = Date.now(),
): WebhookAuthorization {
  const presented = presentedToken(source, request);
  let refusal: WebhookRefusal | undefined;
  for (const check of [checkSignature, checkHubSpotSignature]) {
    const outcome = check(source, request, now);
    if (typeof outcome === "object") return signatureAuthorization(outcome);
    refusal ??= outcome;
  }
  // A token, where the source also takes one, is still worth a look.
  if (refusal !== undefined && !(source.tokens?.length && presented !== undefined)) {
    throw new WebhookUnauthorizedError(refusal);
  }
  if (presented === undefined) throw new WebhookUnauthorizedError("no credentials");
  if (!anyEqual(source.tokens ?? [], presented, (token) => sha256(token))) {
    throw new WebhookUnauthorizedError("wrong token");
  }
  return { by: "token" };
}

/** A signature that matched: its decoded bytes and the time it was signed at (epoch ms). */
interface AcceptedSignature {
  signature: Buffer;
  signedAtMs: number;
}

/** A signature's verdict; `undefined` when the source takes none of that kind or none was sent. */
type SignatureOutcome = AcceptedSignature | WebhookRefusal | undefined;

/**
 * The digest is of the decoded bytes, not the header: hex in either case, with or without
 * `sha256=`, and base64 whose last character differs only in the bits no decoder reads are one
 * signature, so rewriting it does not make a replay look new.
 */
function signatureAuthorization({
  signature,
  signedAtMs,
}: AcceptedSignature): WebhookAuthorization {
  return {
    by: "signature",
    replayKey: createHash("sha256").update(signature).digest("hex"),
    rememberUntil: Math.ceil(signedAtMs / 1000) + MAX_SIGNATURE_AGE_SECONDS + REPLAY_MARGIN_SECONDS,
  };
}

function presentedToken(source: WebhookSource, request: WebhookRequest): string | undefined {
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? "")?.[1];
  const named = source.token_header ? request.headers[source.token_header] : undefined;
  return bearer ?? named ?? request.query.token;
}

/** The one replay window of every signature: `ageMs` is our clock minus the signed timestamp. */
function staleness(ageMs: number): WebhookRefusal | undefined {
  if (ageMs > MAX_SIGNATURE_AGE_SECONDS * 1000) return "expired signature";
  if (ageMs < -MAX_CLOCK_SKEW_SECONDS * 1000) return "future signature";
  return undefined;
}

function checkSignature(
  source: WebhookSource,
  request: WebhookRequest,
  now: number,
): SignatureOutcome {
  const signature = request.headers[source.signature_header ?? DEFAULT_SIGNATURE_HEADER];
  if (!source.hmac_secrets?.length || signature === undefined) return undefined;
  const timestamp = request.headers[source.timestamp_header ?? DEFAULT_TIMESTAMP_HEADER] ?? "";
  if (!/^\d{1,12}$/.test(timestamp)) return "bad timestamp";
  const stale = staleness(now - Number(timestamp) * 1000);
  if (stale) return stale;
  const hex = signature.trim().replace(/^sha256=/i, "");
  if (!/^[0-9a-f]{64}$/i.test(hex)) return "wrong signature";
  const given = Buffer.from(hex, "hex");
  const signed = Buffer.concat([Buffer.from(`${timestamp}.`), request.body]);
  const ok = anyEqual(source.hmac_secrets, given, (secret) =>
    createHmac("sha256", secret).update(signed).digest(),
  );
  return ok ? { signature: given, signedAtMs: Number(timestamp) * 1000 } : "wrong signature";
}

/**
 * HubSpot's request signature v3, as HubSpot documents it in "Validating requests", section
 * "Validate the v3 request signature":
 * https://developers.hubspot.com/docs/apps/developer-platform/build-apps/authentication/request-validation
 * (for legacy apps: https://developers.hubspot.com/docs/apps/legacy-apps/authentication/validating-requests).
 * `X-HubSpot-Signature-v3`
 * is base64(HMAC-SHA256(the app's client secret, requestMethod + requestUri + requestBody +
 * timestamp)), the timestamp being `X-HubSpot-Request-Timestamp` in milliseconds; a timestamp
 * older than 5 minutes is refused (and, as for every signature here, one more than 30 s ahead).
 * The body is signed as its exact bytes (UTF-8 text is its own UTF-8 encoding), the URI as
 * {@link hubSpotSignedUri} gives it.
 */
function checkHubSpotSignature(
  source: WebhookSource,
  request: WebhookRequest,
  now: number,
): SignatureOutcome {
  const signature = request.headers[HUBSPOT_SIGNATURE_HEADER];
  if (!source.hubspot_client_secrets?.length || signature === undefined) return undefined;
  const timestamp = request.headers[HUBSPOT_TIMESTAMP_HEADER] ?? "";
  if (!/^\d{1,15}$/.test(timestamp)) return "bad timestamp";
  const stale = staleness(now - Number(timestamp));
  if (stale) return stale;
  // base64 of a 32-byte digest: 43 characters and one "=" of padding
  const base64 = signature.trim();
  if (!/^[A-Za-z0-9+/]{43}=$/.test(base64)) return "wrong signature";
  const given = Buffer.from(base64, "base64");
  const signed = Buffer.concat([
    Buffer.from(`${request.method}${hubSpotSignedUri(request.url)}`),
    request.body,
    Buffer.from(timestamp),
  ]);
  const ok = anyEqual(source.hubspot_client_secrets, given, (secret) =>
    createHmac("sha256", secret).update(signed).digest(),
  );
  return ok ? { signature: given, signedAtMs: Number(timestamp) } : "wrong signature";
}

/**
 * HubSpot's table of the escapes it decodes in the request URI before signing it (same page,
 * "Validate the v3 request signature"); every other escape is signed as it came (`%20`, `%26`,
 * `%3D`, `%2B`, `%25`…). The `?` that starts the query string is already a plain `?`.
 */
const HUBSPOT_DECODED: Readonly<Record<string, string>> = {
  "%3A": ":",
  "%2F": "/",
  "%3F": "?",
  "%40": "@",
  "%21": "!",
  "%24": "$",
  "%27": "'",
  "%28": "(",
  "%29": ")",
  "%2A": "*",
  "%2C": ",",
  "%3B": ";",
};

/**
 * The request URI as HubSpot signs it: the URL it called, with the escapes of
 * {@link HUBSPOT_DECODED} decoded, in one pass (`%253A` stays `%253A`), upper- or lower-case hex
 * alike (RFC 3986 §2.1: `%3a` is `%3A`).
 */
export function hubSpotSignedUri(url: string): string {
  return url.replace(
    /%(3A|2F|3F|40|21|24|27|28|29|2A|2C|3B)/gi,
    (escaped) => HUBSPOT_DECODED[escaped.toUpperCase()] ?? escaped,
  );
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
