import type { APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ERROR_TABLE } from "../../lib/errors";
import { httpEvent, lambdaContext } from "../../local/lambda-events";
import { type Sandbox, SEED, startSandbox } from "../../local/sandbox";
import { type LocalWorker, startLocalWorker } from "../support/local-worker";

// Whatever a webhook sender sends: never a 5xx, always a code of the table, and once the worker
// has carried out what was queued, no value but 1 to 25 digits in any URL the sandbox saw.

const TOKEN = "fuzz-token-0123456789abcdef";
const ZOHO_URL =
  /^\/books\/v3\/contacts(\/\d{1,25}(\/(active|inactive))?\?organization_id=\d{1,25}|\?organization_id=\d{1,25}&filter_by=Status\.All&page=\d+&per_page=200&email=[^&]+)$/;

let sandbox: Sandbox;
let worker: LocalWorker;

beforeAll(async () => {
  sandbox = await startSandbox({ contacts: 30, settings: { rateLimitPerMinute: 1_000_000 } });
  worker = await startLocalWorker(sandbox, { ZOHO_MINUTE_SHARE: "1000000" });
  await worker.setUp();
  await worker.storeFreshToken();
  await worker.setWebhookSources({
    "zoho-crm": { preset: "zoho-crm", tokens: [TOKEN] },
    hubspot: { preset: "hubspot", tokens: [TOKEN] },
  });
});
afterAll(() => Promise.all([sandbox.close(), worker.close()]));

const value = fc.oneof(
  fc.string({ unit: "binary", maxLength: 30 }),
  fc.constantFrom(
    "",
    "../1",
    "%2F",
    "12?x=1",
    "１２３",
    "1e3",
    "-1",
    " 1",
    "active",
    "Inactive",
    "null",
  ),
  fc.stringMatching(/^\d{1,30}$/),
  fc.constantFrom(...SEED.inactiveIds.slice(0, 3), SEED.unknownId),
  fc.emailAddress(),
);
const crmFields = fc.record(
  { contact_id: value, email: value, status: value, organization_id: value, event_id: value },
  { requiredKeys: [] },
);
const hubspotEvent = fc.record(
  {
    eventId: fc.oneof(fc.integer(), value),
    subscriptionType: fc.constantFrom("contact.propertyChange", "contact.creation"),
    propertyName: fc.constantFrom("zoho_books_activate", "zoho_books_deactivate", "email"),
    propertyValue: value,
  },
  { requiredKeys: [] },
);
const request = fc.oneof(
  crmFields.map((fields) => ({
    source: "zoho-crm",
    type: "application/x-www-form-urlencoded",
    body: new URLSearchParams(fields as Record<string, string>).toString(),
  })),
  crmFields.map((fields) => ({
    source: "zoho-crm",
    type: "application/json",
    body: JSON.stringify(fields),
  })),
  fc.array(hubspotEvent, { maxLength: 5 }).map((events) => ({
    source: "hubspot",
    type: "application/json",
    body: JSON.stringify(events),
  })),
  fc.record({
    source: fc.oneof(fc.constantFrom("zoho-crm", "hubspot", "nobody", "", "../x"), fc.string()),
    type: fc.constantFrom(
      "application/json",
      "application/x-www-form-urlencoded",
      "text/plain",
      "",
    ),
    body: fc.oneof(fc.string(), fc.json()),
  }),
);

const VALID_EXAMPLES: Array<[{ source: string; type: string; body: string }, boolean]> = [
  [
    {
      source: "zoho-crm",
      type: "application/x-www-form-urlencoded",
      body: new URLSearchParams({ contact_id: SEED.activeId, status: "Active" }).toString(),
    },
    true,
  ],
  [
    {
      source: "hubspot",
      type: "application/json",
      body: JSON.stringify([
        {
          eventId: 1,
          subscriptionType: "contact.propertyChange",
          propertyName: "zoho_books_activate",
          propertyValue: SEED.activeId,
        },
      ]),
    },
    true,
  ],
];

describe("POST /webhooks/{source} under fuzzing", () => {
  it("never answers 5xx, always a known code, and sends Zoho nothing but digits", async () => {
    const { handler } = await import("../../functions/http-api");
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(request, fc.boolean(), async ({ source, type, body }, withToken) => {
        const response = (await handler(
          httpEvent({
            method: "POST",
            path: `/webhooks/${source}`,
            pathParameters: { source },
            headers: {
              "content-type": type,
              ...(withToken ? { authorization: `Bearer ${TOKEN}` } : {}),
            },
            body,
          }),
          lambdaContext("http-api"),
        )) as APIGatewayProxyStructuredResultV2;
        expect(response.statusCode).toBeLessThan(500);
        if (response.statusCode === 202) accepted++;
        if ((response.statusCode ?? 0) >= 400) {
          const { error } = JSON.parse(String(response.body));
          expect(Object.keys(ERROR_TABLE)).toContain(error.code);
          expect(String(response.body)).not.toContain(TOKEN);
        }
      }),
      // Random payloads are rarely valid ones; these always run too, so some jobs reach Zoho
      // whatever the seed (a run with none accepted failed the vacuity check below).
      { numRuns: 150, examples: VALID_EXAMPLES },
    );
    for (let i = 0; i < 40 && (await worker.runOnce("activation", 60_000)).received > 0; i++);
    const urls = sandbox
      .requests()
      .filter((r) => r.endpoint !== "token")
      .map((r) => r.url);
    // The property is not vacuous: webhooks were accepted and their jobs reached Zoho.
    expect(accepted).toBeGreaterThan(0);
    expect(urls.length).toBeGreaterThan(0);
    for (const url of urls) expect(url).toMatch(ZOHO_URL);
  }, 120_000);
});
