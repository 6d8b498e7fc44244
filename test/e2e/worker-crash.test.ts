import { spawn } from "node:child_process";
import { once } from "node:events";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { CreateSecretCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { SQSClient } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundle, ROOT } from "../../bench/bundle";
import { type LocalAws, startLocalAws } from "../../local/aws";
import { type Sandbox, SEED, sandboxSecret, startSandbox } from "../../local/sandbox";
import { createLedgerTable } from "../../local/stack/ledger-table";
import { createQueueWithDlq, queueActivations } from "../../local/stack/queues";
import { ledgerOn } from "../support/ledger";

// A worker "container" killed with SIGKILL in the middle of a batch: SQS brings the batch back
// after its visibility timeout, a new container does it, nothing is lost, and doing a job twice
// does no harm (Zoho says "already active").

let aws: LocalAws;
let sandbox: Sandbox;
let runner: string;

beforeAll(async () => {
  [aws, sandbox] = await Promise.all([
    startLocalAws(),
    startSandbox({ settings: { latencyMs: 200 } }),
  ]);
  runner = (await bundle("crash-worker", { path: `${ROOT}/local/stack/worker-process.ts` })).file;
});
afterAll(async () => {
  await Promise.all([aws.close(), sandbox.close()]);
});

describe("a worker killed mid-batch", () => {
  it("loses no job: the batch comes back and is done by the next container", async () => {
    const client = {
      endpoint: aws.url,
      region: "us-east-1",
      credentials: { accessKeyId: "l", secretAccessKey: "l" },
    };
    const sqs = new SQSClient(client);
    await new SecretsManagerClient(client).send(
      new CreateSecretCommand({
        Name: "zoho/crash",
        SecretString: JSON.stringify(sandboxSecret(sandbox)),
      }),
    );
    // the ledger with a live token, as the refresher keeps it
    const table = await createLedgerTable(new DynamoDBClient(client), "crash-ledger");
    await ledgerOn(new DynamoDBClient(client), table).storeToken(
      "zoho/crash",
      sandbox.issueToken(),
      sandbox.url,
    );
    const { queueUrl, dlqUrl } = await createQueueWithDlq(sqs, {
      queue: "jobs",
      dlq: "dlq",
      visibilityTimeoutSeconds: 3,
    });
    const ids = SEED.inactiveIds.slice(0, 10);
    await queueActivations(sqs, queueUrl, ids);
    const env = {
      PATH: process.env.PATH,
      AWS_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: "l",
      AWS_SECRET_ACCESS_KEY: "l",
      AWS_ENDPOINT_URL: aws.url,
      ZOHO_SECRET_ID: "zoho/crash",
      ZOHO_LEDGER_TABLE: table,
      ACTIVATION_DLQ_URL: dlqUrl,
      BENCH_QUEUE_URL: queueUrl,
      ZOHO_CONCURRENCY: "2",
      ZOHO_MINUTE_SHARE: "100000", // not a budget test
      // a dead container's concurrency leases end after this timeout + 5 s
      ZOHO_HTTP_TIMEOUT_MS: "2000",
      LOG_LEVEL: "WARN",
      POWERTOOLS_METRICS_DISABLED: "true",
    };

    const first = spawn(process.execPath, [runner], { env, stdio: "ignore" });
    const calls = () => sandbox.requests().filter((r) => r.endpoint === "contact.active").length;
    while (calls() < 3) await new Promise((resolve) => setTimeout(resolve, 20));
    first.kill("SIGKILL");
    await once(first, "exit");
    const doneByFirst = ids.filter((id) => sandbox.contact(id)?.status === "active").length;
    expect(doneByFirst).toBeLessThan(10); // it really died mid-batch

    const second = spawn(process.execPath, [runner], { env, stdio: "ignore" });
    await once(second, "exit"); // it exits once the queue stays empty

    expect(ids.filter((id) => sandbox.contact(id)?.status === "active")).toEqual(ids);
    expect(aws.queueMessages("jobs")).toEqual([]);
    expect(aws.queueMessages("dlq")).toEqual([]);
    // Jobs the first container finished but never deleted were done again: Zoho answered 3031.
    const actionCalls = calls();
    expect(actionCalls).toBeGreaterThanOrEqual(10);
    expect(actionCalls).toBeLessThanOrEqual(10 + doneByFirst + 2);
    expect(sandbox.stats().byCode["3031"] ?? 0).toBe(actionCalls - 10);
  });
});
