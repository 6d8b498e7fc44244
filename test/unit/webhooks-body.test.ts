import { describe, expect, it } from "vitest";
import { ServiceError } from "../../lib/errors";
import { MAX_BODY_BYTES } from "../../lib/http";
import { parseWebhookBody, webhookRequest } from "../../lib/webhooks/body";
import { httpEvent } from "../../local/lambda-events";

const FORM = "application/x-www-form-urlencoded";
const post = (body: string | undefined, contentType = "application/json", base64 = false) =>
  httpEvent({
    method: "POST",
    path: "/webhooks/zoho-crm",
    headers: { "Content-Type": contentType },
    ...(body === undefined ? {} : { body, isBase64Encoded: base64 }),
  });

function refused(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ServiceError);
    expect((error as ServiceError).code).toBe("INVALID_REQUEST");
    expect((error as ServiceError).statusCode).toBe(400);
    return (error as ServiceError).message;
  }
  throw new Error("not refused");
}

describe("parseWebhookBody", () => {
  it("parses JSON", () => {
    expect(parseWebhookBody(post('[{"eventId":1}]'))).toEqual([{ eventId: 1 }]);
  });

  it("parses Zoho CRM's form data, charset and all, keeping a repeated field's first value", () => {
    const payload = parseWebhookBody(
      post(
        "email=Ann%40Example.com&status=Inactive&status=Active&Contacts.Id=7",
        `${FORM}; charset=UTF-8`,
      ),
    );
    expect(payload).toEqual({ email: "Ann@Example.com", status: "Inactive", "Contacts.Id": "7" });
  });

  it("keeps a form field named __proto__ as a field", () => {
    const payload = parseWebhookBody(post("__proto__=x&email=a%40b.c", FORM)) as Record<
      string,
      unknown
    >;
    expect(Object.getPrototypeOf(payload)).toBe(null);
    expect(Object.getOwnPropertyDescriptor(payload, "__proto__")?.value).toBe("x");
  });

  it("decodes a base64 body as API Gateway sends it", () => {
    const raw = "email=ann%40example.com&status=active";
    expect(parseWebhookBody(post(Buffer.from(raw).toString("base64"), FORM, true))).toEqual({
      email: "ann@example.com",
      status: "active",
    });
  });

  it("reads the content type whatever the header's case", () => {
    const event = post("a=1", FORM);
    event.headers = { "CONTENT-TYPE": FORM };
    expect(parseWebhookBody(event)).toEqual({ a: "1" });
  });

  it.each([
    ["no body", undefined, "application/json", "needs a body"],
    ["an empty body", "", "application/json", "needs a body"],
    ["a blank body", "  \n", FORM, "needs a body"],
    ["malformed JSON", "{email:", "application/json", "not valid JSON"],
    ["text that is neither", "hello", "text/plain", "not application/x-www-form-urlencoded"],
    ["an empty form", "&&", FORM, "no fields"],
  ])("refuses %s with 400", (_what, body, type, message) => {
    expect(refused(() => parseWebhookBody(post(body, type)))).toContain(message);
  });

  it("refuses a null body (serverless-offline) with 400", () => {
    const event = Object.assign(post(undefined), { body: null });
    expect(refused(() => parseWebhookBody(event))).toContain("needs a body");
  });

  it("refuses a body over 256 KiB before parsing it, counted in bytes after base64 decoding", () => {
    const big = JSON.stringify({ pad: "é".repeat(MAX_BODY_BYTES / 2) });
    expect(refused(() => parseWebhookBody(post(big)))).toContain("larger than");
    const encoded = Buffer.from("x".repeat(MAX_BODY_BYTES + 1)).toString("base64");
    expect(refused(() => webhookRequest(post(encoded, FORM, true)))).toContain("larger than");
    const fits = Buffer.from(`{"a":"${"x".repeat(MAX_BODY_BYTES - 10)}"}`).toString("base64");
    expect(
      webhookRequest(post(fits, "application/json", true)).body.byteLength,
    ).toBeLessThanOrEqual(MAX_BODY_BYTES);
  });
});

describe("webhookRequest", () => {
  it("lower-cases header names and keeps the query and the exact bytes", () => {
    const event = httpEvent({
      method: "POST",
      path: "/webhooks/x",
      query: { token: "t" },
      headers: { "X-Signature": "abc" },
      body: Buffer.from([0xff, 0x00]).toString("base64"),
      isBase64Encoded: true,
    });
    const request = webhookRequest(event);
    expect(request.headers["x-signature"]).toBe("abc");
    expect(request.query).toEqual({ token: "t" });
    expect([...request.body]).toEqual([0xff, 0x00]);
  });

  it("rebuilds the https URL the sender called: host, raw path and raw query, nothing decoded", () => {
    const event = httpEvent({ method: "post", path: "/webhooks/hubspot", body: "[]" });
    event.rawQueryString = "a=b%3Ac&token=x%20y";
    const request = webhookRequest(event);
    expect(request.method).toBe("POST");
    expect(request.url).toBe(
      "https://api-id.execute-api.us-east-1.amazonaws.com/webhooks/hubspot?a=b%3Ac&token=x%20y",
    );
    expect(webhookRequest(httpEvent({ method: "POST", path: "/webhooks/x" })).url).toBe(
      "https://api-id.execute-api.us-east-1.amazonaws.com/webhooks/x",
    );
  });
});
