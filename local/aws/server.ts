import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import {
  consumesCapacity,
  emptyUsage,
  eventBridgeBilledEvents,
  type LocalAwsUsage,
  PARTITION_LIMITS,
  PartitionMeter,
  sqsBilledRequests,
} from "./billing";
import { DYNAMODB_TARGET, DynamoDb } from "./dynamodb";
import { type BusEvent, EVENTBRIDGE_TARGET, EventBridge, eventBridgeError } from "./eventbridge";
import { AwsError, type Json, parseJsonObject } from "./protocol";
import { SecretsManager, secretsManagerError } from "./secrets-manager";
import { type QueueMessage, Sqs, sqsError } from "./sqs";

export interface LocalAwsOptions {
  /** 0 or absent: a free port */
  port?: number;
  region?: string;
  accountId?: string;
  /**
   * DynamoDB's throughput per partition (default 3,000 read and 1,000 write units a second):
   * beyond it a request is throttled, as a hot partition is
   */
  partitionLimits?: { readUnitsPerSecond: number; writeUnitsPerSecond: number };
}

export interface LocalAwsFaults {
  /**
   * Every Secrets Manager call answers HTTP 503 `ServiceUnavailable`: a server error the SDK
   * retries (up to its maxAttempts), then throws with that name.
   */
  secretsManagerUnavailable: boolean;
  /** Likewise for every SQS call. */
  sqsUnavailable: boolean;
  /** Likewise for every DynamoDB call (the ledger table unreachable). */
  dynamoDbUnavailable: boolean;
  /**
   * Every DynamoDB call is throttled as DynamoDB throttles: HTTP 400
   * `ProvisionedThroughputExceededException`, which the SDK retries with back-off, then throws.
   */
  dynamoDbThrottled: boolean;
  /** Likewise for the next N DynamoDB calls only (counts down). */
  dynamoDbThrottleNext: number;
  /** Likewise for every EventBridge call (PutEvents included: no event is recorded). */
  eventBridgeUnavailable: boolean;
  /** The next N SendMessageBatch entries answer Failed: Code `InternalError`, SenderFault false. */
  failBatchEntries: number;
}

export interface LocalAwsStats {
  /**
   * calls by X-Amz-Target, e.g. "secretsmanager.GetSecretValue", "DynamoDB_20120810.UpdateItem",
   * "AWSEvents.PutEvents", faulted ones included
   */
  calls: Record<string, number>;
  /** GetSecretValue calls by secret name */
  secretReads: Record<string, number>;
  /** the traffic as AWS would bill it: DynamoDB units, SQS requests, events, secret calls */
  usage: LocalAwsUsage;
}

export interface LocalAws {
  url: string;
  /** Stops the server; pending long polls answer at once, with no messages. */
  close(): Promise<void>;
  /** Forgets every secret, queue, table, event bus but `default`, event, call count and fault. */
  reset(): void;
  stats(): LocalAwsStats;
  /** a secret's current value, by name or ARN (not counted as a read) */
  secretValue(nameOrArn: string): string | undefined;
  /** a queue's messages, in flight and delayed ones included; [] for an unknown queue */
  queueMessages(queueName: string): QueueMessage[];
  /** Lets time pass for a queue: its delayed and in-flight messages become visible now. */
  endDelays(queueName: string): void;
  /**
   * the events PutEvents recorded, oldest first; only one bus's (by name or ARN) if given. An
   * entry for a bus that does not exist is answered with an EventId but dropped, as AWS does.
   */
  events(busName?: string): BusEvent[];
  /** fault switches, read on every call: set them directly */
  faults: LocalAwsFaults;
}

const NO_FAULTS: LocalAwsFaults = {
  secretsManagerUnavailable: false,
  sqsUnavailable: false,
  dynamoDbUnavailable: false,
  dynamoDbThrottled: false,
  dynamoDbThrottleNext: 0,
  eventBridgeUnavailable: false,
  failBatchEntries: 0,
};
const UNAVAILABLE = "The service is unavailable (a fault injected in the local AWS endpoint).";
/** DynamoDB's words for a throttled request (its API reference, ProvisionedThroughputExceededException) */
const THROTTLED =
  "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.";
const DYNAMODB_ERROR_PREFIX = "com.amazonaws.dynamodb.v20120810#";
/** where the endpoint's own DynamoDB client (the table inspection) sends its calls */
const INSPECTION_PATH = "/__local/dynamodb";

/**
 * The smallest faithful local AWS for this service: Secrets Manager (AWS JSON 1.1), SQS (AWS
 * JSON 1.0), DynamoDB (dynalite, see ./dynamodb.ts) and EventBridge (AWS JSON 1.1, see
 * ./eventbridge.ts) on one loopback endpoint, the service chosen by the `X-Amz-Target` header,
 * so the unmodified AWS SDK v3 clients reach it through `endpoint` or `AWS_ENDPOINT_URL`.
 * Credentials and signatures are not checked. Under `/__local/` it answers inspection and fault
 * switches:
 *
 *   GET /__local/stats                     {calls, secretReads, usage}
 *   POST /__local/reset
 *   PATCH /__local/faults                  a JSON merge into the faults; answers them
 *   GET /__local/queues/<name>/messages    the queue's messages
 *   GET /__local/secrets/<name or ARN>     the current SecretString, as text
 *   GET /__local/tables/<name>/items       the table's items (a Scan, in DynamoDB JSON)
 *   GET /__local/events[?bus=<name or ARN>] the events put on the buses (or on that one)
 *
 * @example
 * const aws = await startLocalAws();
 * const sqs = new SQSClient({ endpoint: aws.url, region: "us-east-1" });
 */
export async function startLocalAws(options: LocalAwsOptions = {}): Promise<LocalAws> {
  const region = options.region ?? "us-east-1";
  const accountId = options.accountId ?? "000000000000";
  const server = createServer();
  // Node's default keeps an idle connection 5 s, then closes it: a request the client sends on it
  // at that moment fails with "socket hang up" (ECONNRESET), which tests with one SDK attempt
  // cannot retry. Kept open here; close() ends them all.
  server.keepAliveTimeout = 10 * 60_000;
  server.listen(options.port ?? 0, "127.0.0.1");
  await once(server, "listening");
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const faults: LocalAwsFaults = { ...NO_FAULTS };
  const secrets = new SecretsManager(region, accountId);
  const sqs = new Sqs({ url, region, accountId, faults });
  const dynamoDb = new DynamoDb(`${url}${INSPECTION_PATH}`);
  const eventBridge = new EventBridge(region, accountId);
  let calls: Record<string, number> = {};
  let usage = emptyUsage();
  const meter = new PartitionMeter(options.partitionLimits ?? PARTITION_LIMITS);
  /** requests being answered: close() lets them finish */
  const answering = new Set<Promise<void>>();

  async function callAws(target: string, input: Json, signal: AbortSignal): Promise<Json> {
    const [service, operation = ""] = target.split(".");
    if (service === "secretsmanager") {
      calls[target] = (calls[target] ?? 0) + 1;
      usage.secretsManager.calls++;
      if (faults.secretsManagerUnavailable) {
        throw secretsManagerError("ServiceUnavailable", UNAVAILABLE, 503);
      }
      return secrets.handle(operation, input);
    }
    if (service === "AmazonSQS") {
      calls[target] = (calls[target] ?? 0) + 1;
      if (faults.sqsUnavailable) throw sqsError("ServiceUnavailable", UNAVAILABLE);
      // a refused request is billed too: counted before it may throw
      const billed = { operation, input, output: {} as Json };
      try {
        billed.output = await sqs.handle(operation, input, signal);
        return billed.output;
      } finally {
        usage.sqs.requests += sqsBilledRequests(operation, input, billed.output);
      }
    }
    if (service === EVENTBRIDGE_TARGET) {
      calls[target] = (calls[target] ?? 0) + 1;
      if (faults.eventBridgeUnavailable) {
        throw eventBridgeError("ServiceUnavailable", UNAVAILABLE, 503);
      }
      const output = eventBridge.handle(operation, input);
      usage.eventBridge.events += eventBridgeBilledEvents(operation, input);
      return output;
    }
    throw new AwsError(400, {
      __type: "UnknownOperationException",
      message: `No service answers X-Amz-Target "${target}" here.`,
    });
  }

  /** `/__local/…`: [status, body]; a string body is sent as text, anything else as JSON. */
  async function control(
    method: string,
    path: string,
    query: URLSearchParams,
    input: Json,
  ): Promise<[number, unknown]> {
    const queue = /^\/__local\/queues\/([^/]+)\/messages$/.exec(path)?.[1];
    const secret = /^\/__local\/secrets\/(.+)$/.exec(path)?.[1];
    const table = /^\/__local\/tables\/([^/]+)\/items$/.exec(path)?.[1];
    if (method === "GET" && path === "/__local/stats") return [200, local.stats()];
    if (method === "GET" && path === "/__local/events") {
      return [200, eventBridge.events(query.get("bus") ?? undefined)];
    }
    if (method === "POST" && path === "/__local/reset") {
      local.reset();
      return [200, { reset: true }];
    }
    if (method === "PATCH" && path === "/__local/faults") {
      const error = mergeFaults(faults, input);
      return error ? [400, { error }] : [200, faults];
    }
    if (method === "GET" && queue) return [200, sqs.messages(decodeURIComponent(queue))];
    if (method === "GET" && secret) {
      const value = secrets.value(decodeURIComponent(secret));
      return value === undefined ? [404, { error: "no such secret" }] : [200, value];
    }
    if (method === "GET" && table) {
      const items = await dynamoDb.items(decodeURIComponent(table));
      return items === undefined ? [404, { error: "no such table" }] : [200, { Items: items }];
    }
    return [404, { error: `no control endpoint ${method} ${path}` }];
  }

  async function answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { pathname: path, searchParams } = new URL(req.url ?? "/", url);
    const text = await readText(req);
    const input = text === "" ? {} : parseJsonObject(text);
    if (input === undefined) {
      return send(res, 400, {
        __type: "SerializationException",
        message: "The body is not a JSON object.",
      });
    }
    if (path.startsWith("/__local/")) {
      const [status, body] = await control(req.method ?? "GET", path, searchParams, input);
      return send(res, status, body);
    }
    // the client went away (an aborted long poll): stop waiting for messages on its behalf
    const left = new AbortController();
    res.once("close", () => left.abort());
    // answer in the protocol the client spoke: AWS JSON 1.0 for SQS, 1.1 for Secrets Manager
    // and EventBridge
    const contentType = String(req.headers["content-type"] ?? "application/x-amz-json-1.1");
    try {
      const output = await callAws(String(req.headers["x-amz-target"] ?? ""), input, left.signal);
      send(res, 200, output, { "content-type": contentType });
    } catch (error) {
      const failure =
        error instanceof AwsError
          ? error
          : new AwsError(500, { __type: "InternalFailure", message: String(error) });
      send(res, failure.status, failure.body, { "content-type": contentType, ...failure.headers });
    }
  }

  /**
   * DynamoDB: the body is read here, then handed to dynalite, asking it for the capacity each
   * request consumed (taken out of the answer again unless the client asked for it).
   */
  async function answerDynamoDb(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = String(req.headers["x-amz-target"]);
    const operation = target.slice(DYNAMODB_TARGET.length);
    // the inspection endpoint's own Scans are not calls of the service
    const inspection = req.url?.startsWith(INSPECTION_PATH) === true;
    if (!inspection) calls[target] = (calls[target] ?? 0) + 1;
    if (faults.dynamoDbUnavailable) {
      req.resume();
      return send(
        res,
        503,
        { __type: "com.amazon.coral.service#ServiceUnavailableException", message: UNAVAILABLE },
        { "content-type": "application/x-amz-json-1.0" },
      );
    }
    const throttled = () => {
      usage.dynamoDb.throttles++;
      send(
        res,
        400,
        {
          __type: `${DYNAMODB_ERROR_PREFIX}ProvisionedThroughputExceededException`,
          message: THROTTLED,
        },
        { "content-type": "application/x-amz-json-1.0" },
      );
    };
    if (faults.dynamoDbThrottled || faults.dynamoDbThrottleNext > 0) {
      if (faults.dynamoDbThrottleNext > 0) faults.dynamoDbThrottleNext--;
      req.resume();
      return throttled();
    }
    const text = await readText(req);
    const input = parseJsonObject(text);
    if (inspection || input === undefined) return dynamoDb.handle(req, res, text);
    if (operation === "CreateTable") meter.learnTable(input);
    if (!consumesCapacity(operation)) return dynamoDb.handle(req, res, text);
    const partitions = meter.partitions(operation, input);
    if (meter.exhausted(operation, partitions)) return throttled();
    const asked =
      input.ReturnConsumedCapacity === "TOTAL" || input.ReturnConsumedCapacity === "INDEXES";
    const body = asked ? text : JSON.stringify({ ...input, ReturnConsumedCapacity: "TOTAL" });
    return dynamoDb.handle(req, res, body, (status, answer) => {
      const output = parseJsonObject(answer) ?? {};
      const read =
        operation === "GetItem" ||
        operation === "Query" ||
        operation === "Scan" ||
        operation === "BatchGetItem";
      if (status !== 200) {
        // DynamoDB bills a write whose condition failed: one unit for an item under 1 KB
        if (!read && String(output.__type).endsWith("ConditionalCheckFailedException")) {
          usage.dynamoDb.writeUnits++;
          usage.dynamoDb.failedConditionalWrites++;
          meter.record(operation, partitions, 1);
        }
        return answer;
      }
      const consumed = [output.ConsumedCapacity ?? []].flat() as Json[];
      const units = consumed.reduce((sum, c) => sum + Number(c.CapacityUnits ?? 0), 0);
      if (read) usage.dynamoDb.readUnits += units;
      else usage.dynamoDb.writeUnits += units;
      meter.record(operation, partitions, units);
      if (asked) return answer;
      const { ConsumedCapacity: _, ...rest } = output;
      return JSON.stringify(rest);
    });
  }

  server.on("request", (req, res) => {
    const dynamo = String(req.headers["x-amz-target"] ?? "").startsWith(DYNAMODB_TARGET);
    const answered: Promise<void> = (dynamo ? answerDynamoDb(req, res) : answer(req, res))
      .catch(() => void res.destroy())
      .finally(() => answering.delete(answered));
    answering.add(answered);
  });

  const local: LocalAws = {
    url,
    faults,
    async close() {
      sqs.close();
      dynamoDb.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.allSettled(answering);
      server.closeAllConnections();
      await closed;
    },
    reset() {
      secrets.reset();
      sqs.reset();
      dynamoDb.reset();
      eventBridge.reset();
      calls = {};
      usage = emptyUsage();
      meter.reset();
      Object.assign(faults, NO_FAULTS);
    },
    stats: () => ({
      calls: { ...calls },
      secretReads: Object.fromEntries(secrets.reads),
      usage: {
        ...structuredClone(usage),
        dynamoDb: {
          ...usage.dynamoDb,
          peakPartitionReadUnits: meter.peak.read,
          peakPartitionWriteUnits: meter.peak.write,
        },
      },
    }),
    secretValue: (nameOrArn) => secrets.value(nameOrArn),
    queueMessages: (queueName) => sqs.messages(queueName),
    endDelays: (queueName) => sqs.endDelays(queueName),
    events: (busName) => eventBridge.events(busName),
  };
  return local;
}

/** Applies a JSON merge patch to the faults; says what is wrong with it, if anything. */
function mergeFaults(faults: LocalAwsFaults, patch: Json): string | undefined {
  for (const [key, value] of Object.entries(patch)) {
    const current = faults[key as keyof LocalAwsFaults];
    if (current === undefined || typeof value !== typeof current) {
      return `unknown fault, or not a ${typeof current}: ${key}`;
    }
    if (key === "failBatchEntries" && !(Number.isInteger(value) && (value as number) >= 0)) {
      return "failBatchEntries is a count";
    }
  }
  Object.assign(faults, patch);
  return undefined;
}

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.destroyed) return;
  const text = typeof body === "string";
  res.writeHead(status, {
    "content-type": text ? "text/plain; charset=utf-8" : "application/json",
    "x-amzn-requestid": randomUUID(),
    ...headers,
  });
  res.end(text ? body : JSON.stringify(body));
}

async function readText(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}
