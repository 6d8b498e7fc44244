import { createHash, randomBytes, randomUUID } from "node:crypto";
import { AwsError, type Json } from "./protocol";

export type MessageAttributes = Record<
  string,
  { DataType: string; StringValue?: string; BinaryValue?: string }
>;

/** A message as the inspection API shows it. */
export interface QueueMessage {
  messageId: string;
  body: string;
  /** the system attributes ReceiveMessage would return */
  attributes: Record<string, string>;
  messageAttributes: MessageAttributes;
  receiveCount: number;
  visible: boolean;
}

interface Message {
  messageId: string;
  body: string;
  messageAttributes: MessageAttributes;
  sentAt: number;
  /** until then the message is delayed (never received yet) or in flight (received) */
  visibleAt: number;
  receiveCount: number;
  firstReceivedAt?: number;
  /** the latest receive: the 12-hour visibility limit counts from it */
  receivedAt?: number;
  /** the latest receive's handle: only it deletes the message or changes its visibility */
  receiptHandle?: string;
  /** the queue it came from, when redrive moved it to this dead-letter queue */
  deadLetterSourceArn?: string;
}

interface Queue {
  name: string;
  url: string;
  arn: string;
  /** the settable attributes, defaults included, as GetQueueAttributes returns them */
  attributes: Record<string, string>;
  createdAt: number;
  changedAt: number;
  messages: Message[];
  /** wake-ups of the long polls waiting on this queue */
  waiters: Set<() => void>;
}

/** A DLQ redrive (StartMessageMoveTask) and what it has done so far. */
interface MoveTask {
  taskHandle: string;
  source: Queue;
  destinationArn?: string;
  maxPerSecond?: number;
  status: "RUNNING" | "COMPLETED" | "CANCELLED" | "FAILED";
  failureReason?: string;
  startedAt: number;
  toMove: number;
  moved: number;
  /** the ids, in the source, of the messages it was started for and has not moved yet */
  pending: Set<string>;
  timer?: NodeJS.Timeout;
}

interface RedrivePolicy {
  deadLetterTargetArn: string;
  maxReceiveCount: number;
}

/** Settable integer attributes: [default, least, greatest], as SQS documents them. */
const INTEGER_ATTRIBUTES: Record<string, [number, number, number]> = {
  DelaySeconds: [0, 0, 900],
  MaximumMessageSize: [1_048_576, 1024, 1_048_576],
  MessageRetentionPeriod: [345_600, 60, 1_209_600],
  ReceiveMessageWaitTimeSeconds: [0, 0, 20],
  VisibilityTimeout: [30, 0, 43_200],
};
/** Settable attributes kept as given (RedrivePolicy is checked and normalized first). */
const TEXT_ATTRIBUTES = [
  "Policy",
  "RedrivePolicy",
  "RedriveAllowPolicy",
  "KmsMasterKeyId",
  "KmsDataKeyReusePeriodSeconds",
  "SqsManagedSseEnabled",
];
const COMPUTED_ATTRIBUTES = [
  "QueueArn",
  "ApproximateNumberOfMessages",
  "ApproximateNumberOfMessagesNotVisible",
  "ApproximateNumberOfMessagesDelayed",
  "CreatedTimestamp",
  "LastModifiedTimestamp",
];
/** Integer request parameters: the range SQS accepts, and the reason it gives otherwise. */
const PARAMETERS = {
  MaxNumberOfMessages: [1, 10, "Must be between 1 and 10, if provided."],
  WaitTimeSeconds: [0, 20, "Must be >= 0 and <= 20, if provided."],
  VisibilityTimeout: [0, 43_200, "Must be >= 0 and <= 43200, if provided."],
  DelaySeconds: [0, 900, "Must be >= 0 and <= 900, if provided."],
} as const;
const MAX_BATCH_BYTES = 1_048_576;
/** SQS's ceiling for MaxNumberOfMessagesPerSecond, and the rate used when none is given */
const MAX_MOVE_RATE = 500;
/** how often a running move task moves its next messages */
const MOVE_TICK_MS = 50;
const ARN = /^arn:[^:]+:[^:]+:[^:]*:[^:]*:.+$/;
/** how long a received message may stay in flight, all visibility changes together */
const MAX_VISIBILITY_MS = 43_200_000;
/** what SQS accepts in a body: #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF */
const INVALID_CHARACTER = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

type ErrorSpec = readonly [code: string, status: number, type?: string];

/**
 * SQS errors over the JSON protocol. `x-amzn-query-error` carries the code of the older query
 * protocol, which the SDK reads first to name the error; `__type` is the model's shape
 * (`com.amazonaws.sqs#<name>`) or, for errors outside the model, the shape AWS sends.
 */
const ERRORS = {
  QueueDoesNotExist: ["AWS.SimpleQueueService.NonExistentQueue", 400],
  QueueNameExists: ["QueueAlreadyExists", 400],
  ReceiptHandleIsInvalid: ["ReceiptHandleIsInvalid", 404],
  ResourceNotFoundException: ["ResourceNotFoundException", 404],
  InvalidAttributeName: ["InvalidAttributeName", 400],
  InvalidAttributeValue: ["InvalidAttributeValue", 400],
  InvalidMessageContents: ["InvalidMessageContents", 400],
  EmptyBatchRequest: ["AWS.SimpleQueueService.EmptyBatchRequest", 400],
  TooManyEntriesInBatchRequest: ["AWS.SimpleQueueService.TooManyEntriesInBatchRequest", 400],
  BatchEntryIdsNotDistinct: ["AWS.SimpleQueueService.BatchEntryIdsNotDistinct", 400],
  InvalidBatchEntryId: ["AWS.SimpleQueueService.InvalidBatchEntryId", 400],
  BatchRequestTooLong: ["AWS.SimpleQueueService.BatchRequestTooLong", 400],
  UnsupportedOperation: ["AWS.SimpleQueueService.UnsupportedOperation", 400],
  InvalidParameterValue: [
    "InvalidParameterValue",
    400,
    "com.amazon.coral.service#InvalidParameterValueException",
  ],
  MissingParameter: [
    "MissingParameter",
    400,
    "com.amazon.coral.service#MissingRequiredParameterException",
  ],
  InternalError: ["InternalError", 500, "InternalError"],
  ServiceUnavailable: ["ServiceUnavailable", 503, "ServiceUnavailable"],
} as const satisfies Record<string, ErrorSpec>;

export function sqsError(name: keyof typeof ERRORS, message: string): AwsError {
  const [code, status, type = `com.amazonaws.sqs#${name}`]: ErrorSpec = ERRORS[name];
  const fault = status < 500 ? "Sender" : "Receiver";
  return new AwsError(
    status,
    { __type: type, message },
    { "x-amzn-query-error": `${code};${fault}` },
  );
}

const invalidParameter = (message: string) => sqsError("InvalidParameterValue", message);
const md5 = (data: string) => createHash("md5").update(data).digest("hex");

/**
 * MD5OfMessageAttributes as SQS computes it: attributes by name, each name, type and value
 * prefixed by its 4-byte length, the value by a transport byte (1 string, 2 binary).
 */
function md5OfMessageAttributes(attributes: MessageAttributes): string {
  const hash = createHash("md5");
  const lengthPrefixed = (bytes: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    hash.update(length).update(bytes);
  };
  const byName = Object.entries(attributes).sort(([a], [b]) => (a < b ? -1 : 1));
  for (const [name, { DataType, StringValue, BinaryValue }] of byName) {
    lengthPrefixed(Buffer.from(name));
    lengthPrefixed(Buffer.from(DataType));
    const binary = DataType.startsWith("Binary");
    hash.update(Buffer.of(binary ? 2 : 1));
    lengthPrefixed(
      binary ? Buffer.from(BinaryValue ?? "", "base64") : Buffer.from(StringValue ?? ""),
    );
  }
  return hash.digest("hex");
}

export interface SqsOptions {
  /** the endpoint queue URLs are built on */
  url: string;
  region: string;
  accountId: string;
  /** shared with the server's fault switches: SendMessageBatch consumes `failBatchEntries` */
  faults: { failBatchEntries: number };
}

/**
 * SQS standard queues, as much as the service and its local event-source poller use: delays,
 * visibility timeouts, receive counts, redrive to a dead-letter queue after maxReceiveCount,
 * retention, long polling, batches, message attributes with the MD5s the SDK expects, and DLQ
 * redrive (StartMessageMoveTask, ListMessageMoveTasks, CancelMessageMoveTask). No FIFO queues,
 * DeleteQueue, tags, permissions or ListQueues paging.
 */
export class Sqs {
  readonly #queues = new Map<string, Queue>();
  /** every move task started, oldest first */
  #tasks: MoveTask[] = [];
  #closed = false;

  constructor(readonly options: SqsOptions) {}

  reset(): void {
    this.#stopTasks();
    const queues = [...this.#queues.values()];
    this.#queues.clear();
    for (const queue of queues) wake(queue);
  }

  /** Ends pending long polls now (they answer with no messages), and every later one at once. */
  close(): void {
    this.#closed = true;
    this.#stopTasks();
    for (const queue of this.#queues.values()) wake(queue);
  }

  #stopTasks(): void {
    for (const task of this.#tasks) clearInterval(task.timer);
    this.#tasks = [];
  }

  /** Lets time pass for one queue: its delayed and in-flight messages become visible now. */
  endDelays(queueName: string): void {
    const queue = this.#queues.get(queueName);
    if (!queue) return;
    const now = Date.now();
    for (const message of queue.messages) message.visibleAt = Math.min(message.visibleAt, now);
    wake(queue);
  }

  messages(queueName: string): QueueMessage[] {
    const queue = this.#queues.get(queueName);
    if (!queue) return [];
    const now = Date.now();
    return this.#expire(queue).map((message) => ({
      messageId: message.messageId,
      body: message.body,
      attributes: this.#systemAttributes(message),
      messageAttributes: message.messageAttributes,
      receiveCount: message.receiveCount,
      visible: message.visibleAt <= now,
    }));
  }

  async handle(operation: string, input: Json, signal?: AbortSignal): Promise<Json> {
    switch (operation) {
      case "CreateQueue":
        return this.#createQueue(input);
      case "GetQueueUrl":
        return { QueueUrl: this.#queueNamed(required(input, "QueueName")).url };
      case "ListQueues":
        return this.#listQueues(input);
      case "GetQueueAttributes":
        return { Attributes: this.#getAttributes(this.#queue(input), input.AttributeNames) };
      case "SetQueueAttributes":
        this.#setAttributes(this.#queue(input), this.#checkAttributes(input.Attributes));
        return {};
      case "SendMessage":
        return this.#send(this.#queue(input), input);
      case "SendMessageBatch":
        return this.#sendBatch(this.#queue(input), input);
      case "ReceiveMessage":
        return this.#receive(this.#queue(input), input, signal);
      case "DeleteMessage":
        this.#delete(this.#queue(input), required(input, "ReceiptHandle"));
        return {};
      case "DeleteMessageBatch": {
        const queue = this.#queue(input);
        return batch(input, "DeleteMessageBatchRequestEntry", (entry) => {
          this.#delete(queue, required(entry, "ReceiptHandle"));
          return {};
        });
      }
      case "ChangeMessageVisibility":
        this.#changeVisibility(this.#queue(input), input);
        return {};
      case "ChangeMessageVisibilityBatch": {
        const queue = this.#queue(input);
        return batch(input, "ChangeMessageVisibilityBatchRequestEntry", (entry) => {
          this.#changeVisibility(queue, entry);
          return {};
        });
      }
      case "PurgeQueue":
        this.#queue(input).messages = [];
        return {};
      case "StartMessageMoveTask":
        return this.#startMoveTask(input);
      case "ListMessageMoveTasks":
        return this.#listMoveTasks(input);
      case "CancelMessageMoveTask":
        return this.#cancelMoveTask(input);
      default:
        throw sqsError(
          "UnsupportedOperation",
          `SQS operation ${operation} is not served by the local endpoint.`,
        );
    }
  }

  #createQueue(input: Json): Json {
    const name = required(input, "QueueName");
    if (!/^[\w-]{1,80}$/.test(name)) {
      throw invalidParameter(
        "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length",
      );
    }
    const attributes = this.#checkAttributes(input.Attributes);
    const existing = this.#queues.get(name);
    if (existing) {
      const differing = Object.keys(attributes).find(
        (key) => (existing.attributes[key] ?? "") !== attributes[key],
      );
      if (differing) {
        throw sqsError(
          "QueueNameExists",
          `A queue already exists with the same name and a different value for attribute ${differing}`,
        );
      }
      return { QueueUrl: existing.url };
    }
    const { url, region, accountId } = this.options;
    const now = Date.now();
    const queue: Queue = {
      name,
      url: `${url}/${accountId}/${name}`,
      arn: `arn:aws:sqs:${region}:${accountId}:${name}`,
      attributes: {
        ...Object.fromEntries(
          Object.entries(INTEGER_ATTRIBUTES).map(([key, [byDefault]]) => [key, String(byDefault)]),
        ),
        // SSE-SQS is on by default for new queues; a KMS key replaces it
        SqsManagedSseEnabled: attributes.KmsMasterKeyId ? "false" : "true",
      },
      createdAt: now,
      changedAt: now,
      messages: [],
      waiters: new Set(),
    };
    this.#setAttributes(queue, attributes);
    this.#queues.set(name, queue);
    return { QueueUrl: queue.url };
  }

  #listQueues(input: Json): Json {
    const prefix = typeof input.QueueNamePrefix === "string" ? input.QueueNamePrefix : "";
    const urls = [...this.#queues.values()]
      .filter((queue) => queue.name.startsWith(prefix))
      .map((queue) => queue.url);
    return urls.length > 0 ? { QueueUrls: urls } : {};
  }

  /** The request's queue, by the last segment of its QueueUrl, whatever host the caller used. */
  #queue(input: Json): Queue {
    return this.#queueNamed(required(input, "QueueUrl").split("/").pop() ?? "");
  }

  #queueNamed(name: string): Queue {
    const queue = this.#queues.get(name);
    if (!queue) throw sqsError("QueueDoesNotExist", "The specified queue does not exist.");
    this.#expire(queue);
    return queue;
  }

  /** Drops the messages older than the queue's retention period (a moved message keeps its age). */
  #expire(queue: Queue): Message[] {
    const oldest = Date.now() - Number(queue.attributes.MessageRetentionPeriod) * 1000;
    queue.messages = queue.messages.filter((message) => message.sentAt > oldest);
    return queue.messages;
  }

  /** Settable attributes, checked as SQS checks them, values as it stores them. */
  #checkAttributes(given: unknown): Record<string, string> {
    const checked: Record<string, string> = {};
    for (const [name, raw] of Object.entries((given ?? {}) as Record<string, unknown>)) {
      const value = String(raw);
      const range = INTEGER_ATTRIBUTES[name];
      if (range) {
        const [, least, greatest] = range;
        if (!/^\d+$/.test(value) || Number(value) < least || Number(value) > greatest) {
          throw sqsError("InvalidAttributeValue", `Invalid value for the parameter ${name}.`);
        }
        checked[name] = String(Number(value));
      } else if (name === "RedrivePolicy") {
        checked[name] = value === "" ? "" : this.#checkRedrivePolicy(value);
      } else if (TEXT_ATTRIBUTES.includes(name)) {
        checked[name] = value;
      } else {
        throw sqsError("InvalidAttributeName", `Unknown Attribute ${name}.`);
      }
    }
    return checked;
  }

  #checkRedrivePolicy(value: string): string {
    const invalid = (reason: string) =>
      invalidParameter(`Value ${value} for parameter RedrivePolicy is invalid. Reason: ${reason}`);
    let policy: unknown;
    try {
      policy = JSON.parse(value);
    } catch {
      throw invalid("Redrive policy is not a valid JSON map.");
    }
    if (typeof policy !== "object" || policy === null) {
      throw invalid("Redrive policy is not a valid JSON map.");
    }
    const { deadLetterTargetArn, maxReceiveCount } = policy as Record<string, unknown>;
    for (const [key, given] of Object.entries({ deadLetterTargetArn, maxReceiveCount })) {
      if (given === undefined) {
        throw invalid(`Redrive policy does not contain mandatory attribute: ${key}.`);
      }
    }
    const count = Number(maxReceiveCount);
    if (!Number.isInteger(count) || count < 1 || count > 1000) {
      throw invalid(
        `Invalid value for maxReceiveCount: ${maxReceiveCount}, valid values are from 1 to 1000 both inclusive.`,
      );
    }
    if (!this.#queueWithArn(String(deadLetterTargetArn))) {
      throw invalid("Dead letter target does not exist.");
    }
    return JSON.stringify({ deadLetterTargetArn, maxReceiveCount: count });
  }

  #setAttributes(queue: Queue, attributes: Record<string, string>): void {
    for (const [name, value] of Object.entries(attributes)) {
      if (value === "") delete queue.attributes[name];
      else queue.attributes[name] = value;
    }
    queue.changedAt = Date.now();
  }

  #getAttributes(queue: Queue, names: unknown): Record<string, string> {
    const wanted = list(names);
    for (const name of wanted) {
      const known =
        name === "All" ||
        name in INTEGER_ATTRIBUTES ||
        TEXT_ATTRIBUTES.includes(name) ||
        COMPUTED_ATTRIBUTES.includes(name);
      if (!known) throw sqsError("InvalidAttributeName", `Unknown Attribute ${name}.`);
    }
    const now = Date.now();
    const count = (inState: (message: Message) => boolean) =>
      String(queue.messages.filter(inState).length);
    const all: Record<string, string> = {
      ...queue.attributes,
      QueueArn: queue.arn,
      ApproximateNumberOfMessages: count((m) => m.visibleAt <= now),
      ApproximateNumberOfMessagesNotVisible: count((m) => m.visibleAt > now && m.receiveCount > 0),
      ApproximateNumberOfMessagesDelayed: count((m) => m.visibleAt > now && m.receiveCount === 0),
      CreatedTimestamp: String(Math.floor(queue.createdAt / 1000)),
      LastModifiedTimestamp: String(Math.floor(queue.changedAt / 1000)),
    };
    return Object.fromEntries(
      Object.entries(all).filter(([name]) => wanted.includes("All") || wanted.includes(name)),
    );
  }

  #send(queue: Queue, input: Json): Json {
    const body = required(input, "MessageBody");
    if (INVALID_CHARACTER.test(body)) {
      throw sqsError(
        "InvalidMessageContents",
        "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF",
      );
    }
    const attributes = checkMessageAttributes(input.MessageAttributes);
    const limit = Number(queue.attributes.MaximumMessageSize);
    if (messageBytes(input) > limit) {
      throw invalidParameter(
        `One or more parameters are invalid. Reason: Message must be shorter than ${limit} bytes.`,
      );
    }
    const delay = integer(input, "DelaySeconds", Number(queue.attributes.DelaySeconds));
    const now = Date.now();
    const message: Message = {
      messageId: randomUUID(),
      body,
      messageAttributes: attributes,
      sentAt: now,
      visibleAt: now + delay * 1000,
      receiveCount: 0,
    };
    enqueue(queue, message);
    return {
      MessageId: message.messageId,
      MD5OfMessageBody: md5(body),
      ...(Object.keys(attributes).length > 0
        ? { MD5OfMessageAttributes: md5OfMessageAttributes(attributes) }
        : {}),
    };
  }

  #sendBatch(queue: Queue, input: Json): Json {
    const entries = Array.isArray(input.Entries) ? (input.Entries as Json[]) : [];
    const bytes = entries.reduce((sum, entry) => sum + messageBytes(entry), 0);
    if (bytes > MAX_BATCH_BYTES) {
      throw sqsError(
        "BatchRequestTooLong",
        `Batch requests cannot be longer than ${MAX_BATCH_BYTES} bytes. You have sent ${bytes} bytes.`,
      );
    }
    return batch(input, "SendMessageBatchRequestEntry", (entry) => {
      // an injected fault: SQS sometimes fails single entries on its side
      if (this.options.faults.failBatchEntries > 0) {
        this.options.faults.failBatchEntries--;
        throw sqsError("InternalError", "The entry failed on the SQS side (injected fault).");
      }
      return this.#send(queue, entry);
    });
  }

  async #receive(queue: Queue, input: Json, signal?: AbortSignal): Promise<Json> {
    const settings = queue.attributes;
    const max = integer(input, "MaxNumberOfMessages", 1);
    const visibility = integer(input, "VisibilityTimeout", Number(settings.VisibilityTimeout));
    const wait = integer(input, "WaitTimeSeconds", Number(settings.ReceiveMessageWaitTimeSeconds));
    const deadline = Date.now() + wait * 1000;
    for (;;) {
      const received = this.#take(queue, max, visibility);
      if (received.length > 0) {
        return { Messages: received.map((message) => this.#toWire(message, input)) };
      }
      const over =
        Date.now() >= deadline ||
        this.#closed ||
        signal?.aborted ||
        this.#queues.get(queue.name) !== queue; // reset() removed it
      if (over) return {};
      await nextChange(queue, deadline, signal);
    }
  }

  /** Receives up to `max` visible messages, moving those past maxReceiveCount to the DLQ. */
  #take(queue: Queue, max: number, visibilitySeconds: number): Message[] {
    const now = Date.now();
    const policy = redrivePolicy(queue);
    const deadLetterQueue = policy && this.#queueWithArn(policy.deadLetterTargetArn);
    const taken: Message[] = [];
    for (const message of [...this.#expire(queue)]) {
      if (taken.length === max) break;
      if (message.visibleAt > now) continue;
      // As SQS does: a message already received maxReceiveCount times is moved on its next
      // receive instead of being delivered, with its id, body, attributes, age and count.
      if (policy && deadLetterQueue && message.receiveCount >= policy.maxReceiveCount) {
        queue.messages.splice(queue.messages.indexOf(message), 1);
        enqueue(deadLetterQueue, {
          ...message,
          visibleAt: now,
          receiptHandle: undefined,
          deadLetterSourceArn: queue.arn,
        });
        continue;
      }
      message.receiveCount++;
      message.firstReceivedAt ??= now;
      message.receivedAt = now;
      message.receiptHandle = Buffer.from(
        `${queue.arn} ${message.messageId} ${randomBytes(8).toString("hex")}`,
      ).toString("base64url");
      message.visibleAt = now + visibilitySeconds * 1000;
      taken.push(message);
    }
    return taken;
  }

  #toWire(message: Message, input: Json): Json {
    const attributes = selected(message.messageAttributes, list(input.MessageAttributeNames));
    const system = selected(this.#systemAttributes(message), [
      ...list(input.MessageSystemAttributeNames),
      ...list(input.AttributeNames),
    ]);
    return {
      MessageId: message.messageId,
      ReceiptHandle: message.receiptHandle,
      Body: message.body,
      MD5OfBody: md5(message.body),
      ...(Object.keys(attributes).length > 0
        ? {
            MessageAttributes: attributes,
            MD5OfMessageAttributes: md5OfMessageAttributes(attributes),
          }
        : {}),
      ...(Object.keys(system).length > 0 ? { Attributes: system } : {}),
    };
  }

  #systemAttributes(message: Message): Record<string, string> {
    return {
      SenderId: this.options.accountId,
      SentTimestamp: String(message.sentAt),
      ApproximateReceiveCount: String(message.receiveCount),
      ...(message.firstReceivedAt === undefined
        ? {}
        : { ApproximateFirstReceiveTimestamp: String(message.firstReceivedAt) }),
      ...(message.deadLetterSourceArn === undefined
        ? {}
        : { DeadLetterQueueSourceArn: message.deadLetterSourceArn }),
    };
  }

  /** As SQS documents: a handle from an older receive, or of a message gone, deletes nothing and succeeds. */
  #delete(queue: Queue, receiptHandle: string): void {
    checkReceiptHandle(queue, receiptHandle);
    const index = queue.messages.findIndex((m) => m.receiptHandle === receiptHandle);
    if (index >= 0) queue.messages.splice(index, 1);
  }

  #changeVisibility(queue: Queue, input: Json): void {
    const receiptHandle = required(input, "ReceiptHandle");
    const seconds = integer(input, "VisibilityTimeout");
    checkReceiptHandle(queue, receiptHandle);
    const message = queue.messages.find((m) => m.receiptHandle === receiptHandle);
    if (!message) {
      throw invalidParameter(
        `Value ${receiptHandle} for parameter ReceiptHandle is invalid. Reason: Message does not exist or is not available for visibility timeout change.`,
      );
    }
    // As SQS does: a message stays in flight at most 12 hours from the receive, however often
    // its visibility is changed; a change that would go beyond is refused, not shortened.
    const now = Date.now();
    if (now - (message.receivedAt ?? now) + seconds * 1000 > MAX_VISIBILITY_MS) {
      throw invalidParameter(
        `Value ${seconds} for parameter VisibilityTimeout is invalid. Reason: Total VisibilityTimeout for the message is beyond the limit [43200 seconds].`,
      );
    }
    message.visibleAt = now + seconds * 1000;
    wake(queue);
  }

  /**
   * As SQS does: the source must be a queue some other queue names as its dead-letter target,
   * one task at a time per source. The task moves the messages in the source when it starts
   * (oldest first, at most MaxNumberOfMessagesPerSecond), each as a new message (new id, age and
   * receive count) to DestinationArn or, without one, back to the queue redrive took it from;
   * a message that redrive did not bring (sent to the DLQ directly) fails the task with
   * CouldNotDetermineMessageSource.
   */
  #startMoveTask(input: Json): Json {
    const source = this.#queueForArn(input, "SourceArn");
    if (!source) {
      throw sqsError(
        "ResourceNotFoundException",
        "The resource that you specified for the SourceArn parameter doesn't exist.",
      );
    }
    const isDeadLetterQueue = [...this.#queues.values()].some(
      (queue) => redrivePolicy(queue)?.deadLetterTargetArn === source.arn,
    );
    if (!isDeadLetterQueue) {
      throw invalidParameter("Source queue must be configured as a Dead Letter Queue.");
    }
    let destinationArn: string | undefined;
    if (input.DestinationArn !== undefined) {
      const destination = this.#queueForArn(input, "DestinationArn");
      if (!destination) {
        throw sqsError(
          "ResourceNotFoundException",
          "The resource that you specified for the DestinationArn parameter doesn't exist.",
        );
      }
      if (destination === source) {
        throw invalidParameter("Source queue arn and destination queue arn cannot be the same.");
      }
      destinationArn = destination.arn;
    }
    const rate = input.MaxNumberOfMessagesPerSecond;
    if (
      rate !== undefined &&
      (typeof rate !== "number" || !Number.isInteger(rate) || rate < 1 || rate > MAX_MOVE_RATE)
    ) {
      throw invalidParameter(
        `Value for parameter MaxNumberOfMessagesPerSecond is invalid. Reason: You must enter a number that's between 1 and ${MAX_MOVE_RATE}.`,
      );
    }
    if (this.#tasks.some((task) => task.source === source && task.status === "RUNNING")) {
      throw sqsError(
        "UnsupportedOperation",
        "There is already a task running. Only one active task is allowed for a source queue arn at a given time.",
      );
    }
    const messages = this.#expire(source);
    const task: MoveTask = {
      taskHandle: Buffer.from(
        JSON.stringify({ taskId: randomUUID(), sourceArn: source.arn }),
      ).toString("base64"),
      source,
      ...(destinationArn === undefined ? {} : { destinationArn }),
      ...(rate === undefined ? {} : { maxPerSecond: rate }),
      status: "RUNNING",
      startedAt: Date.now(),
      toMove: messages.length,
      moved: 0,
      pending: new Set(messages.map((message) => message.messageId)),
    };
    this.#tasks.push(task);
    task.timer = setInterval(() => this.#runMoveTask(task), MOVE_TICK_MS);
    task.timer.unref();
    this.#runMoveTask(task);
    return { TaskHandle: task.taskHandle };
  }

  #runMoveTask(task: MoveTask): void {
    if (task.status !== "RUNNING") return;
    const finish = (status: MoveTask["status"], failureReason?: string) => {
      task.status = status;
      if (failureReason) task.failureReason = failureReason;
      clearInterval(task.timer);
    };
    const { source } = task;
    if (this.#queues.get(source.name) !== source) {
      finish("FAILED", "AWS.SimpleQueueService.NonExistentQueue");
      return;
    }
    const now = Date.now();
    const rate = task.maxPerSecond ?? MAX_MOVE_RATE;
    // the first message at once, then `rate` a second, never more than a second's worth at once
    let budget = Math.min(
      rate,
      Math.floor((rate * (now - task.startedAt)) / 1000) + 1 - task.moved,
    );
    const present = new Set(this.#expire(source).map((message) => message.messageId));
    for (const id of task.pending) if (!present.has(id)) task.pending.delete(id); // deleted meanwhile
    for (const message of [...source.messages]) {
      if (budget <= 0) break;
      if (!task.pending.has(message.messageId) || message.visibleAt > now) continue;
      const targetArn = task.destinationArn ?? message.deadLetterSourceArn;
      const target = targetArn === undefined ? undefined : this.#queueWithArn(targetArn);
      if (!target) {
        finish(
          "FAILED",
          targetArn === undefined
            ? "CouldNotDetermineMessageSource"
            : "AWS.SimpleQueueService.NonExistentQueue",
        );
        return;
      }
      source.messages.splice(source.messages.indexOf(message), 1);
      // a redriven message is a new message: new id, new age, never received
      enqueue(target, {
        messageId: randomUUID(),
        body: message.body,
        messageAttributes: message.messageAttributes,
        sentAt: now,
        visibleAt: now + Number(target.attributes.DelaySeconds) * 1000,
        receiveCount: 0,
      });
      task.pending.delete(message.messageId);
      task.moved++;
      budget--;
    }
    if (task.pending.size === 0) finish("COMPLETED");
  }

  /** The most recent tasks of a source, newest first (MaxResults 1 to 10, default 1). */
  #listMoveTasks(input: Json): Json {
    const source = this.#queueForArn(input, "SourceArn");
    if (!source) {
      throw sqsError(
        "ResourceNotFoundException",
        "The resource that you specified for the SourceArn parameter doesn't exist.",
      );
    }
    const max = input.MaxResults ?? 1;
    if (typeof max !== "number" || !Number.isInteger(max) || max < 1 || max > 10) {
      throw invalidParameter(
        `Value ${String(max)} for parameter MaxResults is invalid. Reason: You must enter a number that's between 1 and 10.`,
      );
    }
    const Results = this.#tasks
      .filter((task) => task.source === source)
      .reverse()
      .slice(0, max)
      .map((task) => ({
        ...(task.status === "RUNNING" ? { TaskHandle: task.taskHandle } : {}),
        Status: task.status,
        SourceArn: source.arn,
        ...(task.destinationArn === undefined ? {} : { DestinationArn: task.destinationArn }),
        ...(task.maxPerSecond === undefined
          ? {}
          : { MaxNumberOfMessagesPerSecond: task.maxPerSecond }),
        ApproximateNumberOfMessagesMoved: task.moved,
        ApproximateNumberOfMessagesToMove: task.toMove,
        ...(task.failureReason === undefined ? {} : { FailureReason: task.failureReason }),
        StartedTimestamp: task.startedAt,
      }));
    return { Results };
  }

  #cancelMoveTask(input: Json): Json {
    const handle = required(input, "TaskHandle");
    const task = this.#tasks.find((candidate) => candidate.taskHandle === handle);
    if (!task) throw sqsError("ResourceNotFoundException", "Task does not exist.");
    if (task.status !== "RUNNING") {
      throw sqsError("UnsupportedOperation", "Only active tasks can be cancelled.");
    }
    task.status = "CANCELLED";
    clearInterval(task.timer);
    return { ApproximateNumberOfMessagesMoved: task.moved };
  }

  /** The queue an ARN parameter names; undefined when there is none (an ARN badly formed is refused). */
  #queueForArn(input: Json, name: string): Queue | undefined {
    const arn = input[name];
    if (arn === undefined) {
      throw sqsError("MissingParameter", `The request must contain the parameter ${name}.`);
    }
    if (typeof arn !== "string" || !ARN.test(arn)) {
      throw invalidParameter(
        `You must use this format to specify the ${name}: arn:<partition>:<service>:<region>:<account-id>:<resource-id>`,
      );
    }
    return this.#queueWithArn(arn);
  }

  #queueWithArn(arn: string): Queue | undefined {
    return [...this.#queues.values()].find((queue) => queue.arn === arn);
  }
}

function enqueue(queue: Queue, message: Message): void {
  queue.messages.push(message);
  wake(queue);
}

function wake(queue: Queue): void {
  for (const waiter of [...queue.waiters]) waiter();
}

/**
 * Waits until a message may have become receivable: something was sent or made visible, an
 * in-flight or delayed message's time came, or the long poll's deadline (or the client left).
 */
function nextChange(queue: Queue, deadline: number, signal?: AbortSignal): Promise<void> {
  const now = Date.now();
  let until = deadline;
  for (const message of queue.messages) {
    if (message.visibleAt > now && message.visibleAt < until) until = message.visibleAt;
  }
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      queue.waiters.delete(done);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, until - now);
    queue.waiters.add(done);
    signal?.addEventListener("abort", done);
  });
}

function redrivePolicy(queue: Queue): RedrivePolicy | undefined {
  const policy = queue.attributes.RedrivePolicy;
  return policy ? (JSON.parse(policy) as RedrivePolicy) : undefined;
}

/** Receipt handles name their queue, so a handle SQS never issued is told from a stale one. */
function checkReceiptHandle(queue: Queue, receiptHandle: string): void {
  if (!Buffer.from(receiptHandle, "base64url").toString().startsWith(`${queue.arn} `)) {
    throw sqsError(
      "ReceiptHandleIsInvalid",
      `The input receipt handle "${receiptHandle}" is not a valid receipt handle.`,
    );
  }
}

/**
 * Runs `each` on every entry of a batch request and answers per entry Id, Successful or Failed,
 * as SQS does; the batch as a whole is refused only when its shape is wrong.
 */
function batch(input: Json, entryName: string, each: (entry: Json) => Json): Json {
  const entries = input.Entries;
  if (!Array.isArray(entries) || entries.length === 0) {
    throw sqsError(
      "EmptyBatchRequest",
      `There should be at least one ${entryName} in the request.`,
    );
  }
  if (entries.length > 10) {
    throw sqsError(
      "TooManyEntriesInBatchRequest",
      `Maximum number of entries per request are 10. You have sent ${entries.length}.`,
    );
  }
  const ids = new Set<unknown>();
  for (const { Id } of entries as Json[]) {
    if (typeof Id !== "string" || !/^[\w-]{1,80}$/.test(Id)) {
      throw sqsError(
        "InvalidBatchEntryId",
        "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.",
      );
    }
    if (ids.has(Id)) throw sqsError("BatchEntryIdsNotDistinct", `Id ${Id} repeated.`);
    ids.add(Id);
  }
  const Successful: Json[] = [];
  const Failed: Json[] = [];
  for (const entry of entries as Json[]) {
    try {
      Successful.push({ Id: entry.Id, ...each(entry) });
    } catch (error) {
      if (!(error instanceof AwsError)) throw error;
      Failed.push({
        Id: entry.Id,
        SenderFault: error.status < 500,
        Code: error.headers["x-amzn-query-error"]?.split(";")[0],
        Message: error.message,
      });
    }
  }
  return { Successful, Failed };
}

/** Message attributes as SQS accepts them, kept with only the value their type uses. */
function checkMessageAttributes(given: unknown): MessageAttributes {
  const entries = Object.entries((given ?? {}) as MessageAttributes);
  if (entries.length > 10) {
    throw invalidParameter(
      `Number of message attributes [${entries.length}] exceeds the allowed maximum [10].`,
    );
  }
  const checked: MessageAttributes = {};
  for (const [name, { DataType, StringValue, BinaryValue }] of entries) {
    if (!/^(?!aws\.|amazon\.|\.)(?!.*\.\.)[\w.-]{1,256}(?<!\.)$/i.test(name)) {
      throw invalidParameter(`Message (user) attribute name '${name}' is invalid.`);
    }
    const type = /^(String|Number|Binary)(\..+)?$/.exec(DataType ?? "")?.[1];
    if (!type) {
      throw invalidParameter(
        `The type of message (user) attribute '${name}' is invalid. You must use only the following supported type prefixes: Binary, Number, String.`,
      );
    }
    const value = type === "Binary" ? BinaryValue : StringValue;
    if (!value) {
      throw invalidParameter(
        `Message (user) attribute '${name}' must contain a non-empty value of type '${type}'.`,
      );
    }
    if (type === "Number" && !/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(value)) {
      throw invalidParameter(
        `Can't cast the value of message (user) attribute '${name}' to a number.`,
      );
    }
    checked[name] =
      type === "Binary" ? { DataType, BinaryValue: value } : { DataType, StringValue: value };
  }
  return checked;
}

/** A message's size as SQS counts it against MaximumMessageSize: body and attributes. */
export function messageBytes(input: Json): number {
  const body = typeof input.MessageBody === "string" ? input.MessageBody : "";
  let bytes = Buffer.byteLength(body);
  for (const [name, attribute] of Object.entries(
    (input.MessageAttributes ?? {}) as MessageAttributes,
  )) {
    bytes += Buffer.byteLength(name) + Buffer.byteLength(attribute.DataType ?? "");
    bytes += attribute.BinaryValue
      ? Buffer.from(attribute.BinaryValue, "base64").length
      : Buffer.byteLength(attribute.StringValue ?? "");
  }
  return bytes;
}

/** The entries of `from` that `names` asks for: "All", ".*", a name, or a prefix such as "error.*". */
function selected<T>(from: Record<string, T>, names: string[]): Record<string, T> {
  const wanted = (name: string) =>
    names.some(
      (asked) =>
        asked === "All" ||
        asked === ".*" ||
        asked === name ||
        (asked.endsWith(".*") && name.startsWith(asked.slice(0, -2))),
    );
  return Object.fromEntries(Object.entries(from).filter(([name]) => wanted(name)));
}

function list(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item) => typeof item === "string") : [];
}

function required(input: Json, name: string): string {
  const value = input[name];
  if (typeof value !== "string" || value === "") {
    throw sqsError("MissingParameter", `The request must contain the parameter ${name}.`);
  }
  return value;
}

/** An integer request parameter in SQS's range; `fallback` when absent, required without one. */
function integer(input: Json, name: keyof typeof PARAMETERS, fallback?: number): number {
  const value = input[name] ?? fallback;
  if (value === undefined) {
    throw sqsError("MissingParameter", `The request must contain the parameter ${name}.`);
  }
  const [least, greatest, reason] = PARAMETERS[name];
  if (typeof value !== "number" || !Number.isInteger(value) || value < least || value > greatest) {
    throw invalidParameter(`Value ${value} for parameter ${name} is invalid. Reason: ${reason}`);
  }
  return value;
}
