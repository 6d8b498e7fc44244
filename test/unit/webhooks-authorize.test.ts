import { createHash, createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ServiceError } from "../../lib/errors";
import {
  authorizeWebhook,
  MAX_SIGNATURE_AGE_SECONDS,
  REPLAY_MARGIN_SECONDS,
  WebhookUnauthorizedError,
} from "../../lib/webhooks/authorize";
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
  method: "POST",
  url: "https://api.example.com/webhooks/crm",
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

describe("authorizeWebhook with HubSpot's signature v3", () => {
  // The client secret and the body of HubSpot's own examples.
  const CLIENT_SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";
  const NEXT_CLIENT_SECRET = "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz";
  const URL = "https://api.example.com/webhooks/hubspot";
  const batch = Buffer.from(
    '[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM","changeFlag":"NEW","appId":54321}]',
  );
  const source: WebhookSource = { hubspot_client_secrets: [CLIENT_SECRET, NEXT_CLIENT_SECRET] };
  /** well-formed (base64 of 32 bytes), signed by nobody */
  const ANY_SIGNATURE = `${"a".repeat(43)}=`;

  /** HubSpot's documented formula: base64(HMAC-SHA256(secret, method + uri + body + timestamp)). */
  const hubspotSign = (secret: string, uri: string, timestamp: string, raw: Buffer = batch) =>
    createHmac("sha256", secret)
      .update(Buffer.concat([Buffer.from(`POST${uri}`), raw, Buffer.from(timestamp)]))
      .digest("base64");
  /** A delivery to `url`, signed over `signedUri` (HubSpot's decoded form of it) `ageMs` ago. */
  const delivery = (
    options: {
      secret?: string;
      url?: string;
      signedUri?: string;
      ageMs?: number;
      raw?: Buffer;
    } = {},
  ) => {
    const { secret = CLIENT_SECRET, url = URL, ageMs = 0, raw = batch } = options;
    const timestamp = String(NOW - ageMs);
    return request({
      url,
      body: raw,
      headers: {
        "x-hubspot-signature-v3": hubspotSign(secret, options.signedUri ?? url, timestamp, raw),
        "x-hubspot-request-timestamp": timestamp,
      },
    });
  };
  const hubspotRefusal = (req: WebhookRequest, on: WebhookSource = source) => {
    const reason = refusal(on, req);
    // Neither the client secrets nor the signature the sender sent are in what is thrown.
    try {
      authorizeWebhook(on, req, NOW);
    } catch (error) {
      const thrown = JSON.stringify({ ...(error as object), m: (error as Error).message });
      for (const secret of [CLIENT_SECRET, NEXT_CLIENT_SECRET])
        expect(thrown).not.toContain(secret);
      const signature = req.headers["x-hubspot-signature-v3"];
      if (signature) expect(thrown).not.toContain(signature);
    }
    return reason;
  };

  it("accepts a known vector, computed outside this code from HubSpot's formula", () => {
    // python3: base64(hmac.new(secret, ("POST" + URL + body + "1795600800000").encode(), sha256))
    const vector = "sRPPO8F0L51wu1S9wDMFoGWPw/vlA5y2ikEix82qCiE=";
    expect(NOW).toBe(1795600800000);
    expect(hubspotSign(CLIENT_SECRET, URL, String(NOW))).toBe(vector);
    const req = request({
      url: URL,
      body: batch,
      headers: {
        "x-hubspot-signature-v3": vector,
        "x-hubspot-request-timestamp": String(NOW),
      },
    });
    expect(hubspotRefusal(req)).toBe("accepted");
  });

  it("accepts a body with non-ASCII characters, signed as its UTF-8 bytes", () => {
    const raw = Buffer.from('[{"propertyValue":"Jürgen Øster, 東京 🚀"}]', "utf8");
    expect(hubspotRefusal(delivery({ raw }))).toBe("accepted");
    // and not the same text in another encoding
    const latin = Buffer.from('[{"propertyValue":"Jürgen"}]', "latin1");
    const utf8 = Buffer.from('[{"propertyValue":"Jürgen"}]', "utf8");
    expect(hubspotRefusal({ ...delivery({ raw: utf8 }), body: latin })).toBe("wrong signature");
  });

  it("accepts a timestamp exactly 5 minutes old and refuses one 5 minutes and 1 ms old", () => {
    expect(hubspotRefusal(delivery({ ageMs: 300_000 }))).toBe("accepted");
    expect(hubspotRefusal(delivery({ ageMs: 300_001 }))).toBe("expired signature");
  });

  it("refuses a timestamp ahead of our clock by more than 30 s", () => {
    expect(hubspotRefusal(delivery({ ageMs: -30_000 }))).toBe("accepted");
    expect(hubspotRefusal(delivery({ ageMs: -30_001 }))).toBe("future signature");
    expect(hubspotRefusal(delivery({ ageMs: -300_000 }))).toBe("future signature");
  });

  it("accepts the second client secret of a rotation, and refuses a wrong one", () => {
    expect(hubspotRefusal(delivery({ secret: NEXT_CLIENT_SECRET }))).toBe("accepted");
    expect(hubspotRefusal(delivery({ secret: "wrong-client-secret-0123456789" }))).toBe(
      "wrong signature",
    );
  });

  it.each([
    ["no headers at all", {}, "no credentials"],
    [
      "a signature without its timestamp",
      { "x-hubspot-signature-v3": ANY_SIGNATURE },
      "bad timestamp",
    ],
    [
      "a timestamp that is not a number",
      { "x-hubspot-signature-v3": ANY_SIGNATURE, "x-hubspot-request-timestamp": "soon" },
      "bad timestamp",
    ],
    [
      "a timestamp in seconds",
      {
        "x-hubspot-signature-v3": ANY_SIGNATURE,
        "x-hubspot-request-timestamp": String(NOW / 1000),
      },
      "expired signature",
    ],
    [
      "a signature that is not base64 of 32 bytes",
      { "x-hubspot-signature-v3": "ab".repeat(32), "x-hubspot-request-timestamp": String(NOW) },
      "wrong signature",
    ],
    [
      "a timestamp without a signature",
      { "x-hubspot-request-timestamp": String(NOW) },
      "no credentials",
    ],
  ])("refuses %s", (_what, headers, reason) => {
    expect(hubspotRefusal(request({ url: URL, body: batch, headers }))).toBe(reason);
  });

  it("signs the method, the body and the timestamp: any of them changed is refused", () => {
    const req = delivery();
    expect(hubspotRefusal({ ...req, method: "PUT" })).toBe("wrong signature");
    expect(hubspotRefusal({ ...req, body: Buffer.from(`${batch} `) })).toBe("wrong signature");
    const shifted = delivery();
    shifted.headers["x-hubspot-request-timestamp"] = String(NOW - 1);
    expect(hubspotRefusal(shifted)).toBe("wrong signature");
  });

  it("signs the full URL with its query string", () => {
    const withQuery = `${URL}?portalId=62515&token=x`;
    expect(hubspotRefusal(delivery({ url: withQuery }))).toBe("accepted");
    // signed without the query, or for another host or path, it is not this request's
    expect(hubspotRefusal(delivery({ url: withQuery, signedUri: URL }))).toBe("wrong signature");
    expect(
      hubspotRefusal(
        delivery({ url: URL, signedUri: "https://other.example.com/webhooks/hubspot" }),
      ),
    ).toBe("wrong signature");
    expect(
      hubspotRefusal(delivery({ url: URL, signedUri: "https://api.example.com/webhooks/other" })),
    ).toBe("wrong signature");
  });

  it.each([
    ["%3A", ":"],
    ["%2F", "/"],
    ["%3F", "?"],
    ["%40", "@"],
    ["%21", "!"],
    ["%24", "$"],
    ["%27", "'"],
    ["%28", "("],
    ["%29", ")"],
    ["%2A", "*"],
    ["%2C", ","],
    ["%3B", ";"],
  ])("decodes %s in the URL to %s, as HubSpot signs it", (encoded, decoded) => {
    const url = `${URL}?q=a${encoded}b`;
    expect(hubspotRefusal(delivery({ url, signedUri: `${URL}?q=a${decoded}b` }))).toBe("accepted");
    expect(hubspotRefusal(delivery({ url, signedUri: url }))).toBe("wrong signature");
    // percent-encoding is case-insensitive (RFC 3986 §2.1): %3a is %3A
    const lower = `${URL}?q=a${encoded.toLowerCase()}b`;
    expect(hubspotRefusal(delivery({ url: lower, signedUri: `${URL}?q=a${decoded}b` }))).toBe(
      "accepted",
    );
  });

  it("decodes every listed character at once: a second vector computed outside this code", () => {
    // python3, over the decoded URI ".../hubspot?a=b:c/d?e@f!g$h'i(j)k*l,m;n&token=x"
    const vector = "3WKbXY7/Y60K4INnrXOqLjKNuyaoPo8BKpycODQOAmM=";
    const req = request({
      url: `${URL}?a=b%3Ac%2Fd%3Fe%40f%21g%24h%27i%28j%29k%2Al%2Cm%3Bn&token=x`,
      body: batch,
      headers: { "x-hubspot-signature-v3": vector, "x-hubspot-request-timestamp": String(NOW) },
    });
    expect(hubspotRefusal(req)).toBe("accepted");
  });

  it("leaves every other escape as it came: %20, %26, %3D, %2B, and %25 never decoded twice", () => {
    for (const escaped of ["%20", "%26", "%3D", "%2B", "%253A"]) {
      const url = `${URL}?q=a${escaped}b`;
      expect(hubspotRefusal(delivery({ url, signedUri: url }))).toBe("accepted");
    }
  });

  it("keeps the token way: a source with both takes the token when the signature fails", () => {
    const both: WebhookSource = { hubspot_client_secrets: [CLIENT_SECRET], tokens: [TOKEN] };
    const bad = delivery({ secret: "wrong-client-secret-0123456789" });
    expect(hubspotRefusal(bad, both)).toBe("wrong signature");
    expect(hubspotRefusal({ ...bad, query: { token: TOKEN } }, both)).toBe("accepted");
    expect(hubspotRefusal(request({ query: { token: TOKEN } }), both)).toBe("accepted");
  });

  it("ignores HubSpot's headers on a source without client secrets", () => {
    expect(hubspotRefusal(delivery(), { tokens: [TOKEN] })).toBe("no credentials");
    expect(hubspotRefusal(delivery(), { hmac_secrets: [HMAC_KEY] })).toBe("no credentials");
  });
});

describe("what authorizeWebhook says of an accepted request, for replay dedupe", () => {
  const both: WebhookSource = {
    hmac_secrets: [HMAC_KEY, NEXT_HMAC_KEY],
    hubspot_client_secrets: ["hubspot-client-secret-0123456789"],
    tokens: [TOKEN],
  };
  const digestOf = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

  it("a signature: the SHA-256 of its bytes, and its window's end plus the margin, in epoch seconds", () => {
    const req = signed(HMAC_KEY, 120);
    const hex = (req.headers["x-signature"] as string).replace("sha256=", "");
    expect(authorizeWebhook(both, req, NOW)).toEqual({
      by: "signature",
      replayKey: digestOf(Buffer.from(hex, "hex")),
      rememberUntil: NOW / 1000 - 120 + MAX_SIGNATURE_AGE_SECONDS + REPLAY_MARGIN_SECONDS,
    });
    expect(REPLAY_MARGIN_SECONDS).toBeGreaterThan(0);
  });

  it("one key however the signature is written: case, prefix, spaces", () => {
    const req = signed(HMAC_KEY);
    const hex = (req.headers["x-signature"] as string).replace("sha256=", "");
    const keys = [hex, hex.toUpperCase(), `SHA256=${hex}`, ` ${hex} `].map(
      (written) =>
        (
          authorizeWebhook(
            both,
            { ...req, headers: { ...req.headers, "x-signature": written } },
            NOW,
          ) as { replayKey: string }
        ).replayKey,
    );
    expect(new Set(keys).size).toBe(1);
    // another signature (the next key's, over the same body and second) is another key
    const next = authorizeWebhook(both, signed(NEXT_HMAC_KEY), NOW) as { replayKey: string };
    expect(next.replayKey).not.toBe(keys[0]);
  });

  it("HubSpot v3: the window of a millisecond timestamp, rounded up to the second", () => {
    const secret = "hubspot-client-secret-0123456789";
    const at = NOW - 1_500;
    const url = "https://api.example.com/webhooks/hubspot";
    const signature = createHmac("sha256", secret)
      .update(Buffer.concat([Buffer.from(`POST${url}`), body, Buffer.from(String(at))]))
      .digest("base64");
    const req = request({
      url,
      headers: {
        "x-hubspot-signature-v3": signature,
        "x-hubspot-request-timestamp": String(at),
      },
    });
    expect(authorizeWebhook(both, req, NOW)).toEqual({
      by: "signature",
      replayKey: digestOf(Buffer.from(signature, "base64")),
      rememberUntil: Math.ceil(at / 1000) + MAX_SIGNATURE_AGE_SECONDS + REPLAY_MARGIN_SECONDS,
    });
  });

  it("a token, also where a signature failed first, has no window", () => {
    expect(authorizeWebhook(both, request({ query: { token: TOKEN } }), NOW)).toEqual({
      by: "token",
    });
    const req = signed("hmac-wrong-0123456789abcdef");
    expect(authorizeWebhook(both, { ...req, query: { token: TOKEN } }, NOW)).toEqual({
      by: "token",
    });
  });
});
