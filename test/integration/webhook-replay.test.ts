import { createHmac } from "node:crypto";
import { ScanCommand } from "@aws-sdk/client-dynamodb";
import {
  SendMessageBatchCommand,
  type SendMessageBatchCommandInput,
  SQSClient,
} from "@aws-sdk/client-sqs";
import type { APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { getLedgerItem } from "../../lib/ledger/dynamo";
import { ledgerKeys } from "../../lib/ledger/keys";
import { MAX_SIGNATURE_AGE_SECONDS, REPLAY_MARGIN_SECONDS } from "../../lib/webhooks/authorize";
import { type HttpEventInput, httpEvent, lambdaContext } from "../../local/lambda-events";
import { acceptEverything, allAccepted } from "../../local/queue-mock";
import { type Ledger, startLedger } from "../support/ledger";
import { mockSecretStore } from "../support/secret-store";

// A signed webhook (our HMAC or HubSpot's v3) whose payload has no event id, delivered again
// inside its 5-minute window (a proxy's retry, a replay by whoever saw it pass) is one job:
// the signature is remembered, as a SHA-256 of it, until its window closes.

// the handlers' logs are read here (the suite's default is SILENT): every level, debug included
vi.hoisted(() => vi.stubEnv("LOG_LEVEL", "DEBUG"));

const QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/activation-queue";
const HMAC_KEY = "replay-test-hmac-key-0123456789abcdef";
const HUBSPOT_CLIENT_SECRET = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a";
const TOKEN = "replay-test-token-0123456789abcdef";
const HOST = "https://api-id.execute-api.us-east-1.amazonaws.com";
const CONTACT = "460000000000016";
const OTHER_CONTACT = "460000000000017";

let ledger: Ledger;
const sqs = mockClient(SQSClient);
const logLines: string[] = [];

beforeAll(async () => {
  ledger = await startLedger();
  ledger.stubEnv();
  vi.stubEnv("ZOHO_SECRET_ID", "zoho/books");
  vi.stubEnv("WEBHOOK_SECRET_ID", "zoho/webhooks");
  vi.stubEnv("ACTIVATION_QUEUE_URL", QUEUE_URL);
  mockSecretStore({
    signed: { hmac_secrets: [HMAC_KEY] },
    "hubspot-flow": { hubspot_client_secrets: [HUBSPOT_CLIENT_SECRET] },
    "zoho-crm": { preset: "zoho-crm", hmac_secrets: [HMAC_KEY], tokens: [TOKEN] },
  });
  for (const stream of [process.stdout, process.stderr]) {
    vi.spyOn(stream, "write").mockImplementation((chunk) => {
      logLines.push(String(chunk));
      return true;
    });
  }
});
afterAll(async () => {
  vi.restoreAllMocks();
  vi.useRealTimers();
  await ledger.close();
  vi.unstubAllEnvs();
});
beforeEach(async () => {
  vi.useFakeTimers({ toFake: ["Date"], shouldAdvanceTime: true });
  await ledger.reset();
  sqs.reset();
  acceptEverything(sqs);
  logLines.length = 0;
});

type Handler = typeof import("../../functions/http-api").handler;

async function call(input: HttpEventInput, handler?: Handler) {
  const run = handler ?? (await import("../../functions/http-api")).handler;
  const response = (await run(
    httpEvent(input),
    lambdaContext("http-api"),
  )) as APIGatewayProxyStructuredResultV2;
  return {
    status: response.statusCode,
    raw: String(response.body),
    body: JSON.parse(String(response.body)),
  };
}

/** Every job sent to the queue, whatever the batch. */
const queuedJobs = () =>
  sqs
    .commandCalls(SendMessageBatchCommand)
    .flatMap((c) => (c.args[0].input as SendMessageBatchCommandInput).Entries ?? [])
    .map((entry) => JSON.parse(entry.MessageBody ?? "{}") as { job_id: string });

const nowSeconds = () => Math.floor(Date.now() / 1000);

const hmac = (at: number, body: string) =>
  createHmac("sha256", HMAC_KEY).update(`${at}.${body}`).digest("hex");

function hmacDelivery(body: string, at = nowSeconds(), signature = hmac(at, body)) {
  return {
    method: "POST",
    path: "/webhooks/signed",
    pathParameters: { source: "signed" },
    headers: { "x-signature-timestamp": String(at), "x-signature": signature },
    body,
  };
}

const hubspotSignature = (at: number, body: string) =>
  createHmac("sha256", HUBSPOT_CLIENT_SECRET)
    .update(`POST${HOST}/webhooks/hubspot-flow${body}${at}`, "utf8")
    .digest("base64");

function hubspotDelivery(body: string, at = Date.now(), signature = hubspotSignature(at, body)) {
  return {
    method: "POST",
    path: "/webhooks/hubspot-flow",
    pathParameters: { source: "hubspot-flow" },
    headers: { "X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": String(at) },
    body,
  };
}

const activation = (contact = CONTACT) =>
  JSON.stringify({ contact_id: contact, action: "activate" });

describe("a signed webhook with no event id, delivered again inside its window", () => {
  it("HMAC: three more deliveries inside the window are one job, and all four answers carry its job_id", async () => {
    const delivery = hmacDelivery(activation());
    const answers = [];
    for (let i = 0; i < 4; i++) {
      answers.push(await call(delivery));
      vi.setSystemTime(Date.now() + 60_000); // the last one 3 minutes after the first
    }
    const [first, ...replays] = answers as [(typeof answers)[0], ...typeof answers];
    expect(first.status).toBe(202);
    expect(first.body).toMatchObject({ duplicates: 0, job_ids: [first.body.job_id] });
    for (const replay of replays) {
      expect(replay.status).toBe(202);
      expect(replay.body).toEqual({
        job_id: first.body.job_id,
        job_ids: [first.body.job_id],
        duplicates: 1,
        skipped: 0,
        rejected: [],
      });
    }
    expect(queuedJobs().map((job) => job.job_id)).toEqual([first.body.job_id]);
  });

  it("HMAC: after the window the delivery is refused by the timestamp check, and nothing more is queued", async () => {
    const delivery = hmacDelivery(activation());
    const first = await call(delivery);
    expect(first.status).toBe(202);
    vi.setSystemTime(Date.now() + (MAX_SIGNATURE_AGE_SECONDS + 1) * 1000);
    const late = await call(delivery);
    expect(late.status).toBe(401);
    expect(late.body.error.message).toBe("Missing or invalid webhook token or signature.");
    expect(queuedJobs()).toHaveLength(1);
    expect(logLines.join("")).toContain('"reason":"expired signature"');
  });

  it("keeps the signature's item until the window closes, plus the margin, keyed by a digest of it", async () => {
    const at = nowSeconds();
    const body = activation();
    const signature = hmac(at, body);
    expect((await call(hmacDelivery(body, at, signature))).status).toBe(202);
    const { Items = [] } = await ledger.dynamo.send(new ScanCommand({ TableName: ledger.table }));
    const items = Items.filter((item) => item.pk?.S?.startsWith("webhook"));
    expect(items).toHaveLength(1);
    const [item] = items as [(typeof items)[0]];
    expect(Number(item.expires_at?.N)).toBe(at + MAX_SIGNATURE_AGE_SECONDS + REPLAY_MARGIN_SECONDS);
    // Neither the signature nor the key is stored: a SHA-256 of the signature's bytes.
    const stored = JSON.stringify(Items);
    expect(stored).not.toContain(signature);
    expect(stored).not.toContain(HMAC_KEY);
    const digest = (await import("node:crypto"))
      .createHash("sha256")
      .update(Buffer.from(signature, "hex"))
      .digest("hex");
    expect(
      await getLedgerItem(
        ledger.dynamo,
        ledger.table,
        ledgerKeys.webhookSignature("signed", digest, 0),
      ),
    ).toMatchObject({ job_id: { S: expect.any(String) } });
  });

  it("a new signature of the same body (signed again at a later second) is a new delivery", async () => {
    const body = activation();
    const first = await call(hmacDelivery(body, nowSeconds()));
    const resigned = await call(hmacDelivery(body, nowSeconds() + 1));
    expect(resigned.status).toBe(202);
    expect(resigned.body.job_id).not.toBe(first.body.job_id);
    expect(queuedJobs()).toHaveLength(2);
  });

  it("the same signature written otherwise (upper-case hex, sha256= prefix) is still the same delivery", async () => {
    const at = nowSeconds();
    const body = activation();
    const signature = hmac(at, body);
    const first = await call(hmacDelivery(body, at, signature));
    for (const variant of [
      signature.toUpperCase(),
      `sha256=${signature}`,
      ` SHA256=${signature} `,
    ]) {
      const again = await call(hmacDelivery(body, at, variant));
      expect(again.status).toBe(202);
      expect(again.body).toMatchObject({ job_id: first.body.job_id, duplicates: 1 });
    }
    expect(queuedJobs()).toHaveLength(1);
  });

  it("a batch of events without ids: the replay gets each event's first job id, in order", async () => {
    const body = JSON.stringify([
      { contact_id: CONTACT, action: "activate" },
      { contact_id: OTHER_CONTACT, action: "deactivate" },
    ]);
    const delivery = hmacDelivery(body);
    const first = await call(delivery);
    expect(first.body.job_ids).toHaveLength(2);
    const again = await call(delivery);
    expect(again.body).toMatchObject({ job_ids: first.body.job_ids, duplicates: 2 });
    expect(queuedJobs()).toHaveLength(2);
  });

  it("two identical deliveries at once, in one container or in two, make one job", async () => {
    const delivery = hmacDelivery(activation());
    const { handler } = await import("../../functions/http-api");
    vi.resetModules(); // a second container: its own module state, the same ledger
    const other = (await import("../../functions/http-api")).handler;
    expect(other).not.toBe(handler);
    const answers = await Promise.all([
      call(delivery, handler),
      call(delivery, other),
      call(delivery, handler),
      call(delivery, other),
    ]);
    expect(answers.map((answer) => answer.status)).toEqual([202, 202, 202, 202]);
    const jobIds = new Set(answers.map((answer) => answer.body.job_id));
    expect(jobIds.size).toBe(1);
    expect(answers.map((answer) => answer.body.duplicates).sort()).toEqual([0, 1, 1, 1]);
    expect(queuedJobs().map((job) => job.job_id)).toEqual([...jobIds]);
  });

  it("HubSpot v3: a replay inside the window is one job; after the window it is refused", async () => {
    const delivery = hubspotDelivery(activation());
    const first = await call(delivery);
    expect(first.status).toBe(202);
    vi.setSystemTime(Date.now() + 4 * 60_000);
    const again = await call(delivery);
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ job_id: first.body.job_id, duplicates: 1 });
    vi.setSystemTime(Date.now() + 61_000);
    expect((await call(delivery)).status).toBe(401);
    expect(queuedJobs()).toHaveLength(1);
  });

  it("HubSpot v3: the same signature in another base64 spelling (the padding bits) is the same delivery", async () => {
    const at = Date.now();
    const body = activation();
    const signature = hubspotSignature(at, body);
    // 32 bytes are 43 base64 characters and "=": the 43rd carries 2 bits no decoder reads.
    const last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".indexOf(
      signature[42] as string,
    );
    const variant = `${signature.slice(0, 42)}${"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[last ^ 1]}=`;
    expect(variant).not.toBe(signature);
    expect(Buffer.from(variant, "base64")).toEqual(Buffer.from(signature, "base64"));
    const first = await call(hubspotDelivery(body, at, signature));
    const again = await call(hubspotDelivery(body, at, variant));
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ job_id: first.body.job_id, duplicates: 1 });
    expect(queuedJobs()).toHaveLength(1);
  });

  it("a payload with an event id is deduped by the event id, even when signed again later", async () => {
    const body = JSON.stringify({ contact_id: CONTACT, status: "active", event_id: "crm-7" });
    const delivery = (at: number) => ({
      ...hmacDelivery(body, at),
      path: "/webhooks/zoho-crm",
      pathParameters: { source: "zoho-crm" },
    });
    const first = await call(delivery(nowSeconds()));
    const again = await call(delivery(nowSeconds()));
    // The sender's retry, signed anew: another signature, the same event.
    const resigned = await call(delivery(nowSeconds() + 2));
    for (const answer of [again, resigned]) {
      expect(answer.status).toBe(202);
      expect(answer.body).toMatchObject({ job_id: first.body.job_id, duplicates: 1 });
    }
    expect(queuedJobs()).toHaveLength(1);
    expect(
      await getLedgerItem(
        ledger.dynamo,
        ledger.table,
        ledgerKeys.webhookEvent("zoho-crm", "crm-7"),
      ),
    ).toMatchObject({ job_id: { S: first.body.job_id } });
    const { Items = [] } = await ledger.dynamo.send(new ScanCommand({ TableName: ledger.table }));
    expect(Items.filter((item) => item.pk?.S?.startsWith("webhook"))).toHaveLength(1);
  });

  it("a token-authorized delivery has no signature window: without an event id each delivery is a job, as before", async () => {
    const delivery = {
      method: "POST",
      path: "/webhooks/zoho-crm",
      pathParameters: { source: "zoho-crm" },
      headers: { authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ contact_id: CONTACT, status: "active" }),
    };
    const first = await call(delivery);
    const second = await call(delivery);
    expect(second.body.job_id).not.toBe(first.body.job_id);
    expect(queuedJobs()).toHaveLength(2);
  });

  it("a delivery whose job could not be queued gives its signature back: the sender's retry is taken", async () => {
    let down = true; // SQS is down for the first delivery (every resend of it), then takes everything
    sqs.on(SendMessageBatchCommand).callsFake((input: SendMessageBatchCommandInput) => {
      if (!down) return allAccepted(input);
      throw Object.assign(new Error("Service unavailable"), {
        name: "ServiceUnavailable",
        $fault: "server",
      });
    });
    const delivery = hmacDelivery(activation());
    const failed = await call(delivery);
    expect(failed.status).toBeGreaterThanOrEqual(500);
    down = false;
    const retried = await call(delivery);
    expect(retried.status).toBe(202);
    expect(retried.body.duplicates).toBe(0);
    expect(queuedJobs().map((job) => job.job_id)).toContain(retried.body.job_id);
  });

  it("no log line and no answer holds a signature, its digest, the key or the client secret", async () => {
    const at = nowSeconds();
    const body = activation();
    const signature = hmac(at, body);
    const hubspotAt = Date.now();
    const hubspot = hubspotSignature(hubspotAt, body);
    const answers = [
      await call(hmacDelivery(body, at, signature)),
      await call(hmacDelivery(body, at, signature)),
      await call(hubspotDelivery(body, hubspotAt, hubspot)),
      await call(hubspotDelivery(body, hubspotAt, hubspot)),
      await call(hmacDelivery(body, at, "0".repeat(64))), // refused: wrong signature
    ];
    expect(answers.map((answer) => answer.status)).toEqual([202, 202, 202, 202, 401]);
    const logs = logLines.join("");
    // The logs are there, and say what happened: not vacuous.
    expect(logs).toContain('"duplicates":1');
    expect(logs).toContain('"reason":"wrong signature"');
    const { createHash } = await import("node:crypto");
    const digestOf = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");
    const secrets = [
      HMAC_KEY,
      HUBSPOT_CLIENT_SECRET,
      signature,
      hubspot,
      digestOf(Buffer.from(signature, "hex")),
      digestOf(Buffer.from(hubspot, "base64")),
    ];
    for (const text of [logs, ...answers.map((answer) => answer.raw)]) {
      for (const secret of secrets) expect(text).not.toContain(secret);
    }
  });
});
