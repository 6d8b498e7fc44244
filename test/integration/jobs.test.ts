import { createHmac } from "node:crypto";
import { ScanCommand } from "@aws-sdk/client-dynamodb";
import { SendMessageBatchCommand, SQSClient } from "@aws-sdk/client-sqs";
import type { APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { httpEvent, lambdaContext } from "../../local/lambda-events";
import { type Sandbox, SEED, startSandbox } from "../../local/sandbox";
import { type LocalWorker, startLocalWorker, TABLE } from "../support/local-worker";

// The loop with a CRM: a job accepted over HTTP or a webhook, carried out by the worker, then
// readable as a job record and in the contact's history, and put on EventBridge. The API and the
// worker run in this process against the sandbox and the local AWS endpoint.

const TOKEN = "whk-test-token-0123456789abcdef";
const HMAC_KEY = "whk-test-hmac-key-0123456789abcdef";
const HUBSPOT_CLIENT_SECRET = "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d";

let sandbox: Sandbox;
let worker: LocalWorker;

beforeAll(async () => {
  sandbox = await startSandbox({ contacts: 40 });
  worker = await startLocalWorker(sandbox, { ZOHO_MINUTE_SHARE: "1000" });
});
afterAll(() => Promise.all([sandbox.close(), worker.close()]));
beforeEach(async () => {
  sandbox.reset();
  await worker.setUp();
  await worker.storeFreshToken();
  await worker.setWebhookSources({
    "zoho-crm": { preset: "zoho-crm", tokens: [TOKEN] },
    hubspot: { preset: "hubspot", tokens: [TOKEN] },
    signed: { hmac_secrets: [HMAC_KEY] },
    "hubspot-app": { preset: "hubspot", hubspot_client_secrets: [HUBSPOT_CLIENT_SECRET] },
  });
});

async function call(input: Parameters<typeof httpEvent>[0]) {
  const { handler } = await import("../../functions/http-api");
  const response = (await handler(
    httpEvent(input),
    lambdaContext("http-api"),
  )) as APIGatewayProxyStructuredResultV2;
  return {
    status: response.statusCode,
    body: JSON.parse(String(response.body ?? "null")),
    headers: response.headers,
  };
}

const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();

describe("job records, history and outcome events", () => {
  it("a worker that is done before the API has answered: the record still ends done, not queued", async () => {
    // The worker carries the job out the moment SQS has it, before acceptJobs goes on: the
    // API's own record of the job must not overwrite the worker's.
    const send = SQSClient.prototype.send;
    let workerRan = false;
    const spy = vi.spyOn(SQSClient.prototype, "send").mockImplementation(async function (
      this: SQSClient,
      ...args: Parameters<typeof send>
    ) {
      const output = await send.apply(this, args);
      if (!workerRan && args[0] instanceof SendMessageBatchCommand) {
        workerRan = true;
        await worker.runOnce();
      }
      return output;
    });
    const id = SEED.inactiveIds[5] as string;
    let jobId: string;
    try {
      const accepted = await call({
        method: "POST",
        path: "/activations",
        body: JSON.stringify({ items: [{ contact_id: id }] }),
      });
      expect(accepted.status).toBe(202);
      [jobId] = accepted.body.job_ids as [string];
    } finally {
      spy.mockRestore();
    }
    expect(workerRan).toBe(true);
    expect((await call({ method: "GET", path: `/activations/${jobId}` })).body).toMatchObject({
      state: "done",
      outcome: "activated",
    });
  });

  it("jobs SQS would not take leave no record behind: the caller was told they were not queued", async () => {
    worker.aws.faults.sqsUnavailable = true;
    let answer: Awaited<ReturnType<typeof call>>;
    try {
      answer = await call({
        method: "POST",
        path: "/activations",
        body: JSON.stringify({ items: [{ contact_id: SEED.inactiveIds[6] }] }),
      });
    } finally {
      worker.aws.faults.sqsUnavailable = false;
    }
    expect(answer.body).toMatchObject({ accepted: 0, job_ids: [], rejected: [{ index: 0 }] });
    const { Items = [] } = await worker.dynamo.send(new ScanCommand({ TableName: TABLE }));
    expect(Items.filter((item) => item.pk?.S?.startsWith("job#"))).toEqual([]);
  });

  it("POST /activations → job ids → queued → worker → done, with attempts, history and an event", async () => {
    const first = SEED.inactiveIds[0] as string;
    const accepted = await call({
      method: "POST",
      path: "/activations",
      body: JSON.stringify({ items: [{ contact_id: first }, { contact_id: SEED.unknownId }] }),
    });
    expect(accepted.status).toBe(202);
    const [doneId, parkedId] = accepted.body.job_ids as [string, string];
    expect((await call({ method: "GET", path: `/activations/${doneId}` })).body).toMatchObject({
      job_id: doneId,
      state: "queued",
      source: "api",
      request: { contact_id: first, action: "activate" },
      attempts: [],
    });
    await worker.runOnce();
    const done = (await call({ method: "GET", path: `/activations/${doneId}` })).body;
    expect(done).toMatchObject({ state: "done", outcome: "activated", contact_id: first });
    expect(done.attempts).toEqual([expect.objectContaining({ result: "activated" })]);
    const parked = (await call({ method: "GET", path: `/activations/${parkedId}` })).body;
    expect(parked).toMatchObject({ state: "parked", error: { code: "CONTACT_NOT_FOUND" } });

    const history = (await call({ method: "GET", path: `/contacts/${first}/history` })).body;
    expect(history.changes).toEqual([
      expect.objectContaining({
        job_id: doneId,
        action: "activate",
        outcome: "activated",
        source: "api",
      }),
    ]);
    expect(worker.aws.events().map((e) => [e.detailType, e.detail.job_id, e.source])).toEqual(
      expect.arrayContaining([
        ["Contact status changed", doneId, "zoho-contact-status"],
        ["Activation parked", parkedId, "zoho-contact-status"],
      ]),
    );
  });

  it("pages a contact's history newest first, and refuses a cursor of another contact", async () => {
    const id = SEED.inactiveIds[0] as string;
    for (const path of [
      `/contacts/${id}/active`,
      `/contacts/${id}/inactive`,
      `/contacts/${id}/active`,
    ]) {
      expect((await call({ method: "POST", path })).status).toBe(200);
    }
    const first = (
      await call({ method: "GET", path: `/contacts/${id}/history`, query: { limit: "2" } })
    ).body;
    expect(first.changes.map((c: { action: string }) => c.action)).toEqual([
      "activate",
      "deactivate",
    ]);
    const second = (
      await call({
        method: "GET",
        path: `/contacts/${id}/history`,
        query: { limit: "2", next: first.next },
      })
    ).body;
    expect(second.changes.map((c: { action: string }) => c.action)).toEqual(["activate"]);
    expect(second.next).toBeUndefined();
    const other = await call({
      method: "GET",
      path: `/contacts/${SEED.activeId}/history`,
      query: { next: first.next },
    });
    expect(other.status).toBe(400);
  });

  it("answers 404 for an unknown job id and 400 for a malformed one", async () => {
    expect(
      (await call({ method: "GET", path: "/activations/3f1e4a7c-0000-4000-8000-000000000000" }))
        .status,
    ).toBe(404);
    expect((await call({ method: "GET", path: "/activations/not-a-job" })).status).toBe(400);
  });
});

describe("POST /webhooks/{source}", () => {
  it("takes a Zoho CRM form-encoded webhook with a bearer token: 202, a job id, and the job is done", async () => {
    const id = SEED.inactiveIds[2] as string;
    const response = await call({
      method: "POST",
      path: "/webhooks/zoho-crm",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        authorization: `Bearer ${TOKEN}`,
      },
      body: form({ contact_id: id, status: "Active", event_id: "crm-1" }),
    });
    expect(response.status).toBe(202);
    await worker.runOnce();
    expect(sandbox.contact(id)?.status).toBe("active");
    expect(
      (await call({ method: "GET", path: `/activations/${response.body.job_id}` })).body,
    ).toMatchObject({
      state: "done",
      source: "zoho-crm",
    });
  });

  it("takes a HubSpot webhook batch: each contact property event a job, other subscriptions skipped", async () => {
    const [a, b] = [SEED.inactiveIds[5] as string, SEED.activeId];
    const response = await call({
      method: "POST",
      path: "/webhooks/hubspot",
      headers: { authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify([
        {
          eventId: 101,
          subscriptionType: "contact.propertyChange",
          objectId: 9,
          propertyName: "zoho_books_activate",
          propertyValue: a,
        },
        {
          eventId: 102,
          subscriptionType: "contact.propertyChange",
          objectId: 8,
          propertyName: "zoho_books_deactivate",
          propertyValue: b,
        },
        { eventId: 103, subscriptionType: "contact.creation", objectId: 7 },
      ]),
    });
    expect(response.status).toBe(202);
    expect(response.body).toMatchObject({ skipped: 1, duplicates: 0, rejected: [] });
    expect(response.body.job_ids).toHaveLength(2);
    await worker.runOnce();
    expect(sandbox.contact(a)?.status).toBe("active");
    expect(sandbox.contact(b)?.status).toBe("inactive");
  });

  it("a delivery repeated by the sender gets the first job id and queues nothing", async () => {
    const send = () =>
      call({
        method: "POST",
        path: "/webhooks/zoho-crm",
        query: { token: TOKEN },
        body: JSON.stringify({
          email: "contact8@example.com",
          status: "inactive",
          event_id: "crm-42",
        }),
      });
    const first = await send();
    const again = await send();
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ job_id: first.body.job_id, duplicates: 1 });
    expect(worker.messages("activation-queue")).toHaveLength(1);
  });

  it("checks an HMAC-SHA256 signature of the raw body with its timestamp, and refuses a replay older than 5 minutes", async () => {
    const body = JSON.stringify({ contact_id: SEED.inactiveIds[3], action: "activate" });
    const signed = (at: number) => ({
      "x-signature-timestamp": String(at),
      "x-signature": createHmac("sha256", HMAC_KEY).update(`${at}.${body}`).digest("hex"),
    });
    const now = Math.floor(Date.now() / 1000);
    expect(
      (await call({ method: "POST", path: "/webhooks/signed", headers: signed(now), body })).status,
    ).toBe(202);
    const replay = await call({
      method: "POST",
      path: "/webhooks/signed",
      headers: signed(now - 301),
      body,
    });
    expect(replay.status).toBe(401);
  });

  it("checks HubSpot's signature v3 over the URL it called, query included, the raw body and the timestamp", async () => {
    const contact = SEED.inactiveIds[6] as string;
    const body = JSON.stringify([
      {
        eventId: 201,
        subscriptionType: "contact.propertyChange",
        objectId: 9,
        propertyName: "zoho_books_activate",
        propertyValue: contact,
        sourceId: "Jürgen's workflow",
      },
    ]);
    // The target URL as HubSpot has it: the API's host (what `httpEvent` puts in
    // requestContext.domainName), the path and the query string.
    const url =
      "https://api-id.execute-api.us-east-1.amazonaws.com/webhooks/hubspot-app?portalId=62515";
    const hubspot = (secret: string, at: number) => ({
      "X-HubSpot-Signature-v3": createHmac("sha256", secret)
        .update(`POST${url}${body}${at}`, "utf8")
        .digest("base64"),
      "X-HubSpot-Request-Timestamp": String(at),
    });
    const deliver = (headers: Record<string, string>) =>
      call({
        method: "POST",
        path: "/webhooks/hubspot-app",
        query: { portalId: "62515" },
        headers,
        body,
      });
    for (const refused of [
      hubspot("wrong-client-secret-0123456789", Date.now()),
      hubspot(HUBSPOT_CLIENT_SECRET, Date.now() - 5 * 60 * 1000 - 1000),
      { authorization: `Bearer ${TOKEN}` },
    ]) {
      const response = await deliver(refused);
      expect(response.status).toBe(401);
      expect(response.body.error.message).toBe("Missing or invalid webhook token or signature.");
      expect(JSON.stringify(response.body)).not.toContain(HUBSPOT_CLIENT_SECRET);
    }
    expect(worker.messages("activation-queue")).toEqual([]);
    const accepted = await deliver(hubspot(HUBSPOT_CLIENT_SECRET, Date.now()));
    expect(accepted.status).toBe(202);
    expect(accepted.body.job_ids).toHaveLength(1);
    await worker.runOnce();
    expect(sandbox.contact(contact)?.status).toBe("active");
  });

  it("refuses a wrong or missing token with 401 and nothing more, queues nothing, and never echoes a secret", async () => {
    for (const headers of [{ authorization: "Bearer wrong" }, {}] as Array<
      Record<string, string>
    >) {
      const response = await call({
        method: "POST",
        path: "/webhooks/zoho-crm",
        headers,
        body: JSON.stringify({ contact_id: SEED.inactiveIds[4], status: "active" }),
      });
      expect(response.status).toBe(401);
      expect(response.body.error.message).toBe("Missing or invalid webhook token or signature.");
      expect(JSON.stringify(response.body)).not.toContain(TOKEN);
    }
    expect(worker.messages("activation-queue")).toEqual([]);
  });

  it("answers 404 for an unknown source and 400 for a payload that maps to nothing, saying what was missing", async () => {
    expect(
      (
        await call({
          method: "POST",
          path: "/webhooks/nobody",
          query: { token: TOKEN },
          body: "{}",
        })
      ).status,
    ).toBe(404);
    const empty = await call({
      method: "POST",
      path: "/webhooks/zoho-crm",
      query: { token: TOKEN },
      body: JSON.stringify({ status: "active" }),
    });
    expect(empty.status).toBe(400);
    expect(empty.body.error.message).toContain("contact");
  });
});
