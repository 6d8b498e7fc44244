import {
  CreateSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from "@aws-sdk/client-secrets-manager";
import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type LocalAws, startLocalAws } from "../local-aws";

let aws: LocalAws;
let sm: SecretsManagerClient;
let sqs: SQSClient;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  aws = await startLocalAws();
  const config = {
    endpoint: aws.url,
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
    maxAttempts: 1,
  };
  sm = new SecretsManagerClient(config);
  sqs = new SQSClient(config);
});
afterAll(() => aws.close());
beforeEach(() => aws.reset());

async function queueWithDlq(maxReceiveCount = 2, visibility = 1) {
  const dlq = await sqs.send(new CreateQueueCommand({ QueueName: "dlq" }));
  const dlqArn = (
    await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ["QueueArn"] }),
    )
  ).Attributes?.QueueArn;
  const queue = await sqs.send(
    new CreateQueueCommand({
      QueueName: "jobs",
      Attributes: {
        VisibilityTimeout: String(visibility),
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount }),
      },
    }),
  );
  return { queueUrl: queue.QueueUrl as string, dlqUrl: dlq.QueueUrl as string };
}

describe("local Secrets Manager", () => {
  it("creates, reads by name and ARN, replaces and describes a secret", async () => {
    const created = await sm.send(
      new CreateSecretCommand({ Name: "zoho/books", SecretString: '{"a":1}' }),
    );
    expect(created.ARN).toMatch(
      /^arn:aws:secretsmanager:us-east-1:000000000000:secret:zoho\/books-[0-9a-f]{6}$/,
    );
    expect((await sm.send(new GetSecretValueCommand({ SecretId: created.ARN }))).SecretString).toBe(
      '{"a":1}',
    );
    const put = await sm.send(
      new PutSecretValueCommand({ SecretId: "zoho/books", SecretString: '{"a":2}' }),
    );
    const read = await sm.send(new GetSecretValueCommand({ SecretId: "zoho/books" }));
    expect(read).toMatchObject({
      SecretString: '{"a":2}',
      VersionId: put.VersionId,
      VersionStages: ["AWSCURRENT"],
    });
    expect((await sm.send(new DescribeSecretCommand({ SecretId: "zoho/books" }))).Name).toBe(
      "zoho/books",
    );
    expect(aws.stats().secretReads).toEqual({ "zoho/books": 2 });
  });

  it("refuses to rewrite a version with other content, as the token store's lock needs", async () => {
    await sm.send(new CreateSecretCommand({ Name: "s", SecretString: "{}" }));
    const token = "a".repeat(64);
    await sm.send(
      new PutSecretValueCommand({
        SecretId: "s",
        SecretString: '{"lock":1}',
        ClientRequestToken: token,
      }),
    );
    // The same content again is idempotent; other content is refused.
    await sm.send(
      new PutSecretValueCommand({
        SecretId: "s",
        SecretString: '{"lock":1}',
        ClientRequestToken: token,
      }),
    );
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

  it("names a missing secret ResourceNotFoundException", async () => {
    await expect(sm.send(new GetSecretValueCommand({ SecretId: "nope" }))).rejects.toMatchObject({
      name: "ResourceNotFoundException",
    });
  });

  it("answers 503 while Secrets Manager is 'unavailable'", async () => {
    await sm.send(new CreateSecretCommand({ Name: "s", SecretString: "{}" }));
    aws.faults.secretsManagerUnavailable = true;
    await expect(sm.send(new GetSecretValueCommand({ SecretId: "s" }))).rejects.toMatchObject({
      $metadata: { httpStatusCode: 503 },
    });
  });
});

describe("local SQS", () => {
  it("sends and receives with message attributes, the SDK checking every MD5", async () => {
    const { queueUrl } = await queueWithDlq();
    const sent = await sqs.send(
      new SendMessageCommand({
        QueueUrl: queueUrl,
        MessageBody: '{"contact_id":"1"}',
        MessageAttributes: {
          error_code: { DataType: "String", StringValue: "CONTACT_NOT_FOUND" },
          zoho_code: { DataType: "Number", StringValue: "2" },
        },
      }),
    );
    // MD5 of these attributes as SQS computes it (from AWS's published algorithm).
    expect(sent.MD5OfMessageAttributes).toMatch(/^[0-9a-f]{32}$/);
    const received = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        MessageAttributeNames: ["All"],
        MessageSystemAttributeNames: ["All"],
      }),
    );
    const [message] = received.Messages ?? [];
    expect(message?.Body).toBe('{"contact_id":"1"}');
    expect(message?.MessageAttributes?.error_code?.StringValue).toBe("CONTACT_NOT_FOUND");
    expect(message?.MD5OfMessageAttributes).toBe(sent.MD5OfMessageAttributes);
    expect(message?.Attributes?.ApproximateReceiveCount).toBe("1");
  });

  it("answers a batch entry by entry, with injected failures", async () => {
    const { queueUrl } = await queueWithDlq();
    aws.faults.failBatchEntries = 1;
    const result = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: [
          { Id: "a", MessageBody: "1" },
          { Id: "b", MessageBody: "2" },
        ],
      }),
    );
    expect(result.Failed?.map((f) => f.Id)).toEqual(["a"]);
    expect(result.Successful?.map((s) => s.Id)).toEqual(["b"]);
    expect(aws.queueMessages("jobs").map((m) => m.body)).toEqual(["2"]);
  });

  it("hides a received message for its visibility timeout, then delivers it again with a higher count", async () => {
    const { queueUrl } = await queueWithDlq(5, 1);
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: "x" }));
    const receive = () =>
      sqs.send(
        new ReceiveMessageCommand({ QueueUrl: queueUrl, MessageSystemAttributeNames: ["All"] }),
      );
    expect((await receive()).Messages).toHaveLength(1);
    expect((await receive()).Messages ?? []).toHaveLength(0);
    await sleep(1100);
    expect((await receive()).Messages?.[0]?.Attributes?.ApproximateReceiveCount).toBe("2");
  });

  it("changes a message's visibility, and refuses a stale receipt handle", async () => {
    const { queueUrl } = await queueWithDlq(5, 30);
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: "x" }));
    const first = (await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl }))).Messages?.[0];
    await sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: queueUrl,
        ReceiptHandle: first?.ReceiptHandle,
        VisibilityTimeout: 0,
      }),
    );
    const second = (await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl })))
      .Messages?.[0];
    expect(second?.MessageId).toBe(first?.MessageId);
    await expect(
      sqs.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: queueUrl,
          ReceiptHandle: first?.ReceiptHandle,
          VisibilityTimeout: 5,
        }),
      ),
    ).rejects.toMatchObject({ name: "ReceiptHandleIsInvalid" });
  });

  it("deletes messages one by one and in batches", async () => {
    const { queueUrl } = await queueWithDlq(5, 30);
    for (const body of ["a", "b", "c"])
      await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }));
    const messages =
      (await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10 })))
        .Messages ?? [];
    await sqs.send(
      new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: messages[0]?.ReceiptHandle }),
    );
    await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: messages
          .slice(1)
          .map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
      }),
    );
    expect(aws.queueMessages("jobs")).toEqual([]);
  });

  it("moves a message to the DLQ once it was received maxReceiveCount times", async () => {
    const { queueUrl, dlqUrl } = await queueWithDlq(2, 0);
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: "poison" }));
    for (let i = 0; i < 2; i++) {
      expect(
        (await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl }))).Messages,
      ).toHaveLength(1);
    }
    expect(
      (await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl }))).Messages ?? [],
    ).toEqual([]);
    const parked = await sqs.send(new ReceiveMessageCommand({ QueueUrl: dlqUrl }));
    expect(parked.Messages?.[0]?.Body).toBe("poison");
  });

  it("returns a long poll as soon as a message arrives", async () => {
    const { queueUrl } = await queueWithDlq();
    const started = Date.now();
    const polling = sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 5 }));
    await sleep(200);
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: "late" }));
    expect((await polling).Messages?.[0]?.Body).toBe("late");
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("names a missing queue QueueDoesNotExist", async () => {
    await expect(
      sqs.send(
        new SendMessageCommand({ QueueUrl: `${aws.url}/000000000000/nope`, MessageBody: "x" }),
      ),
    ).rejects.toMatchObject({
      name: "QueueDoesNotExist",
    });
  });

  it("reports queue depth by visibility", async () => {
    const { queueUrl } = await queueWithDlq(5, 30);
    for (const body of ["a", "b"])
      await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }));
    await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl }));
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["All"] }),
    );
    expect(Attributes).toMatchObject({
      ApproximateNumberOfMessages: "1",
      ApproximateNumberOfMessagesNotVisible: "1",
    });
  });
});
