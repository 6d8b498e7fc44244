import {
  ConditionalCheckFailedException,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import { EventBridgeClient, PutEventsCommand } from "@aws-sdk/client-eventbridge";
import {
  CreateSecretCommand,
  GetSecretValueCommand,
  SecretsManagerClient,
} from "@aws-sdk/client-secrets-manager";
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type LocalAws, PartitionMeter, startLocalAws } from "../../local/aws";
import { createLedgerTable } from "../../local/stack/ledger-table";

// What the local endpoint counts as AWS would bill it (the cost benchmark prices a job from it),
// and DynamoDB's per-partition throughput, enforced.
let aws: LocalAws;
let client: ReturnType<typeof clientsFor>;

function clientsFor(endpoint: string) {
  const config = {
    endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
    maxAttempts: 1,
  };
  return {
    dynamodb: new DynamoDBClient(config),
    sqs: new SQSClient(config),
    events: new EventBridgeClient(config),
    sm: new SecretsManagerClient(config),
  };
}

beforeAll(async () => {
  aws = await startLocalAws();
  client = clientsFor(aws.url);
});
afterAll(() => aws.close());
beforeEach(() => aws.reset());

const usage = () => aws.stats().usage;
const key = (pk: string, sk = "item") => ({ pk: { S: pk }, sk: { S: sk } });

describe("DynamoDB capacity units, as DynamoDB computes them from item sizes", () => {
  it("bills a write by the KB of the larger item, a read by 4 KB, half when eventually consistent", async () => {
    await createLedgerTable(client.dynamodb, "ledger");
    // a small update: 1 write unit
    await client.dynamodb.send(
      new UpdateItemCommand({
        TableName: "ledger",
        Key: key("org#1", "minute#1"),
        UpdateExpression: "ADD calls :one",
        ExpressionAttributeValues: { ":one": { N: "1" } },
      }),
    );
    expect(usage().dynamoDb).toMatchObject({ writeUnits: 1, readUnits: 0 });
    // 5,000 bytes of payload: 5 write units to put, 2 read units to read consistently, 1 eventually
    const big = { ...key("org#1", "big"), blob: { S: "x".repeat(5_000) } };
    await client.dynamodb.send(new PutItemCommand({ TableName: "ledger", Item: big }));
    expect(usage().dynamoDb.writeUnits).toBe(1 + 5);
    const read = await client.dynamodb.send(
      new GetItemCommand({ TableName: "ledger", Key: key("org#1", "big"), ConsistentRead: true }),
    );
    expect(usage().dynamoDb.readUnits).toBe(2);
    await client.dynamodb.send(
      new GetItemCommand({ TableName: "ledger", Key: key("org#1", "big") }),
    );
    expect(usage().dynamoDb.readUnits).toBe(3);
    // the client did not ask for the consumed capacity: the answer does not carry it
    expect(read.ConsumedCapacity).toBeUndefined();
    expect(read.Item?.blob?.S).toHaveLength(5_000);
  });

  it("answers the consumed capacity to a client that asks, and counts a Query's", async () => {
    await createLedgerTable(client.dynamodb, "ledger");
    const put = await client.dynamodb.send(
      new PutItemCommand({
        TableName: "ledger",
        Item: key("org#1", "pending#1"),
        ReturnConsumedCapacity: "TOTAL",
      }),
    );
    expect(put.ConsumedCapacity).toEqual({ TableName: "ledger", CapacityUnits: 1 });
    await client.dynamodb.send(
      new QueryCommand({
        TableName: "ledger",
        KeyConditionExpression: "#pk = :pk AND begins_with(#sk, :prefix)",
        ExpressionAttributeNames: { "#pk": "pk", "#sk": "sk" },
        ExpressionAttributeValues: { ":pk": { S: "org#1" }, ":prefix": { S: "pending#" } },
        ConsistentRead: true,
      }),
    );
    expect(usage().dynamoDb).toMatchObject({
      writeUnits: 1,
      readUnits: 1,
      peakPartitionWriteUnits: 1,
      peakPartitionReadUnits: 1,
    });
  });

  it("bills a conditional write whose condition failed one write unit", async () => {
    await createLedgerTable(client.dynamodb, "ledger");
    const take = () =>
      client.dynamodb.send(
        new UpdateItemCommand({
          TableName: "ledger",
          Key: key("org#1", "lease#0"),
          UpdateExpression: "SET holder = :h",
          ConditionExpression: "attribute_not_exists(holder)",
          ExpressionAttributeValues: { ":h": { S: "a" } },
        }),
      );
    await take();
    await expect(take()).rejects.toBeInstanceOf(ConditionalCheckFailedException);
    expect(usage().dynamoDb).toMatchObject({ writeUnits: 2, failedConditionalWrites: 1 });
  });
});

describe("DynamoDB's per-partition throughput", () => {
  it("throttles a partition key past its write units in a second; another key is not", async () => {
    const strict = await startLocalAws({
      partitionLimits: { readUnitsPerSecond: 3_000, writeUnitsPerSecond: 5 },
    });
    try {
      const { dynamodb } = clientsFor(strict.url);
      await createLedgerTable(dynamodb, "ledger");
      const write = (pk: string) =>
        dynamodb.send(
          new UpdateItemCommand({
            TableName: "ledger",
            Key: key(pk, "minute#1"),
            UpdateExpression: "ADD calls :one",
            ExpressionAttributeValues: { ":one": { N: "1" } },
          }),
        );
      // 12 in a burst: however the seconds fall, one second holds 6 or more
      const results = [];
      for (let i = 0; i < 12; i++)
        results.push(
          await write("org#hot").then(
            () => "ok",
            (e) => e.name,
          ),
        );
      const refused = results.filter((r) => r === "ProvisionedThroughputExceededException");
      expect(refused.length).toBeGreaterThan(0);
      expect(results.filter((r) => r === "ok").length).toBeLessThanOrEqual(10);
      expect(strict.stats().usage.dynamoDb.throttles).toBe(refused.length);
      await expect(write("org#cold")).resolves.toBeDefined();
    } finally {
      await strict.close();
    }
  });

  it("meters each partition key per second, reads and writes apart", () => {
    let now = 1_000_000;
    const meter = new PartitionMeter({ readUnitsPerSecond: 4, writeUnitsPerSecond: 2 }, () => now);
    meter.learnTable({ TableName: "t", KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }] });
    const hot = meter.partitions("UpdateItem", { TableName: "t", Key: { pk: { S: "a" } } });
    expect(hot).toEqual(['t {"S":"a"}']);
    meter.record("UpdateItem", hot, 1);
    expect(meter.exhausted("UpdateItem", hot)).toBe(false);
    meter.record("UpdateItem", hot, 1);
    expect(meter.exhausted("UpdateItem", hot)).toBe(true);
    // reads have their own units, other keys their own partition
    expect(meter.exhausted("GetItem", hot)).toBe(false);
    const other = meter.partitions("PutItem", { TableName: "t", Item: { pk: { S: "b" } } });
    expect(meter.exhausted("PutItem", other)).toBe(false);
    // a Query's partition is its key condition's
    expect(
      meter.partitions("Query", {
        TableName: "t",
        KeyConditionExpression: "#p = :v AND begins_with(sk, :s)",
        ExpressionAttributeNames: { "#p": "pk" },
        ExpressionAttributeValues: { ":v": { S: "a" }, ":s": { S: "x" } },
      }),
    ).toEqual(hot);
    now += 1_000; // the next second
    expect(meter.exhausted("UpdateItem", hot)).toBe(false);
  });
});

describe("SQS, EventBridge and Secrets Manager as billed", () => {
  it("bills SQS by 64 KB chunks of the payload: a batch together, a receive by what it returns", async () => {
    const { QueueUrl } = await client.sqs.send(new CreateQueueCommand({ QueueName: "q" }));
    const before = usage().sqs.requests; // CreateQueue: 1
    expect(before).toBe(1);
    await client.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: "y".repeat(100_000) }));
    expect(usage().sqs.requests).toBe(before + 2);
    await client.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl,
        Entries: Array.from({ length: 10 }, (_, i) => ({ Id: String(i), MessageBody: "small" })),
      }),
    );
    expect(usage().sqs.requests).toBe(before + 3);
    const { Messages = [] } = await client.sqs.send(
      new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 1 }),
    );
    expect(Messages[0]?.Body).toHaveLength(100_000);
    expect(usage().sqs.requests).toBe(before + 5);
    await client.sqs.send(
      new DeleteMessageCommand({ QueueUrl, ReceiptHandle: Messages[0]?.ReceiptHandle }),
    );
    expect(usage().sqs.requests).toBe(before + 6);
  });

  it("bills each PutEvents entry by its 64 KB chunks, and counts Secrets Manager calls", async () => {
    await client.events.send(
      new PutEventsCommand({
        Entries: [
          { Source: "s", DetailType: "t", Detail: JSON.stringify({ a: "z".repeat(70_000) }) },
          { Source: "s", DetailType: "t", Detail: "{}" },
        ],
      }),
    );
    expect(usage().eventBridge.events).toBe(3);
    await client.sm.send(new CreateSecretCommand({ Name: "s", SecretString: "{}" }));
    await client.sm.send(new GetSecretValueCommand({ SecretId: "s" }));
    expect(usage().secretsManager.calls).toBe(2);
  });
});
