import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { CreateSecretCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import type { Context, SQSBatchResponse } from "aws-lambda";
import { vi } from "vitest";
import { type LocalAws, startLocalAws } from "../../local/aws";
import { lambdaContext } from "../../local/lambda-events";
import { type Sandbox, sandboxSecret } from "../../local/sandbox";
import { createLedgerTable } from "../../local/stack/ledger-table";
import { createQueueWithDlq } from "../../local/stack/queues";
import { deleteSucceeded, toSqsRecord } from "../../local/stack/sqs-records";
import { ledgerOn } from "./ledger";

export const SECRET_ID = "zoho-contact-status/test";
export const TABLE = "zoho-contact-status-test-ledger";
export const WEBHOOK_SECRET_ID = "zoho-contact-status/test/webhooks";
export type QueueName = "activation" | "bulk";

/**
 * The worker in this process against the local AWS endpoint (Secrets Manager, SQS, DynamoDB)
 * and the Zoho sandbox, driven as Lambda's event source mapping drives it: receive a batch,
 * invoke, delete what succeeded. Everything is real but the Lambda runtime.
 */
export async function startLocalWorker(sandbox: Sandbox, env: Record<string, string> = {}) {
  const aws: LocalAws = await startLocalAws();
  const client = {
    endpoint: aws.url,
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
  };
  const sqs = new SQSClient(client);
  const dynamo = new DynamoDBClient(client);
  const secretsManager = new SecretsManagerClient(client);
  const urls = {
    activation: { queue: "", dlq: "", arn: "" },
    bulk: { queue: "", dlq: "", arn: "" },
  };

  /** Everything new: secret, table, queues (same names, so the same URLs). */
  async function setUp() {
    aws.reset();
    await secretsManager.send(
      new CreateSecretCommand({
        Name: SECRET_ID,
        SecretString: JSON.stringify(sandboxSecret(sandbox)),
      }),
    );
    await createLedgerTable(dynamo, TABLE);
    for (const name of ["activation", "bulk"] as const) {
      const { queueUrl, dlqUrl } = await createQueueWithDlq(sqs, {
        queue: `${name}-queue`,
        dlq: `${name}-dlq`,
        visibilityTimeoutSeconds: 540,
      });
      const arn = (
        await sqs.send(
          new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["QueueArn"] }),
        )
      ).Attributes?.QueueArn as string;
      urls[name] = { queue: queueUrl, dlq: dlqUrl, arn };
    }
    const environment: Record<string, string> = {
      AWS_ENDPOINT_URL: aws.url,
      AWS_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: "local",
      AWS_SECRET_ACCESS_KEY: "local",
      ZOHO_SECRET_ID: SECRET_ID,
      ZOHO_LEDGER_TABLE: TABLE,
      ACTIVATION_QUEUE_URL: urls.activation.queue,
      ACTIVATION_DLQ_URL: urls.activation.dlq,
      BULK_QUEUE_URL: urls.bulk.queue,
      BULK_DLQ_URL: urls.bulk.dlq,
      SECRET_CACHE_TTL_SECONDS: "0",
      ZOHO_HTTP_TIMEOUT_MS: "1000",
      ...env,
    };
    for (const [name, value] of Object.entries(environment)) vi.stubEnv(name, value);
    // A new container: its module state (clients, caches) starts empty.
    vi.resetModules();
  }

  /** The webhook secret with these sources, and `WEBHOOK_SECRET_ID` pointing at it. */
  async function setWebhookSources(sources: Record<string, unknown>) {
    await secretsManager.send(
      new CreateSecretCommand({ Name: WEBHOOK_SECRET_ID, SecretString: JSON.stringify(sources) }),
    );
    vi.stubEnv("WEBHOOK_SECRET_ID", WEBHOOK_SECRET_ID);
  }

  /** A live token in the ledger, as the refresher keeps it. */
  const storeFreshToken = () =>
    ledgerOn(dynamo, TABLE).storeToken(SECRET_ID, sandbox.issueToken(), sandbox.url);

  /**
   * One invocation on up to 10 visible messages of a queue; deletes what succeeded, as the
   * event source mapping does. `remainingMs` is the invocation's time left at its start; it runs
   * down with the clock, as Lambda's does.
   */
  async function runOnce(queue: QueueName = "activation", remainingMs = 30_000) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: urls[queue].queue,
        MaxNumberOfMessages: 10,
        MessageSystemAttributeNames: ["All"],
        MessageAttributeNames: ["All"],
      }),
    );
    const { handler } = await import("../../functions/sqs-worker");
    const deadline = Date.now() + remainingMs;
    const context: Context = {
      ...lambdaContext("sqs-worker"),
      getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    };
    const response = (await handler(
      { Records: Messages.map((m) => toSqsRecord(m, urls[queue].arn)) },
      context,
    )) as SQSBatchResponse;
    await deleteSucceeded(sqs, urls[queue].queue, Messages, response);
    return { response, received: Messages.length };
  }

  /** The messages of a queue or DLQ, with their attributes flattened. */
  function messages(
    name: `${QueueName}-queue` | `${QueueName}-dlq`,
  ): Array<Record<string, string | boolean | undefined>> {
    return aws.queueMessages(name).map((m) => ({
      body: m.body,
      visible: m.visible,
      ...Object.fromEntries(
        Object.entries(m.messageAttributes).map(([k, v]) => [k, v.StringValue]),
      ),
    }));
  }

  return {
    aws,
    sqs,
    dynamo,
    urls,
    setUp,
    setWebhookSources,
    storeFreshToken,
    runOnce,
    messages,
    close: () => aws.close(),
  };
}

export type LocalWorker = Awaited<ReturnType<typeof startLocalWorker>>;
