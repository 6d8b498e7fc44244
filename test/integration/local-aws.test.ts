import {
  ConditionalCheckFailedException,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import {
  CreateEventBusCommand,
  DeleteEventBusCommand,
  DescribeEventBusCommand,
  EventBridgeClient,
  PutEventsCommand,
  type PutEventsRequestEntry,
} from "@aws-sdk/client-eventbridge";
import {
  CreateSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
  UpdateSecretCommand,
} from "@aws-sdk/client-secrets-manager";
import {
  CancelMessageMoveTaskCommand,
  ChangeMessageVisibilityBatchCommand,
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ListMessageMoveTasksCommand,
  ListQueuesCommand,
  type MessageAttributeValue,
  type QueueAttributeName,
  ReceiveMessageCommand,
  type ReceiveMessageCommandInput,
  SendMessageBatchCommand,
  SendMessageCommand,
  SetQueueAttributesCommand,
  SQSClient,
  StartMessageMoveTaskCommand,
} from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { type LocalAws, startLocalAws } from "../../local/aws";
import { createLedgerTable } from "../../local/stack/ledger-table";

// The real SDK v3 clients against the local endpoint: they check every body's MD5 themselves,
// and name errors from what the endpoint answers.
let aws: LocalAws;
let sm: SecretsManagerClient;
let sqs: SQSClient;
let dynamodb: DynamoDBClient;
let events: EventBridgeClient;

function clientsFor(endpoint: string, maxAttempts = 1) {
  const config = {
    endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
    maxAttempts,
  };
  return {
    sm: new SecretsManagerClient(config),
    sqs: new SQSClient(config),
    dynamodb: new DynamoDBClient(config),
    events: new EventBridgeClient(config),
  };
}

beforeAll(async () => {
  aws = await startLocalAws();
  ({ sm, sqs, dynamodb, events } = clientsFor(aws.url));
});
afterAll(() => aws.close());
beforeEach(() => aws.reset());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const ACCOUNT = "000000000000";
const arnOf = (queue: string) => `arn:aws:sqs:us-east-1:${ACCOUNT}:${queue}`;

const getSecret = (SecretId: string, VersionStage?: string) =>
  sm.send(new GetSecretValueCommand({ SecretId, VersionStage }));

async function createQueue(QueueName: string, Attributes: Record<string, string> = {}) {
  return (await sqs.send(new CreateQueueCommand({ QueueName, Attributes }))).QueueUrl as string;
}

async function queueAttributes(QueueUrl: string, AttributeNames: QueueAttributeName[] = ["All"]) {
  const output = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames }));
  return output.Attributes ?? {};
}

const send = (
  QueueUrl: string,
  MessageBody: string,
  MessageAttributes?: Record<string, MessageAttributeValue>,
) => sqs.send(new SendMessageCommand({ QueueUrl, MessageBody, MessageAttributes }));

async function receive(QueueUrl: string, more: Partial<ReceiveMessageCommandInput> = {}) {
  const output = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl,
      MessageSystemAttributeNames: ["All"],
      MessageAttributeNames: ["All"],
      ...more,
    }),
  );
  return output.Messages ?? [];
}

describe("local Secrets Manager", () => {
  it("creates a secret, reads it by name, ARN and partial ARN, and versions each new value", async () => {
    const created = await sm.send(
      new CreateSecretCommand({ Name: "zoho/books", SecretString: '{"v":1}', Description: "d" }),
    );
    const arn = created.ARN as string;
    expect(arn).toMatch(/^arn:aws:secretsmanager:us-east-1:000000000000:secret:zoho\/books-\w{6}$/);
    for (const id of ["zoho/books", arn, arn.slice(0, -7)]) {
      expect((await getSecret(id)).SecretString).toBe('{"v":1}');
    }

    const put = await sm.send(
      new PutSecretValueCommand({ SecretId: arn, SecretString: '{"v":2}' }),
    );
    expect(await getSecret("zoho/books")).toMatchObject({
      SecretString: '{"v":2}',
      VersionId: put.VersionId,
      VersionStages: ["AWSCURRENT"],
    });
    expect((await getSecret("zoho/books", "AWSPREVIOUS")).VersionId).toBe(created.VersionId);
    const described = await sm.send(new DescribeSecretCommand({ SecretId: "zoho/books" }));
    expect(described).toMatchObject({
      Name: "zoho/books",
      Description: "d",
      VersionIdsToStages: {
        [put.VersionId as string]: ["AWSCURRENT"],
        [created.VersionId as string]: ["AWSPREVIOUS"],
      },
    });
    expect(described.CreatedDate).toBeInstanceOf(Date);

    await sm.send(new UpdateSecretCommand({ SecretId: "zoho/books", SecretString: '{"v":3}' }));
    expect(aws.secretValue(arn)).toBe('{"v":3}');
    expect(aws.stats().secretReads).toEqual({ "zoho/books": 5 });
    expect(aws.stats().calls["secretsmanager.GetSecretValue"]).toBe(5);
  });

  it("takes a ClientRequestToken as the version id: a retry changes nothing, other content is refused", async () => {
    await sm.send(new CreateSecretCommand({ Name: "s", SecretString: "{}" }));
    const token = "a".repeat(64);
    const lock = () =>
      sm.send(
        new PutSecretValueCommand({
          SecretId: "s",
          SecretString: '{"lock":1}',
          ClientRequestToken: token,
        }),
      );
    expect((await lock()).VersionId).toBe(token);
    await sm.send(new PutSecretValueCommand({ SecretId: "s", SecretString: '{"later":1}' }));
    await lock(); // a retry of the same request
    expect(aws.secretValue("s")).toBe('{"later":1}');
    await expect(
      sm.send(
        new PutSecretValueCommand({
          SecretId: "s",
          SecretString: '{"lock":2}',
          ClientRequestToken: token,
        }),
      ),
    ).rejects.toMatchObject({ name: "ResourceExistsException" });
  });

  it("names its errors as Secrets Manager does", async () => {
    await sm.send(new CreateSecretCommand({ Name: "s", SecretString: "{}" }));
    await expect(
      sm.send(new CreateSecretCommand({ Name: "s", SecretString: "{}" })),
    ).rejects.toMatchObject({ name: "ResourceExistsException" });
    await expect(getSecret("nope")).rejects.toMatchObject({
      name: "ResourceNotFoundException",
      message: "Secrets Manager can't find the specified secret.",
      $metadata: { httpStatusCode: 400 },
    });
    await expect(sm.send(new DescribeSecretCommand({ SecretId: "nope" }))).rejects.toMatchObject({
      name: "ResourceNotFoundException",
    });
    await expect(getSecret("s", "AWSPREVIOUS")).rejects.toMatchObject({
      name: "ResourceNotFoundException",
    });
  });

  it("answers 503 ServiceUnavailable while unavailable, an error the SDK retries", async () => {
    await sm.send(new CreateSecretCommand({ Name: "s", SecretString: "{}" }));
    aws.faults.secretsManagerUnavailable = true;
    const retrying = clientsFor(aws.url, 2).sm;
    await expect(retrying.send(new GetSecretValueCommand({ SecretId: "s" }))).rejects.toMatchObject(
      {
        name: "ServiceUnavailable",
        $fault: "server",
        $metadata: { httpStatusCode: 503, attempts: 2 },
      },
    );
    expect(aws.stats().calls["secretsmanager.GetSecretValue"]).toBe(2);
    aws.faults.secretsManagerUnavailable = false;
    expect((await getSecret("s")).SecretString).toBe("{}");
  });
});

describe("local SQS", () => {
  it("creates queues idempotently, with a redrive policy, checking attributes as SQS does", async () => {
    const dlqUrl = await createQueue("jobs-dlq");
    expect(dlqUrl).toBe(`${aws.url}/${ACCOUNT}/jobs-dlq`);
    const attributes = {
      VisibilityTimeout: "5",
      MessageRetentionPeriod: "3600",
      RedrivePolicy: JSON.stringify({
        deadLetterTargetArn: arnOf("jobs-dlq"),
        maxReceiveCount: "3",
      }),
      KmsMasterKeyId: "alias/aws/sqs",
    };
    const queueUrl = await createQueue("jobs", attributes);
    expect(await createQueue("jobs", attributes)).toBe(queueUrl);
    await expect(createQueue("jobs", { VisibilityTimeout: "6" })).rejects.toMatchObject({
      name: "QueueNameExists",
    });

    const all = await queueAttributes(queueUrl);
    expect(all).toMatchObject({
      QueueArn: arnOf("jobs"),
      VisibilityTimeout: "5",
      MessageRetentionPeriod: "3600",
      DelaySeconds: "0",
      ReceiveMessageWaitTimeSeconds: "0",
      KmsMasterKeyId: "alias/aws/sqs",
      SqsManagedSseEnabled: "false",
      ApproximateNumberOfMessages: "0",
    });
    expect(JSON.parse(all.RedrivePolicy ?? "")).toEqual({
      deadLetterTargetArn: arnOf("jobs-dlq"),
      maxReceiveCount: 3,
    });
    expect(await queueAttributes(queueUrl, ["VisibilityTimeout"])).toEqual({
      VisibilityTimeout: "5",
    });
    expect((await sqs.send(new GetQueueUrlCommand({ QueueName: "jobs" }))).QueueUrl).toBe(queueUrl);
    expect((await sqs.send(new ListQueuesCommand({ QueueNamePrefix: "jobs-" }))).QueueUrls).toEqual(
      [dlqUrl],
    );

    const redriveTo = (deadLetterTargetArn: string) =>
      sqs.send(
        new SetQueueAttributesCommand({
          QueueUrl: queueUrl,
          Attributes: {
            RedrivePolicy: JSON.stringify({ deadLetterTargetArn, maxReceiveCount: 3 }),
          },
        }),
      );
    await expect(redriveTo(arnOf("missing"))).rejects.toMatchObject({
      name: "InvalidParameterValue",
    });
    await expect(createQueue("other", { VisibilityTimeout: "43201" })).rejects.toMatchObject({
      name: "InvalidAttributeValue",
    });
    await expect(createQueue("other.fifo", { FifoQueue: "true" })).rejects.toMatchObject({
      name: "InvalidParameterValue",
    });
    await expect(createQueue("other", { FifoQueue: "true" })).rejects.toMatchObject({
      name: "InvalidAttributeName",
    });
    await expect(sqs.send(new GetQueueUrlCommand({ QueueName: "nope" }))).rejects.toMatchObject({
      name: "QueueDoesNotExist",
    });

    await sqs.send(
      new SetQueueAttributesCommand({ QueueUrl: queueUrl, Attributes: { RedrivePolicy: "" } }),
    );
    expect(await queueAttributes(queueUrl)).not.toHaveProperty("RedrivePolicy");
  });

  it("sends and receives message attributes with the MD5s SQS computes", async () => {
    const queueUrl = await createQueue("jobs");
    // Digests AWS returned for these attributes (recorded in LocalStack's AWS-validated snapshots).
    const recorded: Array<[Record<string, MessageAttributeValue>, string]> = [
      [
        { MyAttribute: { DataType: "String", StringValue: "foobar" } },
        "adb59cd4678ea5a855436b949cd07ab6",
      ],
      [
        {
          attr1: {
            DataType: "Binary",
            BinaryValue: new TextEncoder().encode(
              "traceparent\x1e00-774062d6c37081a5a0b9b5b88e30627c-2d2482211f6489da-01",
            ),
          },
        },
        "8cbe4db156db8a94db8b801b7addb984",
      ],
      [
        { timestamp: { DataType: "Number", StringValue: "1493147359900" } },
        "235c5c510d26fb653d073faed50ae77c",
      ],
    ];
    for (const [attributes, md5] of recorded) {
      // a queue URL on another host, as the SDK may send it: the queue is found by its name
      const sent = await send(
        `https://sqs.us-east-1.amazonaws.com/${ACCOUNT}/jobs`,
        "hi",
        attributes,
      );
      expect(sent.MD5OfMessageAttributes).toBe(md5);
      const [message] = await receive(queueUrl);
      expect(message?.MD5OfMessageAttributes).toBe(md5);
      expect(message?.MessageAttributes).toEqual(attributes);
    }

    // Only the attributes asked for come back, with the digest of those alone.
    await send(queueUrl, '{"contact_id":"1"}', {
      error_code: { DataType: "String", StringValue: "CONTACT_NOT_FOUND" },
      error_message: { DataType: "String", StringValue: "No such contact." },
      zoho_code: { DataType: "Number", StringValue: "2" },
    });
    const subset = await send(queueUrl, "same attributes, fewer", {
      error_code: { DataType: "String", StringValue: "CONTACT_NOT_FOUND" },
      error_message: { DataType: "String", StringValue: "No such contact." },
    });
    const [parked] = await receive(queueUrl, {
      MessageAttributeNames: ["error_.*"],
      MessageSystemAttributeNames: ["ApproximateReceiveCount"],
    });
    expect(Object.keys(parked?.MessageAttributes ?? {})).toEqual(["error_code", "error_message"]);
    expect(parked?.MD5OfMessageAttributes).toBe(subset.MD5OfMessageAttributes);
    expect(parked?.Attributes).toEqual({ ApproximateReceiveCount: "1" });
  });

  it("answers a batch entry by entry: injected failures, refused entries, malformed batches", async () => {
    const queueUrl = await createQueue("jobs");
    aws.faults.failBatchEntries = 1;
    const result = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: [
          { Id: "a", MessageBody: "1" },
          {
            Id: "b",
            MessageBody: "2",
            MessageAttributes: { n: { DataType: "Number", StringValue: "7" } },
          },
          {
            Id: "c",
            MessageBody: "3",
            MessageAttributes: { empty: { DataType: "String", StringValue: "" } },
          },
        ],
      }),
    );
    expect(result.Failed).toEqual([
      { Id: "a", Code: "InternalError", SenderFault: false, Message: expect.any(String) },
      {
        Id: "c",
        Code: "InvalidParameterValue",
        SenderFault: true,
        Message:
          "Message (user) attribute 'empty' must contain a non-empty value of type 'String'.",
      },
    ]);
    expect(result.Successful).toMatchObject([
      { Id: "b", MessageId: expect.any(String), MD5OfMessageAttributes: expect.any(String) },
    ]);
    expect(aws.faults.failBatchEntries).toBe(0);
    expect(aws.queueMessages("jobs").map((m) => m.body)).toEqual(["2"]);

    const batchOf = (ids: string[]) =>
      sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: ids.map((Id) => ({ Id, MessageBody: Id })),
        }),
      );
    await expect(batchOf(["x", "x"])).rejects.toMatchObject({ name: "BatchEntryIdsNotDistinct" });
    await expect(batchOf([..."abcdefghijk"])).rejects.toMatchObject({
      name: "TooManyEntriesInBatchRequest",
    });
  });

  it("refuses a batch send as AWS does: no entry, 11, a bad or repeated Id, over 1 MiB in all; a delay past 900 s fails its entry", async () => {
    const queueUrl = await createQueue("jobs");
    const send = (Entries: Array<{ Id: string; MessageBody: string; DelaySeconds?: number }>) =>
      sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries }));
    const of = (ids: string[], body = "x") => ids.map((Id) => ({ Id, MessageBody: body }));
    await expect(send([])).rejects.toMatchObject({ name: "EmptyBatchRequest" });
    await expect(send(of([..."abcdefghijk"]))).rejects.toMatchObject({
      name: "TooManyEntriesInBatchRequest",
    });
    await expect(send(of(["a", "a"]))).rejects.toMatchObject({ name: "BatchEntryIdsNotDistinct" });
    for (const id of ["a.b", "a b", "", "x".repeat(81)]) {
      await expect(send(of([id]))).rejects.toMatchObject({ name: "InvalidBatchEntryId" });
    }
    // SQS's documented limit for a whole batch is 1 MiB since 2025 (256 KiB before).
    await expect(send(of(["a", "b"], "x".repeat(600_000)))).rejects.toMatchObject({
      name: "BatchRequestTooLong",
    });
    expect(aws.queueMessages("jobs")).toEqual([]);
    const result = await send([
      { Id: "ok", MessageBody: "1", DelaySeconds: 900 },
      { Id: "late", MessageBody: "2", DelaySeconds: 901 },
      { Id: "early", MessageBody: "3", DelaySeconds: -1 },
    ]);
    expect(result.Successful?.map((entry) => entry.Id)).toEqual(["ok"]);
    expect(result.Failed).toEqual([
      expect.objectContaining({ Id: "late", Code: "InvalidParameterValue", SenderFault: true }),
      expect.objectContaining({ Id: "early", Code: "InvalidParameterValue", SenderFault: true }),
    ]);
    expect(aws.queueMessages("jobs").map((m) => [m.body, m.visible])).toEqual([["1", false]]);
  });

  it("hides a received message for its visibility timeout, then delivers it again with a higher count", async () => {
    const queueUrl = await createQueue("jobs", { VisibilityTimeout: "1" });
    await send(queueUrl, "x");
    const [first] = await receive(queueUrl);
    expect(first?.Attributes).toMatchObject({ ApproximateReceiveCount: "1" });
    expect(await receive(queueUrl)).toEqual([]);
    expect(aws.queueMessages("jobs")).toMatchObject([{ receiveCount: 1, visible: false }]);
    expect(await queueAttributes(queueUrl)).toMatchObject({
      ApproximateNumberOfMessages: "0",
      ApproximateNumberOfMessagesNotVisible: "1",
    });

    // a long poll wakes when the timeout ends
    const started = Date.now();
    const [again] = await receive(queueUrl, { WaitTimeSeconds: 5 });
    expect(Date.now() - started).toBeLessThan(1500);
    expect(again?.MessageId).toBe(first?.MessageId);
    expect(again?.ReceiptHandle).not.toBe(first?.ReceiptHandle);
    expect(again?.Attributes).toMatchObject({
      ApproximateReceiveCount: "2",
      ApproximateFirstReceiveTimestamp: first?.Attributes?.ApproximateFirstReceiveTimestamp,
    });
  });

  it("changes visibility through the latest receipt handle only, as SQS does", async () => {
    const queueUrl = await createQueue("jobs");
    await send(queueUrl, "x");
    const [first] = await receive(queueUrl);
    const changeVisibility = (ReceiptHandle: string | undefined, VisibilityTimeout: number) =>
      sqs.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: queueUrl,
          ReceiptHandle,
          VisibilityTimeout,
        }),
      );
    await changeVisibility(first?.ReceiptHandle, 0);
    const [second] = await receive(queueUrl);
    expect(second?.MessageId).toBe(first?.MessageId);

    await expect(changeVisibility(first?.ReceiptHandle, 5)).rejects.toMatchObject({
      name: "InvalidParameterValue",
      message: expect.stringContaining(
        "Message does not exist or is not available for visibility timeout change.",
      ),
    });
    await expect(changeVisibility("garbage", 5)).rejects.toMatchObject({
      name: "ReceiptHandleIsInvalid",
    });
    await expect(changeVisibility(second?.ReceiptHandle, 43_201)).rejects.toMatchObject({
      name: "InvalidParameterValue",
    });

    const result = await sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: queueUrl,
        Entries: [
          { Id: "latest", ReceiptHandle: second?.ReceiptHandle, VisibilityTimeout: 0 },
          { Id: "stale", ReceiptHandle: first?.ReceiptHandle, VisibilityTimeout: 0 },
        ],
      }),
    );
    expect(result.Successful).toEqual([{ Id: "latest" }]);
    expect(result.Failed).toMatchObject([
      { Id: "stale", Code: "InvalidParameterValue", SenderFault: true },
    ]);
    expect(aws.queueMessages("jobs")).toMatchObject([{ visible: true }]);
  });

  it("keeps a message in flight at most 12 hours from its receive, however its visibility is changed", async () => {
    const queueUrl = await createQueue("jobs");
    await send(queueUrl, "x");
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() }); // hours pass in an instant
    try {
      const [first] = await receive(queueUrl, { VisibilityTimeout: 43_200 });
      const change = (VisibilityTimeout: number, ReceiptHandle = first?.ReceiptHandle) =>
        sqs.send(
          new ChangeMessageVisibilityCommand({
            QueueUrl: queueUrl,
            ReceiptHandle,
            VisibilityTimeout,
          }),
        );

      vi.setSystemTime(Date.now() + 3 * 3600_000); // 3 hours after the receive: 9 are left
      await expect(change(32_401)).rejects.toMatchObject({
        name: "InvalidParameterValue",
        message:
          "Value 32401 for parameter VisibilityTimeout is invalid. Reason: Total VisibilityTimeout for the message is beyond the limit [43200 seconds].",
      });
      const batch = await sqs.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: queueUrl,
          Entries: [{ Id: "over", ReceiptHandle: first?.ReceiptHandle, VisibilityTimeout: 32_401 }],
        }),
      );
      expect(batch.Failed).toMatchObject([
        { Id: "over", Code: "InvalidParameterValue", SenderFault: true },
      ]);
      await change(32_400); // up to the limit exactly

      vi.setSystemTime(Date.now() + 9 * 3600_000); // at the limit: only 0 is left
      await expect(change(1)).rejects.toMatchObject({ name: "InvalidParameterValue" });
      await change(0);

      // a new receive starts a new 12 hours
      const [second] = await receive(queueUrl);
      expect(second?.MessageId).toBe(first?.MessageId);
      vi.setSystemTime(Date.now() + 3600_000);
      await change(39_600, second?.ReceiptHandle);
      await expect(change(39_601, second?.ReceiptHandle)).rejects.toMatchObject({
        name: "InvalidParameterValue",
      });
    } finally {
      vi.useRealTimers();
    }
  });

  it("deletes through the latest receipt handle; an older one deletes nothing, as SQS documents", async () => {
    const queueUrl = await createQueue("jobs");
    for (const body of ["a", "b", "c"]) await send(queueUrl, body);
    const stale = await receive(queueUrl, { MaxNumberOfMessages: 10, VisibilityTimeout: 0 });
    const latest = await receive(queueUrl, { MaxNumberOfMessages: 10 });
    expect(latest).toHaveLength(3);

    await sqs.send(
      new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: stale[0]?.ReceiptHandle }),
    );
    expect(aws.queueMessages("jobs")).toHaveLength(3);
    await sqs.send(
      new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: latest[0]?.ReceiptHandle }),
    );
    expect(aws.queueMessages("jobs")).toHaveLength(2);

    const result = await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: [
          ...latest.slice(1).map((m, i) => ({ Id: `m${i}`, ReceiptHandle: m.ReceiptHandle })),
          { Id: "bad", ReceiptHandle: "garbage" },
        ],
      }),
    );
    expect(result.Successful).toEqual([{ Id: "m0" }, { Id: "m1" }]);
    expect(result.Failed).toMatchObject([
      { Id: "bad", Code: "ReceiptHandleIsInvalid", SenderFault: true },
    ]);
    expect(aws.queueMessages("jobs")).toEqual([]);
    await expect(
      sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: "garbage" })),
    ).rejects.toMatchObject({ name: "ReceiptHandleIsInvalid" });
  });

  it("moves a message to the DLQ on the receive after maxReceiveCount, with its id, body, attributes and count", async () => {
    const dlqUrl = await createQueue("jobs-dlq");
    const queueUrl = await createQueue("jobs", {
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: arnOf("jobs-dlq"), maxReceiveCount: 2 }),
    });
    const sent = await send(queueUrl, "poison", {
      reason: { DataType: "String", StringValue: "x" },
    });
    for (const count of ["1", "2"]) {
      const [message] = await receive(queueUrl, { VisibilityTimeout: 0 });
      expect(message?.Attributes?.ApproximateReceiveCount).toBe(count);
    }
    expect(await receive(queueUrl, { VisibilityTimeout: 0 })).toEqual([]);
    expect(aws.queueMessages("jobs")).toEqual([]);

    const [parked] = await receive(dlqUrl);
    expect(parked).toMatchObject({
      MessageId: sent.MessageId,
      Body: "poison",
      MD5OfMessageAttributes: sent.MD5OfMessageAttributes,
      Attributes: { ApproximateReceiveCount: "3", DeadLetterQueueSourceArn: arnOf("jobs") },
    });
  });

  it("delays messages, and drops them after the retention period", async () => {
    const queueUrl = await createQueue("jobs", { MessageRetentionPeriod: "60" });
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() }); // no long polls while Date stands still
    try {
      await sqs.send(
        new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: "late", DelaySeconds: 30 }),
      );
      await send(queueUrl, "now");
      expect(await queueAttributes(queueUrl)).toMatchObject({
        ApproximateNumberOfMessages: "1",
        ApproximateNumberOfMessagesDelayed: "1",
      });
      expect((await receive(queueUrl)).map((m) => m.Body)).toEqual(["now"]);
      vi.setSystemTime(Date.now() + 30_000);
      expect((await receive(queueUrl)).map((m) => m.Body)).toEqual(["late"]);
      vi.setSystemTime(Date.now() + 30_001); // 60 s after they were sent
      expect(aws.queueMessages("jobs")).toEqual([]);
    } finally {
      vi.useRealTimers();
    }
  });

  it("delays a message at most 15 minutes, as SQS does (the worker's longest wait is one send)", async () => {
    const queueUrl = await createQueue("waits");
    await sqs.send(
      new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: "900", DelaySeconds: 900 }),
    );
    await expect(
      sqs.send(
        new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: "901", DelaySeconds: 901 }),
      ),
    ).rejects.toMatchObject({
      name: "InvalidParameterValue",
      message: expect.stringContaining("Must be >= 0 and <= 900"),
    });
    expect(aws.queueMessages("waits").map((m) => [m.body, m.visible])).toEqual([["900", false]]);
  });

  it("answers a long poll as soon as a message arrives, else after WaitTimeSeconds", async () => {
    const queueUrl = await createQueue("jobs");
    const started = Date.now();
    const polling = receive(queueUrl, { WaitTimeSeconds: 5 });
    await sleep(100);
    await send(queueUrl, "late");
    expect((await polling).map((m) => m.Body)).toEqual(["late"]);
    expect(Date.now() - started).toBeLessThan(1000);

    const waited = Date.now();
    expect(await receive(queueUrl, { WaitTimeSeconds: 1 })).toEqual([]);
    expect(Date.now() - waited).toBeGreaterThanOrEqual(950);
  });

  it("takes no message for a long poll its client abandoned", async () => {
    const queueUrl = await createQueue("jobs");
    const abandon = new AbortController();
    const polling = sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 5 }),
      {
        abortSignal: abandon.signal,
      },
    );
    await vi.waitFor(() => expect(aws.stats().calls["AmazonSQS.ReceiveMessage"]).toBe(1));
    abandon.abort();
    await expect(polling).rejects.toThrow();
    await sleep(50); // the server sees the connection close
    await send(queueUrl, "x");
    expect(aws.queueMessages("jobs")).toMatchObject([
      { body: "x", visible: true, receiveCount: 0 },
    ]);
  });

  it("ends a pending long poll at once on close()", async () => {
    const other = await startLocalAws();
    const client = clientsFor(other.url).sqs;
    const queueUrl = (await client.send(new CreateQueueCommand({ QueueName: "jobs" }))).QueueUrl;
    const started = Date.now();
    const polling = client.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 20 }),
    );
    await vi.waitFor(() => expect(other.stats().calls["AmazonSQS.ReceiveMessage"]).toBe(1));
    await other.close();
    expect((await polling).Messages).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(1000);
  });
});

describe("local SQS: DLQ redrive (message move tasks)", () => {
  /** jobs → jobs-dlq after 1 receive; `parked` messages put in the DLQ by that redrive */
  async function queueWithDlq(parked: string[] = []) {
    const dlqUrl = await createQueue("jobs-dlq");
    const queueUrl = await createQueue("jobs", {
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: arnOf("jobs-dlq"), maxReceiveCount: 1 }),
    });
    for (const body of parked) {
      await send(queueUrl, body, { tag: { DataType: "String", StringValue: body } });
      await receive(queueUrl, { VisibilityTimeout: 0 });
    }
    await receive(queueUrl, { MaxNumberOfMessages: 10 }); // moves them all to the DLQ
    expect(aws.queueMessages("jobs-dlq")).toHaveLength(parked.length);
    return { queueUrl, dlqUrl };
  }
  const start = (input: {
    SourceArn: string;
    DestinationArn?: string;
    MaxNumberOfMessagesPerSecond?: number;
  }) => sqs.send(new StartMessageMoveTaskCommand(input));
  const tasks = async (SourceArn: string, MaxResults?: number) =>
    (await sqs.send(new ListMessageMoveTasksCommand({ SourceArn, MaxResults }))).Results ?? [];
  async function settled(SourceArn: string) {
    await vi.waitFor(async () => expect((await tasks(SourceArn))[0]?.Status).not.toBe("RUNNING"), {
      timeout: 5000,
    });
    return (await tasks(SourceArn))[0];
  }

  it("without DestinationArn, moves each message back to the queue redrive took it from, as a new message", async () => {
    await queueWithDlq(["a", "b", "c"]);
    const parkedIds = aws.queueMessages("jobs-dlq").map((m) => m.messageId);
    const { TaskHandle } = await start({ SourceArn: arnOf("jobs-dlq") });
    expect(TaskHandle).toEqual(expect.any(String));

    const task = await settled(arnOf("jobs-dlq"));
    expect(task).toEqual({
      Status: "COMPLETED",
      SourceArn: arnOf("jobs-dlq"),
      ApproximateNumberOfMessagesMoved: 3,
      ApproximateNumberOfMessagesToMove: 3,
      StartedTimestamp: expect.any(Number),
    });
    expect(aws.queueMessages("jobs-dlq")).toEqual([]);
    const moved = aws.queueMessages("jobs");
    expect(
      moved.map((m) => [m.body, m.messageAttributes.tag?.StringValue, m.receiveCount]),
    ).toEqual([
      ["a", "a", 0],
      ["b", "b", 0],
      ["c", "c", 0],
    ]);
    for (const message of moved) {
      expect(parkedIds).not.toContain(message.messageId);
      expect(message.attributes.DeadLetterQueueSourceArn).toBeUndefined();
    }
  });

  it("fails with CouldNotDetermineMessageSource on a message sent to the DLQ directly, unless DestinationArn is given", async () => {
    const { dlqUrl } = await queueWithDlq();
    await createQueue("elsewhere");
    await send(dlqUrl, "parked by the worker");

    await start({ SourceArn: arnOf("jobs-dlq") });
    expect(await settled(arnOf("jobs-dlq"))).toMatchObject({
      Status: "FAILED",
      FailureReason: "CouldNotDetermineMessageSource",
      ApproximateNumberOfMessagesMoved: 0,
      ApproximateNumberOfMessagesToMove: 1,
    });
    expect(aws.queueMessages("jobs-dlq")).toHaveLength(1);

    await start({ SourceArn: arnOf("jobs-dlq"), DestinationArn: arnOf("elsewhere") });
    expect(await settled(arnOf("jobs-dlq"))).toMatchObject({
      Status: "COMPLETED",
      DestinationArn: arnOf("elsewhere"),
      ApproximateNumberOfMessagesMoved: 1,
    });
    expect(aws.queueMessages("elsewhere").map((m) => m.body)).toEqual(["parked by the worker"]);
    // newest first, one by default
    expect((await tasks(arnOf("jobs-dlq"), 10)).map((t) => t.Status)).toEqual([
      "COMPLETED",
      "FAILED",
    ]);
  });

  it("refuses a source that is no queue's DLQ, unknown queues, bad ARNs and rates, as SQS does", async () => {
    await queueWithDlq();
    await expect(start({ SourceArn: arnOf("jobs") })).rejects.toMatchObject({
      name: "InvalidParameterValue",
      message: "Source queue must be configured as a Dead Letter Queue.",
    });
    await expect(start({ SourceArn: arnOf("missing") })).rejects.toMatchObject({
      name: "ResourceNotFoundException",
      $metadata: { httpStatusCode: 404 },
    });
    await expect(
      start({ SourceArn: arnOf("jobs-dlq"), DestinationArn: arnOf("missing") }),
    ).rejects.toMatchObject({ name: "ResourceNotFoundException" });
    await expect(
      start({ SourceArn: arnOf("jobs-dlq"), DestinationArn: arnOf("jobs-dlq") }),
    ).rejects.toMatchObject({ name: "InvalidParameterValue" });
    await expect(start({ SourceArn: "jobs-dlq" })).rejects.toMatchObject({
      name: "InvalidParameterValue",
    });
    for (const rate of [0, 501]) {
      await expect(
        start({ SourceArn: arnOf("jobs-dlq"), MaxNumberOfMessagesPerSecond: rate }),
      ).rejects.toMatchObject({ name: "InvalidParameterValue" });
    }
    await expect(tasks(arnOf("missing"))).rejects.toMatchObject({
      name: "ResourceNotFoundException",
    });
    expect(await tasks(arnOf("jobs-dlq"))).toEqual([]);
  });

  it("moves at most MaxNumberOfMessagesPerSecond, one task at a time per source, and can be cancelled", async () => {
    await queueWithDlq(["1", "2", "3", "4", "5", "6", "7", "8"]);
    const started = Date.now();
    const { TaskHandle } = await start({
      SourceArn: arnOf("jobs-dlq"),
      MaxNumberOfMessagesPerSecond: 4,
    });
    await expect(start({ SourceArn: arnOf("jobs-dlq") })).rejects.toMatchObject({
      name: "UnsupportedOperation",
      message:
        "There is already a task running. Only one active task is allowed for a source queue arn at a given time.",
    });
    const [running] = await tasks(arnOf("jobs-dlq"));
    expect(running).toMatchObject({
      TaskHandle,
      Status: "RUNNING",
      MaxNumberOfMessagesPerSecond: 4,
      ApproximateNumberOfMessagesToMove: 8,
    });
    await sleep(600);
    const movedSoFar = aws.queueMessages("jobs").length;
    // the first at once, then 4 a second: 3 after 0.6 s (4 on a slow machine, never all 8)
    expect(movedSoFar).toBeGreaterThanOrEqual(2);
    expect(movedSoFar).toBeLessThanOrEqual(1 + Math.floor(((Date.now() - started) * 4) / 1000));

    const { ApproximateNumberOfMessagesMoved } = await sqs.send(
      new CancelMessageMoveTaskCommand({ TaskHandle }),
    );
    expect(ApproximateNumberOfMessagesMoved).toBe(aws.queueMessages("jobs").length);
    await sleep(300);
    expect(aws.queueMessages("jobs")).toHaveLength(ApproximateNumberOfMessagesMoved ?? -1);
    const [cancelled] = await tasks(arnOf("jobs-dlq"));
    expect(cancelled).toMatchObject({ Status: "CANCELLED", ApproximateNumberOfMessagesMoved });
    expect(cancelled?.TaskHandle).toBeUndefined();
    await expect(sqs.send(new CancelMessageMoveTaskCommand({ TaskHandle }))).rejects.toMatchObject({
      name: "UnsupportedOperation",
    });
    await expect(
      sqs.send(new CancelMessageMoveTaskCommand({ TaskHandle: "bm90IGEgdGFzaw==" })),
    ).rejects.toMatchObject({ name: "ResourceNotFoundException" });

    // a new task may start once none is running; it moves what is left
    await start({ SourceArn: arnOf("jobs-dlq") });
    expect(await settled(arnOf("jobs-dlq"))).toMatchObject({
      Status: "COMPLETED",
      ApproximateNumberOfMessagesToMove: 8 - (ApproximateNumberOfMessagesMoved ?? 0),
    });
    expect(aws.queueMessages("jobs")).toHaveLength(8);
  });

  it("moves only the messages there when it started, and in-flight ones once they are visible", async () => {
    const { queueUrl, dlqUrl } = await queueWithDlq(["old"]);
    const [held] = await receive(dlqUrl, { VisibilityTimeout: 1 });
    expect(held?.Body).toBe("old");
    await start({ SourceArn: arnOf("jobs-dlq") });
    await send(queueUrl, "new");
    await receive(queueUrl, { VisibilityTimeout: 0 });
    await receive(queueUrl); // "new" reaches the DLQ after the task started
    await sleep(200);
    expect((await tasks(arnOf("jobs-dlq")))[0]?.Status).toBe("RUNNING");
    expect(await settled(arnOf("jobs-dlq"))).toMatchObject({
      Status: "COMPLETED",
      ApproximateNumberOfMessagesMoved: 1,
    });
    expect(aws.queueMessages("jobs").map((m) => m.body)).toEqual(["old"]);
    expect(aws.queueMessages("jobs-dlq").map((m) => m.body)).toEqual(["new"]);
  });
});

describe("local DynamoDB (dynalite)", () => {
  const key = { pk: { S: "org#10234695" }, sk: { S: "minute#29000000" } };
  /** takes one call of a minute budget of 2, as the ledger does: ADD under a condition */
  const takeCall = (TableName: string) =>
    dynamodb.send(
      new UpdateItemCommand({
        TableName,
        Key: key,
        UpdateExpression: "ADD calls :one SET expires_at = if_not_exists(expires_at, :expiry)",
        ConditionExpression: "attribute_not_exists(calls) OR calls < :limit",
        ExpressionAttributeValues: {
          ":one": { N: "1" },
          ":limit": { N: "2" },
          ":expiry": { N: "1" },
        },
        ReturnValues: "ALL_NEW",
      }),
    );

  it("creates the ledger table from its definition, ACTIVE at once", async () => {
    const table = await createLedgerTable(dynamodb, "ledger");
    const { Table } = await dynamodb.send(new DescribeTableCommand({ TableName: table }));
    expect(Table).toMatchObject({
      TableName: "ledger",
      TableStatus: "ACTIVE",
      KeySchema: [
        { AttributeName: "pk", KeyType: "HASH" },
        { AttributeName: "sk", KeyType: "RANGE" },
      ],
      BillingModeSummary: { BillingMode: "PAY_PER_REQUEST" },
      TableArn: "arn:aws:dynamodb:us-east-1:000000000000:table/ledger",
    });
    // a second create keeps the table
    expect(await createLedgerTable(dynamodb, "ledger")).toBe("ledger");
  });

  it("applies a conditional ADD until its condition fails, and reads it back consistently", async () => {
    await createLedgerTable(dynamodb, "ledger");
    expect((await takeCall("ledger")).Attributes?.calls).toEqual({ N: "1" });
    expect((await takeCall("ledger")).Attributes?.calls).toEqual({ N: "2" });
    const refused = takeCall("ledger");
    await expect(refused).rejects.toBeInstanceOf(ConditionalCheckFailedException);
    await expect(refused).rejects.toMatchObject({
      name: "ConditionalCheckFailedException",
      message: "The conditional request failed",
      $metadata: { httpStatusCode: 400 },
    });

    const { Item } = await dynamodb.send(
      new GetItemCommand({ TableName: "ledger", Key: key, ConsistentRead: true }),
    );
    expect(Item).toEqual({ ...key, calls: { N: "2" }, expires_at: { N: "1" } });
    // dynalite keeps items past their TTL (so may AWS, for hours): readers check expires_at
    expect(Number(Item?.expires_at?.N)).toBeLessThan(Date.now() / 1000);
    expect(aws.stats().calls).toMatchObject({
      "DynamoDB_20120810.UpdateItem": 3,
      "DynamoDB_20120810.GetItem": 1,
    });
  });

  it("returns the item with a failed condition when asked (ReturnValuesOnConditionCheckFailure ALL_OLD), and only then", async () => {
    await createLedgerTable(dynamodb, "ledger");
    await takeCall("ledger");
    await takeCall("ledger");
    const update = (ask: boolean) =>
      dynamodb.send(
        new UpdateItemCommand({
          TableName: "ledger",
          Key: key,
          UpdateExpression: "ADD calls :one",
          ConditionExpression: "calls < :limit",
          ExpressionAttributeValues: { ":one": { N: "1" }, ":limit": { N: "2" } },
          ...(ask ? { ReturnValuesOnConditionCheckFailure: "ALL_OLD" as const } : {}),
        }),
      );
    const refused = (await update(true).catch(
      (e: unknown) => e,
    )) as ConditionalCheckFailedException;
    expect(refused).toBeInstanceOf(ConditionalCheckFailedException);
    expect(refused.Item).toEqual({ ...key, calls: { N: "2" }, expires_at: { N: "1" } });
    const plain = (await update(false).catch((e: unknown) => e)) as ConditionalCheckFailedException;
    expect(plain).toBeInstanceOf(ConditionalCheckFailedException);
    expect(plain.Item).toBeUndefined();
  });

  it("names its errors as DynamoDB does: validation, unknown table", async () => {
    await expect(
      dynamodb.send(new GetItemCommand({ TableName: "no spaces!", Key: key })),
    ).rejects.toMatchObject({
      name: "ValidationException",
      message: expect.stringContaining(
        "Value 'no spaces!' at 'tableName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
      ),
      $metadata: { httpStatusCode: 400 },
    });
    await expect(
      dynamodb.send(new GetItemCommand({ TableName: "missing", Key: key })),
    ).rejects.toMatchObject({ name: "ResourceNotFoundException" });
  });

  it("forgets its tables on reset(), and answers 503 while unavailable", async () => {
    await createLedgerTable(dynamodb, "ledger");
    aws.reset();
    await expect(
      dynamodb.send(new DescribeTableCommand({ TableName: "ledger" })),
    ).rejects.toMatchObject({ name: "ResourceNotFoundException" });

    aws.faults.dynamoDbUnavailable = true;
    await expect(
      dynamodb.send(new DescribeTableCommand({ TableName: "ledger" })),
    ).rejects.toMatchObject({ $metadata: { httpStatusCode: 503 } });
  });

  it("throttles as DynamoDB does: HTTP 400 ProvisionedThroughputExceededException, retried by the SDK first", async () => {
    await createLedgerTable(dynamodb, "ledger");
    aws.faults.dynamoDbThrottled = true;
    const before = aws.stats().calls["DynamoDB_20120810.GetItem"] ?? 0;
    const retrying = clientsFor(aws.url, 2).dynamodb;
    await expect(
      retrying.send(new GetItemCommand({ TableName: "ledger", Key: key })),
    ).rejects.toMatchObject({
      name: "ProvisionedThroughputExceededException",
      $metadata: { httpStatusCode: 400, attempts: 2 },
    });
    expect((aws.stats().calls["DynamoDB_20120810.GetItem"] ?? 0) - before).toBe(2);
    aws.faults.dynamoDbThrottled = false;
    await expect(
      retrying.send(new GetItemCommand({ TableName: "ledger", Key: key })),
    ).resolves.toBeDefined();
  });
});

describe("local EventBridge", () => {
  const entry = (detail: object, more: Partial<PutEventsRequestEntry> = {}) => ({
    Source: "zoho-contact-status",
    DetailType: "ContactStatusChanged",
    Detail: JSON.stringify(detail),
    ...more,
  });
  /** an entry's size as EventBridge's "Calculating PutEvents event entry size" computes it */
  const entrySize = (e: PutEventsRequestEntry) =>
    (e.Time ? 14 : 0) +
    [e.Source, e.DetailType, e.Detail, ...(e.Resources ?? [])].reduce(
      (size, text) => size + Buffer.byteLength(text ?? "", "utf8"),
      0,
    );
  const put = (...Entries: PutEventsRequestEntry[]) =>
    events.send(new PutEventsCommand({ Entries }));

  it("records a put on the default bus, and on a named bus by name or ARN", async () => {
    const time = new Date("2025-03-01T10:00:00Z");
    const onDefault = await put(
      entry({ contact_id: "1", outcome: "activated" }),
      entry({ contact_id: "2" }, { Time: time }),
    );
    expect(onDefault.FailedEntryCount).toBe(0);
    expect(onDefault.Entries).toEqual([
      { EventId: expect.any(String) },
      { EventId: expect.any(String) },
    ]);
    expect(aws.events()).toEqual([
      {
        bus: "default",
        source: "zoho-contact-status",
        detailType: "ContactStatusChanged",
        detail: { contact_id: "1", outcome: "activated" },
        time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
        id: onDefault.Entries?.[0]?.EventId,
      },
      expect.objectContaining({
        time: "2025-03-01T10:00:00Z",
        id: onDefault.Entries?.[1]?.EventId,
      }),
    ]);

    const { EventBusArn } = await events.send(new CreateEventBusCommand({ Name: "outcomes" }));
    expect(EventBusArn).toBe(`arn:aws:events:us-east-1:${ACCOUNT}:event-bus/outcomes`);
    await expect(
      events.send(new CreateEventBusCommand({ Name: "outcomes" })),
    ).rejects.toMatchObject({
      name: "ResourceAlreadyExistsException",
      message: "Event bus outcomes already exists.",
    });
    expect(await events.send(new DescribeEventBusCommand({ Name: EventBusArn }))).toMatchObject({
      Name: "outcomes",
      Arn: EventBusArn,
      CreationTime: expect.any(Date),
    });
    await put(
      entry({ n: 1 }, { EventBusName: "outcomes" }),
      entry({ n: 2 }, { EventBusName: EventBusArn }),
    );
    expect(aws.events("outcomes").map((event) => event.detail)).toEqual([{ n: 1 }, { n: 2 }]);
    expect(aws.events(EventBusArn)).toHaveLength(2);
    expect(aws.events("default")).toHaveLength(2);
    expect(aws.stats().calls).toMatchObject({
      "AWSEvents.PutEvents": 2,
      "AWSEvents.CreateEventBus": 2,
    });
  });

  it("refuses a request of 0 or 11 entries, or over 256 KiB as EventBridge counts it", async () => {
    await expect(put()).rejects.toMatchObject({
      name: "ValidationException",
      $metadata: { httpStatusCode: 400 },
    });
    const eleven = Array.from({ length: 11 }, (_, i) => entry({ i }));
    await expect(put(...eleven)).rejects.toMatchObject({
      name: "ValidationException",
      message: expect.stringMatching(
        /^1 validation error detected: Value '\[PutEventsRequestEntry\(.*\)\]' at 'entries' failed to satisfy constraint: Member must have length less than or equal to 10$/,
      ),
    });
    expect(await put(...eleven.slice(0, 10))).toMatchObject({ FailedEntryCount: 0 });

    // Source, DetailType and Detail's UTF-8 bytes, 14 for a Time: exactly 256 KiB passes
    const source = "zoho-contact-status";
    const detailType = "ContactStatusChanged";
    const room = 256 * 1024 - source.length - detailType.length - 14 - '{"p":""}'.length;
    // é is 2 bytes in UTF-8
    const text = "é".repeat(Math.floor(room / 2)) + "x".repeat(room % 2);
    const full = entry({ p: text }, { Time: new Date() });
    expect(entrySize(full)).toBe(256 * 1024);
    expect(await put(full)).toMatchObject({ FailedEntryCount: 0 });
    await expect(put(full, entry({}))).rejects.toMatchObject({
      name: "ValidationException",
      message: "Total size of the entries in the request is over the limit.",
    });
    expect(aws.events()).toHaveLength(11);
  });

  it("fails an entry without Detail, or with a Detail that is not a JSON object, and puts the others", async () => {
    const result = await put(
      entry({ ok: 1 }),
      { Source: "zoho-contact-status", DetailType: "ContactStatusChanged" },
      entry({ ok: 2 }, { Detail: "[]" }),
      entry({ ok: 3 }, { Source: "" }),
      entry({ ok: 4 }),
    );
    expect(result.FailedEntryCount).toBe(3);
    expect(result.Entries).toEqual([
      { EventId: expect.any(String) },
      {
        ErrorCode: "InvalidArgument",
        ErrorMessage: "Parameter Detail is not valid. Reason: Detail is a required argument.",
      },
      { ErrorCode: "MalformedDetail", ErrorMessage: "Detail is malformed." },
      {
        ErrorCode: "InvalidArgument",
        ErrorMessage: "Parameter Source is not valid. Reason: Source is a required argument.",
      },
      { EventId: expect.any(String) },
    ]);
    expect(aws.events().map((event) => event.detail)).toEqual([{ ok: 1 }, { ok: 4 }]);
  });

  it("answers an entry for a bus that does not exist with an EventId, and drops it, as AWS does", async () => {
    const result = await put(entry({ lost: true }, { EventBusName: "missing" }));
    expect(result).toMatchObject({
      FailedEntryCount: 0,
      Entries: [{ EventId: expect.any(String) }],
    });
    expect(aws.events()).toEqual([]);
    await expect(
      events.send(new DescribeEventBusCommand({ Name: "missing" })),
    ).rejects.toMatchObject({
      name: "ResourceNotFoundException",
      message: "Event bus missing does not exist.",
    });

    // a deleted bus is gone too; the default bus cannot be deleted
    await events.send(new CreateEventBusCommand({ Name: "outcomes" }));
    await events.send(new DeleteEventBusCommand({ Name: "outcomes" }));
    await events.send(new DeleteEventBusCommand({ Name: "outcomes" })); // succeeds, as in AWS
    await put(entry({}, { EventBusName: "outcomes" }));
    expect(aws.events()).toEqual([]);
    await expect(events.send(new DeleteEventBusCommand({ Name: "default" }))).rejects.toMatchObject(
      { name: "ValidationException", message: "Cannot delete event bus default." },
    );
    expect((await events.send(new DescribeEventBusCommand({}))).Name).toBe("default");
  });

  it("answers 503 ServiceUnavailable while unavailable, recording nothing", async () => {
    aws.faults.eventBridgeUnavailable = true;
    const retrying = clientsFor(aws.url, 2).events;
    await expect(
      retrying.send(new PutEventsCommand({ Entries: [entry({})] })),
    ).rejects.toMatchObject({
      name: "ServiceUnavailable",
      $fault: "server",
      $metadata: { httpStatusCode: 503, attempts: 2 },
    });
    expect(aws.stats().calls["AWSEvents.PutEvents"]).toBe(2);
    expect(aws.events()).toEqual([]);
    aws.faults.eventBridgeUnavailable = false;
    expect((await put(entry({}))).FailedEntryCount).toBe(0);
  });

  it("forgets its events and named buses on reset(), keeping the default bus", async () => {
    await events.send(new CreateEventBusCommand({ Name: "outcomes" }));
    await put(entry({ a: 1 }), entry({ b: 2 }, { EventBusName: "outcomes" }));
    expect(aws.events()).toHaveLength(2);
    aws.reset();
    expect(aws.events()).toEqual([]);
    await expect(
      events.send(new DescribeEventBusCommand({ Name: "outcomes" })),
    ).rejects.toMatchObject({ name: "ResourceNotFoundException" });
    await put(entry({ c: 3 }));
    expect(aws.events().map((event) => event.bus)).toEqual(["default"]);
  });
});

describe("inspection and faults over HTTP", () => {
  const local = (path: string, init?: RequestInit) => fetch(`${aws.url}/__local/${path}`, init);

  it("shows queues, secrets and call counts, switches faults, and resets", async () => {
    const queueUrl = await createQueue("jobs");
    await send(queueUrl, "x");
    await sm.send(new CreateSecretCommand({ Name: "zoho/books", SecretString: '{"a":1}' }));
    expect(await (await local("queues/jobs/messages")).json()).toMatchObject([
      { body: "x", receiveCount: 0, visible: true, attributes: { SenderId: ACCOUNT } },
    ]);
    expect(await (await local("secrets/zoho/books")).text()).toBe('{"a":1}');
    await createLedgerTable(dynamodb, "ledger");
    await dynamodb.send(
      new UpdateItemCommand({
        TableName: "ledger",
        Key: { pk: { S: "org#1" }, sk: { S: "daily" } },
        UpdateExpression: "SET remaining = :n",
        ExpressionAttributeValues: { ":n": { N: "999" } },
      }),
    );
    expect(await (await local("tables/ledger/items")).json()).toEqual({
      Items: [{ pk: { S: "org#1" }, sk: { S: "daily" }, remaining: { N: "999" } }],
    });
    expect((await local("tables/missing/items")).status).toBe(404);
    await events.send(new CreateEventBusCommand({ Name: "outcomes" }));
    const { Entries } = await events.send(
      new PutEventsCommand({
        Entries: [
          { Source: "s", DetailType: "t", Detail: '{"a":1}' },
          { Source: "s", DetailType: "t", Detail: '{"b":2}', EventBusName: "outcomes" },
        ],
      }),
    );
    expect(await (await local("events")).json()).toMatchObject([
      { bus: "default", source: "s", detailType: "t", detail: { a: 1 }, id: Entries?.[0]?.EventId },
      { bus: "outcomes", detail: { b: 2 }, id: Entries?.[1]?.EventId },
    ]);
    expect(await (await local("events?bus=outcomes")).json()).toMatchObject([{ detail: { b: 2 } }]);

    const patched = await local("faults", {
      method: "PATCH",
      body: JSON.stringify({ sqsUnavailable: true }),
    });
    expect(await patched.json()).toEqual({
      secretsManagerUnavailable: false,
      sqsUnavailable: true,
      dynamoDbUnavailable: false,
      dynamoDbThrottled: false,
      dynamoDbThrottleNext: 0,
      eventBridgeUnavailable: false,
      failBatchEntries: 0,
    });
    await expect(send(queueUrl, "y")).rejects.toMatchObject({
      name: "ServiceUnavailable",
      $metadata: { httpStatusCode: 503 },
    });
    expect((await local("faults", { method: "PATCH", body: '{"nope":1}' })).status).toBe(400);
    expect(await (await local("stats")).json()).toEqual({
      calls: {
        "AmazonSQS.CreateQueue": 1,
        "AmazonSQS.SendMessage": 2,
        "secretsmanager.CreateSecret": 1,
        // the inspection's own Scans are not counted
        "DynamoDB_20120810.CreateTable": 1,
        "DynamoDB_20120810.DescribeTable": 1,
        "DynamoDB_20120810.UpdateTimeToLive": 1,
        "DynamoDB_20120810.UpdateItem": 1,
        "AWSEvents.CreateEventBus": 1,
        "AWSEvents.PutEvents": 1,
      },
      secretReads: {},
      // as billed: the 503 answer is not; two events of one PutEvents
      usage: {
        dynamoDb: {
          readUnits: 0,
          writeUnits: 1,
          failedConditionalWrites: 0,
          throttles: 0,
          peakPartitionReadUnits: 0,
          peakPartitionWriteUnits: 1,
        },
        sqs: { requests: 2 },
        eventBridge: { events: 2 },
        secretsManager: { calls: 1 },
      },
    });
    expect((await local("reset", { method: "POST" })).status).toBe(200);
    const reset = (await (await local("stats")).json()) as { usage: { sqs: { requests: number } } };
    expect(reset.usage.sqs.requests).toBe(0);

    expect((await local("reset", { method: "POST" })).status).toBe(200);
    expect(aws.faults.sqsUnavailable).toBe(false);
    expect(aws.queueMessages("jobs")).toEqual([]);
    expect((await local("secrets/zoho/books")).status).toBe(404);
    expect(await (await local("events")).json()).toEqual([]);
  });
});
