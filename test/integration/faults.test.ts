import {
  CreateSecretCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from "@aws-sdk/client-secrets-manager";
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import type { SQSBatchResponse } from "aws-lambda";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { handler } from "../../functions/sqs-worker";
import { logger } from "../../lib/observability";
import { type LocalAws, startLocalAws } from "../local-aws";
import { queueActivations } from "../local-stack/queues";
import { deleteSucceeded, toSqsRecord } from "../local-stack/sqs-records";
import { SANDBOX_CREDENTIALS, type Sandbox, SEED, sandboxSecret, startSandbox } from "../sandbox";
import { lambdaContext } from "../support/events";

// The fault matrix for the worker, on real SDK clients against the local AWS endpoints and real
// HTTP against the sandbox. For each fault: where every job ends, and how many Zoho calls it cost.

let aws: LocalAws;
let sandbox: Sandbox;
let sqs: SQSClient;
let sm: SecretsManagerClient;
let queueUrl: string;
let queueArn: string;
const logLines: string[] = [];
const SECRET_ID = "zoho/faults";

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
  await sm.send(new CreateSecretCommand({ Name: SECRET_ID, SecretString: "{}" }));
  const dlqUrl = (await sqs.send(new CreateQueueCommand({ QueueName: "activation-dlq" })))
    .QueueUrl as string;
  queueUrl = (
    await sqs.send(
      new CreateQueueCommand({
        QueueName: "activation-queue",
        Attributes: { VisibilityTimeout: "60" },
      }),
    )
  ).QueueUrl as string;
  queueArn = (
    await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["QueueArn"] }),
    )
  ).Attributes?.QueueArn as string;
  for (const [name, value] of Object.entries({
    AWS_ENDPOINT_URL: aws.url,
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "l",
    AWS_SECRET_ACCESS_KEY: "l",
    AWS_MAX_ATTEMPTS: "1",
    ZOHO_SECRET_ID: SECRET_ID,
    ACTIVATION_DLQ_URL: dlqUrl,
    SECRET_CACHE_TTL_SECONDS: "0",
    ZOHO_HTTP_TIMEOUT_MS: "300",
    WORKER_CONCURRENCY: "1",
    ZOHO_RATE_LIMIT_PER_MINUTE: "100000",
  })) {
    vi.stubEnv(name, value);
  }
  logger.setLogLevel("DEBUG");
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
  await sandbox.close();
  await aws.close();
});
beforeEach(async () => {
  // Each scenario is a later moment for the container these tests share: earlier back-offs are over.
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(Date.now() + 10 * 60_000);
  sandbox.reset();
  aws.faults.secretsManagerUnavailable = false;
  await storeSecret(sandboxSecret(sandbox, { fresh: true }));
});

const storeSecret = (value: Record<string, unknown>) =>
  sm.send(new PutSecretValueCommand({ SecretId: SECRET_ID, SecretString: JSON.stringify(value) }));

/** What Lambda's event source mapping does once: receive a batch, invoke, delete what succeeded. */
async function deliver(): Promise<{ records: number; failed: number }> {
  const { Messages = [] } = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: queueUrl,
      MaxNumberOfMessages: 10,
      MessageSystemAttributeNames: ["All"],
    }),
  );
  const records = Messages.map((m) => toSqsRecord(m, queueArn));
  const response = (await handler(
    { Records: records },
    lambdaContext("worker"),
  )) as SQSBatchResponse;
  await deleteSucceeded(sqs, queueUrl, Messages, response);
  const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
  return { records: records.length, failed: failed.size };
}

/** Where every job is: done (contact active), waiting on the queue, or parked. */
function whereJobsAre(ids: string[]) {
  const waiting = new Set(
    aws.queueMessages("activation-queue").map((m) => JSON.parse(m.body).contact_id),
  );
  const parked = new Set(
    aws.queueMessages("activation-dlq").map((m) => JSON.parse(m.body).contact_id),
  );
  return {
    done: ids.filter((id) => sandbox.contact(id)?.status === "active").length,
    waiting: ids.filter((id) => waiting.has(id)).length,
    parked: ids.filter((id) => parked.has(id)).length,
  };
}

const booksCalls = () => sandbox.requests().filter((r) => r.endpoint.startsWith("contact")).length;

describe("the worker under faults", () => {
  it("Secrets Manager unreachable for a while: jobs wait, none parked, no Zoho call; all done after", async () => {
    const ids = SEED.inactiveIds.slice(0, 5);
    await queueActivations(sqs, queueUrl, ids);
    aws.faults.secretsManagerUnavailable = true;
    expect(await deliver()).toEqual({ records: 5, failed: 5 });
    expect(whereJobsAre(ids)).toEqual({ done: 0, waiting: 5, parked: 0 });
    expect(booksCalls()).toBe(0);

    aws.faults.secretsManagerUnavailable = false;
    aws.endDelays("activation-queue");
    expect(await deliver()).toEqual({ records: 5, failed: 0 });
    expect(whereJobsAre(ids)).toEqual({ done: 5, waiting: 0, parked: 0 });
    expect(booksCalls()).toBe(5);
  });

  it("a malformed secret: jobs wait, none parked, no Zoho call; all done once it is fixed", async () => {
    const ids = SEED.inactiveIds.slice(5, 8);
    await queueActivations(sqs, queueUrl, ids);
    await storeSecret({ client_id: "only this" });
    expect(await deliver()).toEqual({ records: 3, failed: 3 });
    expect(whereJobsAre(ids)).toEqual({ done: 0, waiting: 3, parked: 0 });
    expect(booksCalls()).toBe(0);

    await storeSecret(sandboxSecret(sandbox, { fresh: true }));
    aws.endDelays("activation-queue");
    await deliver();
    expect(whereJobsAre(ids)).toEqual({ done: 3, waiting: 0, parked: 0 });
  });

  it("refresh token revoked, then restored: one refused grant per minute, jobs wait, all done after", async () => {
    const ids = SEED.inactiveIds.slice(8, 13);
    await queueActivations(sqs, queueUrl, ids);
    await storeSecret(sandboxSecret(sandbox)); // no stored token: a grant is needed
    sandbox.settings.refreshTokenRevoked = true;
    expect(await deliver()).toEqual({ records: 5, failed: 5 });
    expect(whereJobsAre(ids)).toEqual({ done: 0, waiting: 5, parked: 0 });
    expect(sandbox.stats().calls.token).toBe(1); // not one per job
    expect(booksCalls()).toBe(0);

    sandbox.settings.refreshTokenRevoked = false;
    vi.setSystemTime(Date.now() + 61_000); // the container's back-off after a refusal ends
    aws.endDelays("activation-queue");
    expect(await deliver()).toEqual({ records: 5, failed: 0 });
    expect(sandbox.stats().grants).toBe(1);
  });

  it("scope removed, then restored: at most one grant, jobs wait (never parked), all done after", async () => {
    const ids = SEED.inactiveIds.slice(13, 18);
    await queueActivations(sqs, queueUrl, ids);
    sandbox.settings.grantedScopes = ["ZohoBooks.contacts.READ"];
    expect(await deliver()).toEqual({ records: 5, failed: 5 });
    expect(whereJobsAre(ids)).toEqual({ done: 0, waiting: 5, parked: 0 });
    expect(sandbox.stats().grants).toBe(1);
    expect(booksCalls()).toBeLessThanOrEqual(6); // the first job twice (before and after the refresh), then once each

    sandbox.settings.grantedScopes = [
      "ZohoBooks.contacts.CREATE",
      "ZohoBooks.contacts.UPDATE",
      "ZohoBooks.contacts.READ",
    ];
    aws.endDelays("activation-queue");
    expect(await deliver()).toEqual({ records: 5, failed: 0 });
  });

  it("a burst of 5xx: each job tries 3 times at most, waits, and is done after the burst", async () => {
    const ids = SEED.inactiveIds.slice(18, 21);
    await queueActivations(sqs, queueUrl, ids);
    sandbox.settings.failNext = 9;
    expect(await deliver()).toEqual({ records: 3, failed: 3 });
    expect(booksCalls()).toBe(9);
    aws.endDelays("activation-queue");
    await deliver();
    expect(whereJobsAre(ids)).toEqual({ done: 3, waiting: 0, parked: 0 });
  });

  it("never logged a client secret, refresh token or access token, whatever happened", () => {
    const logs = logLines.join("");
    expect(logs).toContain("Job will be retried");
    expect(logs).toContain("Refreshed the Zoho access token");
    const stored = JSON.parse(aws.secretValue(SECRET_ID) ?? "{}");
    for (const secret of [
      SANDBOX_CREDENTIALS.client_secret,
      SANDBOX_CREDENTIALS.refresh_token,
      stored.access_token,
    ]) {
      expect(logs).not.toContain(secret);
    }
  });
});
