import { createHash, randomBytes, randomUUID } from "node:crypto";
import { AwsError, type Json } from "./protocol";

type MessageAttributes = Record<
  string,
  { DataType: string; StringValue?: string; BinaryValue?: string }
>;

interface Message {
  messageId: string;
  body: string;
  messageAttributes: MessageAttributes;
  sentAt: number;
  visibleAt: number;
  receiveCount: number;
  firstReceiveAt?: number;
  /** the handle of the latest receive; older handles no longer change the message */
  receiptHandle?: string;
}

interface Queue {
  name: string;
  url: string;
  arn: string;
  attributes: Record<string, string>;
  messages: Message[];
}

const DEFAULT_ATTRIBUTES = {
  VisibilityTimeout: "30",
  MessageRetentionPeriod: "345600",
  DelaySeconds: "0",
  ReceiveMessageWaitTimeSeconds: "0",
  MaximumMessageSize: "262144",
};

const md5 = (data: Buffer | string) => createHash("md5").update(data).digest("hex");

/** MD5OfMessageAttributes as SQS computes it: names sorted, each part length-prefixed. */
export function md5OfAttributes(attributes: MessageAttributes): string | undefined {
  const names = Object.keys(attributes).sort();
  if (names.length === 0) return undefined;
  const parts: Buffer[] = [];
  const lengthPrefixed = (data: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    parts.push(length, data);
  };
  for (const name of names) {
    const attribute = attributes[name] as MessageAttributes[string];
    lengthPrefixed(Buffer.from(name));
    lengthPrefixed(Buffer.from(attribute.DataType));
    const binary = attribute.DataType.startsWith("Binary");
    parts.push(Buffer.from([binary ? 2 : 1]));
    lengthPrefixed(
      binary
        ? Buffer.from(attribute.BinaryValue ?? "", "base64")
        : Buffer.from(attribute.StringValue ?? ""),
    );
  }
  return md5(Buffer.concat(parts));
}

const nonExistent = () =>
  new AwsError(
    "com.amazonaws.sqs#QueueDoesNotExist",
    "The specified queue does not exist.",
    400,
    "AWS.SimpleQueueService.NonExistentQueue;Sender",
  );

/**
 * SQS, as much as the service and its local event-source poller use: queues with visibility
 * timeouts, receive counts and redrive to a dead-letter queue after maxReceiveCount, long
 * polling, batches, message attributes with the MD5s the SDK checks.
 */
export class Sqs {
  readonly #queues = new Map<string, Queue>();
  #closed = false;
  /** the next N SendMessageBatch entries answer Failed, as SQS sometimes does */
  failBatchEntries = 0;

  constructor(
    readonly baseUrl: () => string,
    readonly region: string,
    readonly account: string,
  ) {}

  reset(): void {
    this.#queues.clear();
    this.failBatchEntries = 0;
  }

  close(): void {
    this.#closed = true;
  }

  /** Lets time pass for one queue: every hidden or delayed message becomes visible now. */
  endDelays(queueName: string): void {
    const now = Date.now();
    for (const message of this.#queues.get(queueName)?.messages ?? [])
      message.visibleAt = Math.min(message.visibleAt, now);
  }

  messages(queueName: string) {
    const queue = this.#queues.get(queueName);
    const now = Date.now();
    return (queue?.messages ?? []).map((m) => ({
      messageId: m.messageId,
      body: m.body,
      messageAttributes: m.messageAttributes,
      attributes: this.#systemAttributes(m),
      receiveCount: m.receiveCount,
      visible: m.visibleAt <= now,
    }));
  }

  async handle(operation: string, input: Json): Promise<Json> {
    switch (operation) {
      case "CreateQueue":
        return this.#createQueue(input);
      case "GetQueueUrl": {
        const queue = this.#queues.get(String(input.QueueName));
        if (!queue) throw nonExistent();
        return { QueueUrl: queue.url };
      }
      case "ListQueues":
        return {
          QueueUrls: [...this.#queues.values()]
            .filter((q) => q.name.startsWith(String(input.QueueNamePrefix ?? "")))
            .map((q) => q.url),
        };
      case "GetQueueAttributes":
        return {
          Attributes: this.#attributes(
            this.#queue(input.QueueUrl),
            (input.AttributeNames as string[]) ?? ["All"],
          ),
        };
      case "SetQueueAttributes":
        Object.assign(this.#queue(input.QueueUrl).attributes, input.Attributes);
        return {};
      case "SendMessage":
        return this.#send(this.#queue(input.QueueUrl), input);
      case "SendMessageBatch":
        return this.#sendBatch(this.#queue(input.QueueUrl), (input.Entries as Json[]) ?? []);
      case "ReceiveMessage":
        return this.#receive(this.#queue(input.QueueUrl), input);
      case "DeleteMessage":
        this.#delete(this.#queue(input.QueueUrl), String(input.ReceiptHandle));
        return {};
      case "DeleteMessageBatch": {
        const queue = this.#queue(input.QueueUrl);
        const entries = (input.Entries as Json[]) ?? [];
        for (const entry of entries) this.#delete(queue, String(entry.ReceiptHandle));
        return { Successful: entries.map((e) => ({ Id: e.Id })), Failed: [] };
      }
      case "ChangeMessageVisibility":
        this.#changeVisibility(
          this.#queue(input.QueueUrl),
          String(input.ReceiptHandle),
          Number(input.VisibilityTimeout),
        );
        return {};
      case "ChangeMessageVisibilityBatch": {
        const queue = this.#queue(input.QueueUrl);
        const Successful: Json[] = [];
        const Failed: Json[] = [];
        for (const entry of (input.Entries as Json[]) ?? []) {
          try {
            this.#changeVisibility(
              queue,
              String(entry.ReceiptHandle),
              Number(entry.VisibilityTimeout),
            );
            Successful.push({ Id: entry.Id });
          } catch (error) {
            Failed.push({
              Id: entry.Id,
              Code: (error as AwsError).type,
              Message: (error as Error).message,
              SenderFault: true,
            });
          }
        }
        return { Successful, Failed };
      }
      case "PurgeQueue":
        this.#queue(input.QueueUrl).messages = [];
        return {};
      default:
        throw new AwsError(
          "UnsupportedOperation",
          `SQS operation ${operation} is not supported here.`,
        );
    }
  }

  #createQueue(input: Json): Json {
    const name = String(input.QueueName ?? "");
    if (!/^[\w-]{1,80}(\.fifo)?$/.test(name))
      throw new AwsError("InvalidParameterValue", "Invalid QueueName.");
    const existing = this.#queues.get(name);
    if (existing) return { QueueUrl: existing.url };
    const queue: Queue = {
      name,
      url: `${this.baseUrl()}/${this.account}/${name}`,
      arn: `arn:aws:sqs:${this.region}:${this.account}:${name}`,
      attributes: { ...DEFAULT_ATTRIBUTES, ...(input.Attributes as Record<string, string>) },
      messages: [],
    };
    this.#queues.set(name, queue);
    return { QueueUrl: queue.url };
  }

  /** Queues are found by the last segment of their URL, whatever host the caller used. */
  #queue(url: unknown): Queue {
    const name =
      String(url ?? "")
        .split("/")
        .pop() ?? "";
    const queue = this.#queues.get(name);
    if (!queue) throw nonExistent();
    return queue;
  }

  #attributes(queue: Queue, names: string[]): Record<string, string> {
    const now = Date.now();
    const all: Record<string, string> = {
      ...queue.attributes,
      QueueArn: queue.arn,
      ApproximateNumberOfMessages: String(queue.messages.filter((m) => m.visibleAt <= now).length),
      ApproximateNumberOfMessagesNotVisible: String(
        queue.messages.filter((m) => m.visibleAt > now && m.receiveCount > 0).length,
      ),
      ApproximateNumberOfMessagesDelayed: String(
        queue.messages.filter((m) => m.visibleAt > now && m.receiveCount === 0).length,
      ),
    };
    if (names.includes("All")) return all;
    return Object.fromEntries(names.filter((n) => n in all).map((n) => [n, all[n] as string]));
  }

  #enqueue(
    queue: Queue,
    body: string,
    attributes: MessageAttributes,
    delaySeconds: number,
    messageId: string = randomUUID(),
  ): Message {
    const message: Message = {
      messageId,
      body,
      messageAttributes: attributes,
      sentAt: Date.now(),
      visibleAt: Date.now() + delaySeconds * 1000,
      receiveCount: 0,
    };
    queue.messages.push(message);
    return message;
  }

  #send(queue: Queue, input: Json): Json {
    const body = String(input.MessageBody ?? "");
    if (!body)
      throw new AwsError("MissingParameter", "The request must contain the parameter MessageBody.");
    const attributes = (input.MessageAttributes ?? {}) as MessageAttributes;
    const delay = Number(input.DelaySeconds ?? queue.attributes.DelaySeconds ?? 0);
    const message = this.#enqueue(queue, body, attributes, delay);
    const attributesMd5 = md5OfAttributes(attributes);
    return {
      MessageId: message.messageId,
      MD5OfMessageBody: md5(body),
      ...(attributesMd5 ? { MD5OfMessageAttributes: attributesMd5 } : {}),
    };
  }

  #sendBatch(queue: Queue, entries: Json[]): Json {
    if (entries.length === 0 || entries.length > 10) {
      throw new AwsError(
        "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
        "A batch holds 1 to 10 entries.",
      );
    }
    const Successful: Json[] = [];
    const Failed: Json[] = [];
    for (const entry of entries) {
      if (this.failBatchEntries > 0) {
        this.failBatchEntries--;
        Failed.push({
          Id: entry.Id,
          Code: "InternalError",
          Message: "Injected failure.",
          SenderFault: false,
        });
        continue;
      }
      Successful.push({ Id: entry.Id, ...this.#send(queue, entry) });
    }
    return { Successful, Failed };
  }

  async #receive(queue: Queue, input: Json): Promise<Json> {
    const max = Math.min(10, Math.max(1, Number(input.MaxNumberOfMessages ?? 1)));
    const visibility = Number(input.VisibilityTimeout ?? queue.attributes.VisibilityTimeout);
    const waitSeconds = Number(
      input.WaitTimeSeconds ?? queue.attributes.ReceiveMessageWaitTimeSeconds ?? 0,
    );
    const deadline = Date.now() + Math.min(20, waitSeconds) * 1000;
    const wantedAttributes = (input.MessageAttributeNames as string[] | undefined) ?? [];
    const wantsSystem =
      (
        (input.MessageSystemAttributeNames as string[] | undefined) ??
        (input.AttributeNames as string[] | undefined) ??
        []
      ).length > 0;
    for (;;) {
      const delivered = this.#take(queue, max, visibility);
      if (delivered.length > 0 || Date.now() >= deadline || this.#closed) {
        return { Messages: delivered.map((m) => this.#toWire(m, wantedAttributes, wantsSystem)) };
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  #take(queue: Queue, max: number, visibility: number): Message[] {
    const now = Date.now();
    const retention = Number(queue.attributes.MessageRetentionPeriod) * 1000;
    queue.messages = queue.messages.filter((m) => now - m.sentAt < retention);
    const redrive = queue.attributes.RedrivePolicy
      ? (JSON.parse(queue.attributes.RedrivePolicy) as {
          deadLetterTargetArn: string;
          maxReceiveCount: number | string;
        })
      : undefined;
    const delivered: Message[] = [];
    for (const message of [...queue.messages]) {
      if (delivered.length >= max) break;
      if (message.visibleAt > now) continue;
      // As SQS does: a message already received maxReceiveCount times moves to the DLQ on its next receive.
      if (redrive && message.receiveCount >= Number(redrive.maxReceiveCount)) {
        const dlq = [...this.#queues.values()].find((q) => q.arn === redrive.deadLetterTargetArn);
        queue.messages.splice(queue.messages.indexOf(message), 1);
        if (dlq) {
          const moved = this.#enqueue(
            dlq,
            message.body,
            message.messageAttributes,
            0,
            message.messageId,
          );
          moved.sentAt = message.sentAt;
        }
        continue;
      }
      message.receiveCount++;
      message.firstReceiveAt ??= now;
      message.receiptHandle = randomBytes(24).toString("base64url");
      message.visibleAt = now + visibility * 1000;
      delivered.push(message);
    }
    return delivered;
  }

  #toWire(message: Message, attributeNames: string[], withSystem: boolean): Json {
    const all = attributeNames.includes("All") || attributeNames.includes(".*");
    const attributes = Object.fromEntries(
      Object.entries(message.messageAttributes).filter(
        ([name]) => all || attributeNames.includes(name),
      ),
    );
    const attributesMd5 = md5OfAttributes(attributes);
    return {
      MessageId: message.messageId,
      ReceiptHandle: message.receiptHandle,
      Body: message.body,
      MD5OfBody: md5(message.body),
      ...(Object.keys(attributes).length > 0
        ? { MessageAttributes: attributes, MD5OfMessageAttributes: attributesMd5 }
        : {}),
      ...(withSystem ? { Attributes: this.#systemAttributes(message) } : {}),
    };
  }

  #systemAttributes(message: Message): Record<string, string> {
    return {
      ApproximateReceiveCount: String(message.receiveCount),
      SentTimestamp: String(message.sentAt),
      SenderId: "000000000000",
      ...(message.firstReceiveAt
        ? { ApproximateFirstReceiveTimestamp: String(message.firstReceiveAt) }
        : {}),
    };
  }

  #delete(queue: Queue, receiptHandle: string): void {
    queue.messages = queue.messages.filter((m) => m.receiptHandle !== receiptHandle);
  }

  #changeVisibility(queue: Queue, receiptHandle: string, seconds: number): void {
    if (!(seconds >= 0 && seconds <= 43_200)) {
      throw new AwsError(
        "InvalidParameterValue",
        "VisibilityTimeout must be between 0 and 43200 seconds.",
      );
    }
    const message = queue.messages.find((m) => m.receiptHandle === receiptHandle);
    if (!message) {
      throw new AwsError(
        "ReceiptHandleIsInvalid",
        "The receipt handle is not valid.",
        400,
        "ReceiptHandleIsInvalid;Sender",
      );
    }
    if (message.visibleAt <= Date.now()) {
      throw new AwsError(
        "AWS.SimpleQueueService.MessageNotInflight",
        "The message is not in flight.",
        400,
        "AWS.SimpleQueueService.MessageNotInflight;Sender",
      );
    }
    message.visibleAt = Date.now() + seconds * 1000;
  }
}
