import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  CreateSecretCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from "@aws-sdk/client-secrets-manager";
import {
  GetQueueAttributesCommand,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import type { APIGatewayProxyStructuredResultV2, SQSBatchResponse } from "aws-lambda";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import type { handler as httpHandler } from "../../functions/http-api";
import { handler } from "../../functions/sqs-worker";
import { AWS_RETRY_AFTER_SECONDS } from "../../lib/errors";
import { type LocalAws, type QueueMessage, startLocalAws } from "../../local/aws";
import { httpEvent, lambdaContext } from "../../local/lambda-events";
import {
  SANDBOX_CREDENTIALS,
  type Sandbox,
  SEED,
  sandboxSecret,
  startSandbox,
} from "../../local/sandbox";
import { createLedgerTable } from "../../local/stack/ledger-table";
import { createQueueWithDlq, queueActivations } from "../../local/stack/queues";
import { deleteSucceeded, toSqsRecord } from "../../local/stack/sqs-records";
import { ledgerOn } from "../support/ledger";

// The fault matrix for the worker, on real SDK clients against the local AWS endpoints (SQS,
// Secrets Manager, and DynamoDB for the ledger) and real HTTP against the sandbox. For each
// fault: where every job ends, how many Zoho calls and grants it cost, and that no job is lost.
// A failed job is sent again by the worker itself (a delay, its attempt count), so a delivery
// reports no batch item failure: the job is back on its queue, waiting.

// These tests read what is logged: the level is set before the logger is built.
vi.hoisted(() => vi.stubEnv("LOG_LEVEL", "DEBUG"));

let aws: LocalAws;
let sandbox: Sandbox;
let sqs: SQSClient;
let sm: SecretsManagerClient;
let ledger: ReturnType<typeof ledgerOn>;
let queueUrl: string;
let dlqUrl: string;
let queueArn: string;
/** the environment of the functions under test */
let ENV: Record<string, string>;
/** the accounts server the secret names: the sandbox's, unless the test takes it down */
let accounts: { server: Server; url: string; down: boolean; requests: number };
/** the test's own PutSecretValue calls (the operator's): the functions make none */
let operatorWrites = 0;
const logLines: string[] = [];
const SECRET_ID = "zoho/faults";
const TABLE = "zoho-contact-status-faults-ledger";

beforeAll(async () => {
  aws = await startLocalAws();
  sandbox = await startSandbox();
  const client = {
    endpoint: aws.url,
    region: "us-east-1",
    credentials: { accessKeyId: "l", secretAccessKey: "l" },
    maxAttempts: 1,
  };
  sqs = new SQSClient(client);
  sm = new SecretsManagerClient(client);
  const dynamo = new DynamoDBClient(client);
  await createLedgerTable(dynamo, TABLE);
  ledger = ledgerOn(dynamo, TABLE);
  await sm.send(new CreateSecretCommand({ Name: SECRET_ID, SecretString: "{}" }));
  const queues = await createQueueWithDlq(sqs, {
    queue: "activation-queue",
    dlq: "activation-dlq",
    visibilityTimeoutSeconds: 60,
  });
  queueUrl = queues.queueUrl;
  dlqUrl = queues.dlqUrl;
  queueArn = (
    await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["QueueArn"] }),
    )
  ).Attributes?.QueueArn as string;
  accounts = await startAccountsServer();
  ENV = {
    AWS_ENDPOINT_URL: aws.url,
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "l",
    AWS_SECRET_ACCESS_KEY: "l",
    AWS_MAX_ATTEMPTS: "1",
    ZOHO_SECRET_ID: SECRET_ID,
    ZOHO_LEDGER_TABLE: TABLE,
    ACTIVATION_DLQ_URL: queues.dlqUrl,
    SECRET_CACHE_TTL_SECONDS: "0",
    ZOHO_HTTP_TIMEOUT_MS: "2000", // no scenario here hangs: a slow CI machine must not turn a call into a timeout
    ZOHO_CONCURRENCY: "1", // one call at a time, so counts of Zoho calls are exact
    ZOHO_MINUTE_SHARE: "100000", // the per-minute budget is not what these rows test
  };
  for (const [name, value] of Object.entries(ENV)) {
    vi.stubEnv(name, value);
  }
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
  vi.unstubAllEnvs();
  accounts.server.closeAllConnections();
  accounts.server.close();
  await sandbox.close();
  await aws.close();
});
beforeEach(async () => {
  // Each scenario is a later day for the container these tests share: what it remembers of an
  // earlier one (a cached token, a daily quota used up) is over. The clock keeps running.
  vi.useFakeTimers({ toFake: ["Date"], shouldAdvanceTime: true });
  vi.setSystemTime(Date.now() + 25 * 3_600_000);
  sandbox.reset();
  accounts.down = false;
  accounts.requests = 0;
  aws.faults.secretsManagerUnavailable = false;
  await ledger.reset();
  // each scenario counts its own jobs, from empty queues
  await Promise.all(
    [queueUrl, dlqUrl].map((url) => sqs.send(new PurgeQueueCommand({ QueueUrl: url }))),
  );
  await storeSecret(sandboxSecret(sandbox));
  // a live token in the ledger, as the refresher keeps it
  await ledger.storeToken(SECRET_ID, sandbox.issueToken(), sandbox.url);
});

const storeSecret = (value: Record<string, unknown>) => {
  operatorWrites++;
  return sm.send(
    new PutSecretValueCommand({ SecretId: SECRET_ID, SecretString: JSON.stringify(value) }),
  );
};

/** The sandbox's accounts server behind a switch: `down` answers 502 as an outage does. */
async function startAccountsServer() {
  const state = { down: false, requests: 0 };
  const server = createServer(async (req, res) => {
    state.requests++;
    if (state.down) {
      res.writeHead(502, { "content-type": "text/html" });
      res.end("<html><body>502 Bad Gateway</body></html>");
      return;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const answer = await fetch(`${sandbox.url}${req.url}`, {
      method: req.method ?? "POST",
      headers: { "content-type": String(req.headers["content-type"] ?? "") },
      ...(chunks.length > 0 ? { body: Buffer.concat(chunks) } : {}),
    });
    res.writeHead(answer.status, { "content-type": answer.headers.get("content-type") ?? "" });
    res.end(await answer.text());
  });
  server.listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return Object.assign(state, { server, url });
}

/** What Lambda's event source mapping does once: receive a batch, invoke, delete what succeeded. */
async function deliver(worker = handler): Promise<{ records: number; failed: number }> {
  const { Messages = [] } = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: queueUrl,
      MaxNumberOfMessages: 10,
      MessageSystemAttributeNames: ["All"],
      MessageAttributeNames: ["All"],
    }),
  );
  const records = Messages.map((m) => toSqsRecord(m, queueArn));
  const response = (await worker(
    { Records: records },
    lambdaContext("worker"),
  )) as SQSBatchResponse;
  await deleteSucceeded(sqs, queueUrl, Messages, response);
  const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
  return { records: records.length, failed: failed.size };
}

/** A function loaded anew (a cold start) in an environment with `changes`, until `restore()`. */
async function coldStart<T>(load: () => Promise<T>, changes: Record<string, string>) {
  for (const [name, value] of Object.entries(changes)) vi.stubEnv(name, value);
  vi.resetModules();
  const loaded = await load();
  const restore = () => {
    for (const name of Object.keys(changes)) vi.stubEnv(name, ENV[name] as string);
  };
  return { ...loaded, restore };
}
const workerWith = (changes: Record<string, string>) =>
  coldStart(() => import("../../functions/sqs-worker"), changes);

/** Delivers what is visible, letting every delay end between deliveries, until the queue is empty. */
async function drain(maxDeliveries = 20): Promise<number> {
  let deliveries = 0;
  while (aws.queueMessages("activation-queue").length > 0 && deliveries < maxDeliveries) {
    aws.endDelays("activation-queue");
    await deliver();
    deliveries++;
  }
  return deliveries;
}

const waitingMessages = (): QueueMessage[] => aws.queueMessages("activation-queue");
const parkedMessages = (): QueueMessage[] => aws.queueMessages("activation-dlq");
const attribute = (message: QueueMessage, name: string) =>
  message.messageAttributes[name]?.StringValue;

/** Where every job is: done (contact active), waiting on the queue, or parked. None is lost. */
function whereJobsAre(ids: string[]) {
  const waiting = new Set(waitingMessages().map((m) => JSON.parse(m.body).contact_id));
  const parked = new Set(parkedMessages().map((m) => JSON.parse(m.body).contact_id));
  const where = {
    done: ids.filter((id) => sandbox.contact(id)?.status === "active").length,
    waiting: ids.filter((id) => waiting.has(id)).length,
    parked: ids.filter((id) => parked.has(id)).length,
  };
  expect(where.done + where.waiting + where.parked, "a job was lost").toBeGreaterThanOrEqual(
    ids.length,
  );
  return where;
}

/** What each waiting job waits for (the code of its last failure). */
const waitingFor = () => waitingMessages().map((m) => attribute(m, "waiting_for"));

/** The attempt count each waiting job carries (what a real failure adds to, a wait does not). */
const waitingAttempts = () => waitingMessages().map((m) => attribute(m, "attempts"));

const booksCalls = () => sandbox.requests().filter((r) => r.endpoint.startsWith("contact")).length;
const tokenCalls = () => sandbox.stats().calls.token ?? 0;

describe("the worker under faults", () => {
  it("Secrets Manager unreachable for a while: jobs wait (AWS_UNAVAILABLE, no attempt spent), none parked, no Zoho call; all done after", async () => {
    const ids = SEED.inactiveIds.slice(0, 5);
    await queueActivations(sqs, queueUrl, ids);
    aws.faults.secretsManagerUnavailable = true;
    expect(await deliver()).toEqual({ records: 5, failed: 0 });
    expect(whereJobsAre(ids)).toEqual({ done: 0, waiting: 5, parked: 0 });
    // sent again after a short wait, attempts unchanged, not yet visible
    expect(waitingAttempts()).toEqual(["0", "0", "0", "0", "0"]);
    expect(waitingFor()).toEqual(Array(5).fill("AWS_UNAVAILABLE"));
    expect(waitingMessages().every((m) => !m.visible)).toBe(true);
    expect(booksCalls()).toBe(0);

    aws.faults.secretsManagerUnavailable = false;
    aws.endDelays("activation-queue");
    expect(await deliver()).toEqual({ records: 5, failed: 0 });
    expect(whereJobsAre(ids)).toEqual({ done: 5, waiting: 0, parked: 0 });
    expect(booksCalls()).toBe(5);
  });

  it("the ledger throttled (ProvisionedThroughputExceededException): jobs wait without spending an attempt, however long it lasts, none parked; all done after", async () => {
    const ids = SEED.inactiveIds.slice(13, 16);
    await queueActivations(sqs, queueUrl, ids);
    aws.faults.dynamoDbThrottled = true;
    try {
      for (let delivery = 0; delivery < 6; delivery++) {
        aws.endDelays("activation-queue");
        expect(await deliver()).toEqual({ records: 3, failed: 0 });
      }
      expect(whereJobsAre(ids)).toEqual({ done: 0, waiting: 3, parked: 0 });
      expect(waitingAttempts()).toEqual(["0", "0", "0"]);
      expect(waitingFor()).toEqual(Array(3).fill("AWS_UNAVAILABLE"));
      expect(booksCalls()).toBe(0);
    } finally {
      aws.faults.dynamoDbThrottled = false;
    }
    await drain();
    expect(whereJobsAre(ids)).toEqual({ done: 3, waiting: 0, parked: 0 });
  });

  it("a ledger table that does not exist: CONFIGURATION_ERROR, retried with attempts counted, parked with its reason at the 5th", async () => {
    const ids = SEED.inactiveIds.slice(16, 17);
    await queueActivations(sqs, queueUrl, ids);
    const worker = await workerWith({ ZOHO_LEDGER_TABLE: "no-such-ledger" });
    try {
      for (let delivery = 1; delivery <= 5; delivery++) {
        aws.endDelays("activation-queue");
        await deliver(worker.handler);
        if (delivery < 5)
          expect([waitingFor(), waitingAttempts()]).toEqual([
            ["CONFIGURATION_ERROR"],
            [String(delivery)],
          ]);
      }
    } finally {
      worker.restore();
    }
    expect(whereJobsAre(ids)).toEqual({ done: 0, waiting: 0, parked: 1 });
    expect(attribute(parkedMessages()[0] as QueueMessage, "error_code")).toBe(
      "CONFIGURATION_ERROR",
    );
  });

  it("a malformed secret: jobs wait, none parked, no Zoho call; all done once it is fixed", async () => {
    const ids = SEED.inactiveIds.slice(5, 8);
    await queueActivations(sqs, queueUrl, ids);
    await storeSecret({ client_id: "only this" });
    expect(await deliver()).toEqual({ records: 3, failed: 0 });
    expect(whereJobsAre(ids)).toEqual({ done: 0, waiting: 3, parked: 0 });
    expect(booksCalls()).toBe(0);

    await storeSecret(sandboxSecret(sandbox));
    aws.endDelays("activation-queue");
    await deliver();
    expect(whereJobsAre(ids)).toEqual({ done: 3, waiting: 0, parked: 0 });
  });

  it("refresh token revoked, then restored: one refused grant per back-off window, jobs wait, all done after", async () => {
    const ids = SEED.inactiveIds.slice(8, 13);
    await queueActivations(sqs, queueUrl, ids);
    await ledger.reset(); // no stored token: a grant is needed
    sandbox.settings.refreshTokenRevoked = true;
    expect(await deliver()).toEqual({ records: 5, failed: 0 });
    expect(whereJobsAre(ids)).toEqual({ done: 0, waiting: 5, parked: 0 });
    expect(tokenCalls()).toBe(1); // not one per job
    expect(booksCalls()).toBe(0);

    // Within Zoho's 10-minute block no container asks again, however often the jobs come back.
    vi.setSystemTime(Date.now() + 5 * 60_000);
    aws.endDelays("activation-queue");
    expect(await deliver()).toEqual({ records: 5, failed: 0 });
    expect(tokenCalls()).toBe(1);
    expect(whereJobsAre(ids)).toEqual({ done: 0, waiting: 5, parked: 0 });

    sandbox.settings.refreshTokenRevoked = false;
    vi.setSystemTime(Date.now() + 5 * 60_000 + 1_000); // the back-off after a refusal ends
    aws.endDelays("activation-queue");
    expect(await deliver()).toEqual({ records: 5, failed: 0 });
    expect(sandbox.stats().grants).toBe(1);
    expect(whereJobsAre(ids)).toEqual({ done: 5, waiting: 0, parked: 0 });
  });

  it("scope removed, then a grant with the scope written to the secret: at most one grant while it lacks it, jobs wait (never parked), all done after", async () => {
    const ids = SEED.inactiveIds.slice(13, 18);
    await queueActivations(sqs, queueUrl, ids);
    sandbox.settings.grantedScopes = ["ZohoBooks.contacts.READ"];
    expect(await deliver()).toEqual({ records: 5, failed: 0 });
    expect(whereJobsAre(ids)).toEqual({ done: 0, waiting: 5, parked: 0 });
    expect(sandbox.stats().grants).toBe(1);
    expect(booksCalls()).toBeLessThanOrEqual(6); // the first job twice (before and after the refresh), then once each

    // The operator fixes the grant and writes the secret: its new version lifts the block.
    sandbox.settings.grantedScopes = [
      "ZohoBooks.contacts.CREATE",
      "ZohoBooks.contacts.UPDATE",
      "ZohoBooks.contacts.READ",
    ];
    await storeSecret(sandboxSecret(sandbox));
    aws.endDelays("activation-queue");
    expect(await deliver()).toEqual({ records: 5, failed: 0 });
    expect(whereJobsAre(ids)).toEqual({ done: 5, waiting: 0, parked: 0 });
    expect(sandbox.stats().grants).toBeLessThanOrEqual(2);
  });

  it("a burst of 5xx: each job tries 3 times at most, waits, and is done after the burst", async () => {
    const ids = SEED.inactiveIds.slice(18, 21);
    await queueActivations(sqs, queueUrl, ids);
    sandbox.settings.failNext = 9;
    expect(await deliver()).toEqual({ records: 3, failed: 0 });
    expect(booksCalls()).toBe(9);
    expect(waitingAttempts()).toEqual(["1", "1", "1"]);
    aws.endDelays("activation-queue");
    await deliver();
    expect(whereJobsAre(ids)).toEqual({ done: 3, waiting: 0, parked: 0 });
  });

  it("Zoho down for good: the 5th failure parks the job with its reason, never before", async () => {
    const ids = SEED.inactiveIds.slice(21, 22);
    await queueActivations(sqs, queueUrl, ids);
    sandbox.settings.failureRate = 1;
    for (let delivery = 1; delivery <= 4; delivery++) {
      aws.endDelays("activation-queue");
      expect(await deliver()).toEqual({ records: 1, failed: 0 });
      expect(whereJobsAre(ids)).toEqual({ done: 0, waiting: 1, parked: 0 });
      expect(waitingAttempts()).toEqual([String(delivery)]);
    }
    aws.endDelays("activation-queue");
    await deliver();
    expect(whereJobsAre(ids)).toEqual({ done: 0, waiting: 0, parked: 1 });
    for (const message of parkedMessages()) {
      expect(attribute(message, "error_code")).toBe("ZOHO_UNAVAILABLE");
      expect(attribute(message, "attempts")).toBe("5");
    }
  });

  it("the daily cap (a compressed day): waiting jobs are sent again, never parked, none lost, all done after the resets", async () => {
    const ids = SEED.inactiveIds.slice(23, 31);
    sandbox.settings.dailyLimit = 3;
    sandbox.settings.dailyWindowSeconds = 120;
    await queueActivations(sqs, queueUrl, ids);
    expect(await deliver()).toEqual({ records: 8, failed: 0 });
    // 3 done within the day; the ledger knows the day is used up, so the others wait for
    // Zoho's reset without a call refused with 45 (at most one, where the report came late)
    expect(whereJobsAre(ids)).toEqual({ done: 3, waiting: 5, parked: 0 });
    expect(sandbox.stats().byCode["45"] ?? 0).toBeLessThanOrEqual(1);
    for (const message of waitingMessages()) {
      expect(attribute(message, "attempts")).toBe("0"); // a wait is never an attempt
      // the first by the day's quota; the organization's others held back with it
      expect(["ZOHO_DAILY_LIMIT", "ZOHO_RATE_LIMITED"]).toContain(
        attribute(message, "waiting_for"),
      );
      expect(message.visible).toBe(false);
    }
    expect(waitingMessages().map((m) => attribute(m, "waiting_for"))).toContain("ZOHO_DAILY_LIMIT");

    // Brought back early, before the reset: they wait again, still without an attempt.
    aws.endDelays("activation-queue");
    expect(await deliver()).toEqual({ records: 5, failed: 0 });
    expect(whereJobsAre(ids)).toEqual({ done: 3, waiting: 5, parked: 0 });
    expect(waitingAttempts().every((attempts) => attempts === "0")).toBe(true);

    for (let day = 0; day < 3 && whereJobsAre(ids).done < ids.length; day++) {
      vi.setSystemTime(Date.now() + (sandbox.dailyQuota().resetSeconds + 1) * 1000);
      await drain(4);
    }
    expect(whereJobsAre(ids)).toEqual({ done: 8, waiting: 0, parked: 0 });
    expect(sandbox.stats().byCode["45"] ?? 0).toBeLessThanOrEqual(3); // at most one a day
  });

  it("Zoho's concurrency limit (1070) while another integration holds its slots: no job parked, none lost, all done", async () => {
    const ids = SEED.inactiveIds.slice(31, 35);
    sandbox.settings.concurrencyLimit = 1;
    sandbox.settings.latencyMs = 100;
    await queueActivations(sqs, queueUrl, ids);
    // the business's other integration calls Zoho directly, a call every 300 ms or so
    const { access_token } = sandbox.issueToken();
    let otherCalling = true;
    const other = (async () => {
      while (otherCalling) {
        await fetch(
          `${sandbox.url}/books/v3/contacts/${SEED.activeId}?organization_id=${SANDBOX_CREDENTIALS.organization_id}`,
          { headers: { Authorization: `Zoho-oauthtoken ${access_token}` } },
        )
          .then((r) => r.text())
          .catch(() => undefined);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    })();
    try {
      await drain(10);
    } finally {
      otherCalling = false;
      await other;
    }
    expect(sandbox.stats().byCode["1070"] ?? 0).toBeGreaterThan(0); // the fault did happen
    expect(whereJobsAre(ids)).toEqual({ done: 4, waiting: 0, parked: 0 });
    expect(parkedMessages()).toEqual([]);
  }, 60_000);

  it("the accounts server down: one grant attempt per back-off window, the secret never written, every job done after recovery", async () => {
    const ids = SEED.inactiveIds.slice(41, 49);
    await storeSecret({ ...sandboxSecret(sandbox), accounts_url: accounts.url });
    await ledger.reset(); // no stored token: a grant is needed
    await queueActivations(sqs, queueUrl, ids);
    const writesBefore = aws.stats().calls["secretsmanager.PutSecretValue"] ?? 0;
    accounts.down = true;
    expect(await deliver()).toEqual({ records: 8, failed: 0 });
    expect(accounts.requests).toBe(1);
    expect(whereJobsAre(ids)).toEqual({ done: 0, waiting: 8, parked: 0 });

    // Brought back within the back-off: no container asks again.
    aws.endDelays("activation-queue");
    await deliver();
    expect(accounts.requests).toBe(1);
    expect(whereJobsAre(ids)).toEqual({ done: 0, waiting: 8, parked: 0 });

    accounts.down = false;
    vi.setSystemTime(Date.now() + 61_000); // the back-off after an outage ends
    await drain(4);
    expect(whereJobsAre(ids)).toEqual({ done: 8, waiting: 0, parked: 0 });
    expect(sandbox.stats().grants).toBe(1);
    expect(accounts.requests).toBe(2);
    expect(aws.stats().calls["secretsmanager.PutSecretValue"] ?? 0).toBe(writesBefore);
  });

  it("the HTTP API: a throttled ledger answers 503 AWS_UNAVAILABLE with Retry-After, a missing table 500 CONFIGURATION_ERROR", async () => {
    const activate = (api: { handler: typeof httpHandler }) =>
      api.handler(
        httpEvent({
          method: "POST",
          path: `/contacts/${SEED.inactiveIds[20]}/active`,
          pathParameters: { contact_id: SEED.inactiveIds[20] as string },
          query: { organization_id: SEED.organizationId },
        }),
        lambdaContext("http-api"),
      ) as Promise<APIGatewayProxyStructuredResultV2>;
    const api = await coldStart(() => import("../../functions/http-api"), {});
    aws.faults.dynamoDbThrottled = true;
    try {
      const throttled = await activate(api);
      expect(throttled.statusCode).toBe(503);
      expect(throttled.headers?.["retry-after"]).toBe(String(AWS_RETRY_AFTER_SECONDS));
      expect(JSON.parse(String(throttled.body)).error.code).toBe("AWS_UNAVAILABLE");
    } finally {
      aws.faults.dynamoDbThrottled = false;
    }
    expect((await activate(api)).statusCode).toBe(200);

    const misconfigured = await coldStart(() => import("../../functions/http-api"), {
      ZOHO_LEDGER_TABLE: "no-such-ledger",
    });
    try {
      const missing = await activate(misconfigured);
      expect(missing.statusCode).toBe(500);
      expect(missing.headers?.["retry-after"]).toBeUndefined();
      expect(JSON.parse(String(missing.body)).error).toMatchObject({
        code: "CONFIGURATION_ERROR",
        message: expect.stringContaining("no-such-ledger"),
      });
    } finally {
      misconfigured.restore();
    }
  });

  it("never logged a client secret, refresh token or access token, and never wrote the secret, whatever happened", async () => {
    const logs = logLines.join("");
    expect(logs).toContain("Job will be retried");
    expect(logs).toContain("Job waits (a quota, an outage or the deadline), attempts unchanged");
    expect(logs).toContain("Granted a new Zoho access token");
    const stored = await ledger.item(SECRET_ID);
    for (const secret of [
      SANDBOX_CREDENTIALS.client_secret,
      SANDBOX_CREDENTIALS.refresh_token,
      stored.access_token,
    ]) {
      expect(secret).toBeTruthy();
      expect(logs).not.toContain(secret);
    }
    expect(aws.stats().calls["secretsmanager.PutSecretValue"]).toBe(operatorWrites);
  });
});
