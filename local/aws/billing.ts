import { entrySize } from "./eventbridge";
import type { Json } from "./protocol";
import { messageBytes } from "./sqs";

/**
 * What the local endpoint's traffic would be billed as in AWS, counted as AWS counts it, so the
 * benchmark can price a job from requests it really made.
 */
export interface LocalAwsUsage {
  dynamoDb: {
    /** read request units: 4 KB of item a strongly consistent read, half that eventually consistent */
    readUnits: number;
    /** write request units: 1 KB of item a write (the larger of the item before and after) */
    writeUnits: number;
    /** conditional writes whose condition failed: billed too, one unit each (items under 1 KB) */
    failedConditionalWrites: number;
    /** requests answered ProvisionedThroughputExceededException (injected, or over a partition's limit) */
    throttles: number;
    /** the most units one partition key took in one second, reads and writes */
    peakPartitionReadUnits: number;
    peakPartitionWriteUnits: number;
  };
  /** SQS requests as billed: each 64 KB chunk of a request's payload is one request */
  sqs: { requests: number };
  /** EventBridge events as billed: each 64 KB chunk of a PutEvents entry is one event */
  eventBridge: { events: number };
  /** Secrets Manager API calls (billed per 10,000) */
  secretsManager: { calls: number };
}

export function emptyUsage(): LocalAwsUsage {
  return {
    dynamoDb: {
      readUnits: 0,
      writeUnits: 0,
      failedConditionalWrites: 0,
      throttles: 0,
      peakPartitionReadUnits: 0,
      peakPartitionWriteUnits: 0,
    },
    sqs: { requests: 0 },
    eventBridge: { events: 0 },
    secretsManager: { calls: 0 },
  };
}

/** SQS and EventBridge bill a payload in chunks of 64 KB (65,536 bytes). */
const CHUNK_BYTES = 65_536;
const chunks = (bytes: number) => Math.max(1, Math.ceil(bytes / CHUNK_BYTES));

/**
 * One SQS request as billed: the 64 KB chunks of the messages it sends (every entry of a batch
 * together) or receives; any other action is one request.
 */
export function sqsBilledRequests(operation: string, input: Json, output: Json): number {
  if (operation === "SendMessage") return chunks(messageBytes(input));
  if (operation === "SendMessageBatch") {
    const entries = Array.isArray(input.Entries) ? (input.Entries as Json[]) : [];
    return chunks(entries.reduce((sum, entry) => sum + messageBytes(entry), 0));
  }
  if (operation === "ReceiveMessage") {
    const messages = Array.isArray(output.Messages) ? (output.Messages as Json[]) : [];
    const bytes = messages.reduce(
      (sum, m) =>
        sum + messageBytes({ MessageBody: m.Body, MessageAttributes: m.MessageAttributes ?? {} }),
      0,
    );
    return chunks(bytes);
  }
  return 1;
}

/** PutEvents as billed: each entry's 64 KB chunks (EventBridge's own entry size). */
export function eventBridgeBilledEvents(operation: string, input: Json): number {
  if (operation !== "PutEvents" || !Array.isArray(input.Entries)) return 0;
  return (input.Entries as Json[]).reduce((sum, entry) => sum + chunks(entrySize(entry)), 0);
}

/** DynamoDB's throughput per partition: 3,000 read units and 1,000 write units a second. */
export const PARTITION_LIMITS = { readUnitsPerSecond: 3_000, writeUnitsPerSecond: 1_000 };

const READS = new Set(["GetItem", "Query", "Scan", "BatchGetItem"]);
const WRITES = new Set(["PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"]);

/** The operations that take ReturnConsumedCapacity (dynalite has no transactions). */
export function consumesCapacity(operation: string): boolean {
  return READS.has(operation) || WRITES.has(operation);
}

type AttributeValue = Record<string, unknown>;

/**
 * The units each partition used in the current second, against DynamoDB's per-partition limits:
 * a request to a partition that has used its second's units is throttled, as DynamoDB throttles
 * a hot partition. A partition here is one partition-key value, which is stricter than DynamoDB
 * (whose partitions hold many keys, and split a hot key's items by sort key) and has no burst
 * capacity: a design that stays under these limits stays under DynamoDB's.
 */
export class PartitionMeter {
  /** table name → its partition key attribute, from the CreateTable requests seen */
  readonly #hashKeys = new Map<string, string>();
  /** `table partition` → the second and the units used in it */
  #seconds = new Map<string, { second: number; read: number; write: number }>();
  /** the most units one partition took in one second */
  readonly peak = { read: 0, write: 0 };

  constructor(
    readonly limits: { readUnitsPerSecond: number; writeUnitsPerSecond: number },
    readonly now: () => number = Date.now,
  ) {}

  /** A CreateTable request: remembers the table's partition key. */
  learnTable(input: Json): void {
    const schema = Array.isArray(input.KeySchema) ? (input.KeySchema as Json[]) : [];
    const hash = schema.find((k) => k.KeyType === "HASH")?.AttributeName;
    if (typeof input.TableName === "string" && typeof hash === "string")
      this.#hashKeys.set(input.TableName, hash);
  }

  /** The partitions (`table partition`) a request reads or writes; [] when unknown (a Scan). */
  partitions(operation: string, input: Json): string[] {
    const table = typeof input.TableName === "string" ? input.TableName : "";
    const one = (item: unknown) => this.#partition(table, item);
    switch (operation) {
      case "GetItem":
      case "UpdateItem":
      case "DeleteItem":
        return one(input.Key);
      case "PutItem":
        return one(input.Item);
      case "Query":
        return this.#queried(table, input);
      case "BatchWriteItem":
      case "BatchGetItem":
        return Object.entries((input.RequestItems ?? {}) as Record<string, unknown>).flatMap(
          ([name, requests]) =>
            operation === "BatchGetItem"
              ? ((requests as Json).Keys as unknown[]).flatMap((key) => this.#partition(name, key))
              : (requests as Json[]).flatMap((r) =>
                  this.#partition(
                    name,
                    (r.PutRequest as Json | undefined)?.Item ??
                      (r.DeleteRequest as Json | undefined)?.Key,
                  ),
                ),
        );
      default:
        return [];
    }
  }

  /** Whether any of the partitions has used this second's units of the request's kind. */
  exhausted(operation: string, partitions: readonly string[]): boolean {
    const second = Math.floor(this.now() / 1000);
    const write = WRITES.has(operation);
    const limit = write ? this.limits.writeUnitsPerSecond : this.limits.readUnitsPerSecond;
    return partitions.some((p) => {
      const used = this.#seconds.get(p);
      return used?.second === second && (write ? used.write : used.read) >= limit;
    });
  }

  /** Counts a request's units against its partitions, shared evenly among them. */
  record(operation: string, partitions: readonly string[], units: number): void {
    if (partitions.length === 0 || units <= 0) return;
    const second = Math.floor(this.now() / 1000);
    for (const p of partitions) {
      let used = this.#seconds.get(p);
      if (used?.second !== second) {
        used = { second, read: 0, write: 0 };
        this.#seconds.set(p, used);
      }
      if (WRITES.has(operation)) used.write += units / partitions.length;
      else used.read += units / partitions.length;
      this.peak.read = Math.max(this.peak.read, used.read);
      this.peak.write = Math.max(this.peak.write, used.write);
    }
    // forget the seconds gone by, so a long run keeps only the partitions of this second
    if (this.#seconds.size > 10_000)
      this.#seconds = new Map([...this.#seconds].filter(([, u]) => u.second === second));
  }

  reset(): void {
    this.#hashKeys.clear();
    this.#seconds.clear();
    Object.assign(this.peak, { read: 0, write: 0 });
  }

  #partition(table: string, item: unknown): string[] {
    const hash = this.#hashKeys.get(table);
    const value = hash === undefined ? undefined : (item as Json | undefined)?.[hash];
    return value === undefined ? [] : [`${table} ${JSON.stringify(value)}`];
  }

  /** A Query's partition: the value its key condition gives the partition key. */
  #queried(table: string, input: Json): string[] {
    const hash = this.#hashKeys.get(table);
    if (hash === undefined) return [];
    const names = (input.ExpressionAttributeNames ?? {}) as Record<string, string>;
    const values = (input.ExpressionAttributeValues ?? {}) as Record<string, AttributeValue>;
    const condition =
      typeof input.KeyConditionExpression === "string" ? input.KeyConditionExpression : "";
    for (const [, name, placeholder] of condition.matchAll(/([#\w]+)\s*=\s*(:\w+)/g)) {
      const attribute = name?.startsWith("#") ? names[name] : name;
      const value = placeholder === undefined ? undefined : values[placeholder];
      if (attribute === hash && value !== undefined) return [`${table} ${JSON.stringify(value)}`];
    }
    const legacy = (input.KeyConditions as Json | undefined)?.[hash] as Json | undefined;
    const first = (legacy?.AttributeValueList as unknown[] | undefined)?.[0];
    return first === undefined ? [] : [`${table} ${JSON.stringify(first)}`];
  }
}
