import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ServiceError } from "../../lib/errors";
import { authorizeWebhook, WebhookUnauthorizedError } from "../../lib/webhooks/authorize";
import type { WebhookRequest } from "../../lib/webhooks/body";
import type { WebhookSource } from "../../lib/webhooks/config";

const TOKEN = "tok-current-0123456789abcdef";
const NEXT_TOKEN = "tok-next-0123456789abcdef";
const HMAC_KEY = "hmac-current-0123456789abcdef";
const NEXT_HMAC_KEY = "hmac-next-0123456789abcdef";
const SECRETS = [TOKEN, NEXT_TOKEN, HMAC_KEY, NEXT_HMAC_KEY];
const NOW = Date.UTC(2026, 10, 25, 10, 0, 0);
const body = Buffer.from('{"email":"ann@example.com","status":"inactive"}');

const request = (parts: Partial<WebhookRequest> = {}): WebhookRequest => ({
  headers: {},
  query: {},
  body,
  ...parts,
});
const sign = (key: string, timestamp: number, raw: Buffer = body) =>
  createHmac("sha256", key)
    .update(Buffer.concat([Buffer.from(`${timestamp}.`), raw]))
    .digest("hex");
const signed = (key: string, ageSeconds = 0, extra: Record<string, string> = {}) => {
  const timestamp = Math.floor(NOW / 1000) - ageSeconds;
  return request({
    headers: {
      "x-signature": `sha256=${sign(key, timestamp)}`,
      "x-signature-timestamp": String(timestamp),
      ...extra,
    },
  });
};

/** The refusal, checked to say nothing of the reason or of any secret. */
function refusal(source: WebhookSource, req: WebhookRequest): string {
  try {
    authorizeWebhook(source, req, NOW);
  } catch (error) {
    expect(error).toBeInstanceOf(WebhookUnauthorizedError);
    const e = error as WebhookUnauthorizedError;
    expect(e).toBeInstanceOf(ServiceError);
    expect(e.statusCode).toBe(401);
    expect(e.message).toBe("Missing or invalid webhook token or signature.");
    for (const secret of SECRETS)
      expect(JSON.stringify({ ...e, m: e.message })).not.toContain(secret);
    return e.reason;
  }
  return "accepted";
}

describe("authorizeWebhook with shared tokens", () => {
  const source: WebhookSource = { tokens: [TOKEN, NEXT_TOKEN], token_header: "x-webhook-token" };

  it.each([
    ["Authorization: Bearer", { headers: { authorization: `Bearer ${TOKEN}` } }],
    ["a lower-case bearer", { headers: { authorization: `bearer ${TOKEN}` } }],
    ["the operator's header", { headers: { "x-webhook-token": TOKEN } }],
    ["?token=", { query: { token: TOKEN } }],
    ["the next token of a rotation", { query: { token: NEXT_TOKEN } }],
  ])("accepts the token as %s", (_how, parts) => {
    expect(refusal(source, request(parts))).toBe("accepted");
  });

  it.each([
    ["no token at all", {}, "no credentials"],
    ["a wrong token", { query: { token: "tok-wrong-0123456789abcdef" } }, "wrong token"],
    ["a prefix of the token", { query: { token: TOKEN.slice(0, -1) } }, "wrong token"],
    ["the token plus a character", { query: { token: `${TOKEN}x` } }, "wrong token"],
    ["an empty bearer", { headers: { authorization: "Bearer " } }, "no credentials"],
    ["Basic auth", { headers: { authorization: `Basic ${TOKEN}` } }, "no credentials"],
    ["a header the source did not name", { headers: { "x-api-key": TOKEN } }, "no credentials"],
  ])("refuses %s with 401", (_what, parts, reason) => {
    expect(refusal(source, request(parts))).toBe(reason);
  });

  it("refuses a token on a source that only takes signatures", () => {
    expect(refusal({ hmac_secrets: [HMAC_KEY] }, request({ query: { token: TOKEN } }))).toBe(
      "wrong token",
    );
  });
});

describe("authorizeWebhook with HMAC signatures", () => {
  const source: WebhookSource = { hmac_secrets: [HMAC_KEY, NEXT_HMAC_KEY] };

  it("accepts a fresh signature of the raw body, by either secret of a rotation", () => {
    expect(refusal(source, signed(HMAC_KEY))).toBe("accepted");
    expect(refusal(source, signed(NEXT_HMAC_KEY, 299))).toBe("accepted");
  });

  it("accepts a signature without the sha256= prefix, in upper case", () => {
    const req = signed(HMAC_KEY);
    req.headers["x-signature"] = req.headers["x-signature"]?.replace("sha256=", "").toUpperCase();
    expect(refusal(source, req)).toBe("accepted");
  });

  it("uses the headers the operator names", () => {
    const timestamp = Math.floor(NOW / 1000);
    const req = request({
      headers: { "x-crm-sig": sign(HMAC_KEY, timestamp), "x-crm-time": String(timestamp) },
    });
    const named = { ...source, signature_header: "x-crm-sig", timestamp_header: "x-crm-time" };
    expect(refusal(named, req)).toBe("accepted");
  });

  it.each([
    ["a wrong key", () => signed("hmac-wrong-0123456789abcdef"), "wrong signature"],
    ["a replay older than 5 minutes", () => signed(HMAC_KEY, 301), "expired signature"],
    ["a timestamp from the future", () => signed(HMAC_KEY, -31), "future signature"],
    [
      "no timestamp",
      () => request({ headers: { "x-signature": "ab".repeat(32) } }),
      "bad timestamp",
    ],
    ["a timestamp in milliseconds", () => signed(HMAC_KEY, -NOW), "bad timestamp"],
    [
      "a signature that is not hex",
      () => signed(HMAC_KEY, 0, { "x-signature": "zz" }),
      "wrong signature",
    ],
    ["a short signature", () => signed(HMAC_KEY, 0, { "x-signature": "abcd" }), "wrong signature"],
  ])("refuses %s", (_what, make, reason) => {
    expect(refusal(source, make())).toBe(reason);
  });

  it("refuses a signature over another body, or another timestamp", () => {
    const req = signed(HMAC_KEY);
    expect(refusal(source, { ...req, body: Buffer.from(`${body} `) })).toBe("wrong signature");
    const shifted = signed(HMAC_KEY);
    shifted.headers["x-signature-timestamp"] = String(Math.floor(NOW / 1000) - 1);
    expect(refusal(source, shifted)).toBe("wrong signature");
  });

  it("signs the exact bytes, not a re-encoding of them", () => {
    const latin = Buffer.from([0x7b, 0x22, 0xe9, 0x22, 0x7d]); // {"é"} in Latin-1: not UTF-8
    const timestamp = Math.floor(NOW / 1000);
    const req = request({
      body: latin,
      headers: {
        "x-signature": sign(HMAC_KEY, timestamp, latin),
        "x-signature-timestamp": String(timestamp),
      },
    });
    expect(refusal(source, req)).toBe("accepted");
  });

  it("falls back to the token when a source takes both and the signature fails", () => {
    const both: WebhookSource = { hmac_secrets: [HMAC_KEY], tokens: [TOKEN] };
    const req = signed("hmac-wrong-0123456789abcdef");
    expect(refusal(both, req)).toBe("wrong signature");
    expect(refusal(both, { ...req, query: { token: TOKEN } })).toBe("accepted");
  });
});
