import { InvokeCommand, type LambdaClient } from "@aws-sdk/client-lambda";
import {
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import type { SQSBatchResponse, SQSEvent } from "aws-lambda";
import { deleteSucceeded, toSqsRecord } from "./sqs-records";

export interface SqsPollerOptions {
  sqs: SQSClient;
  lambda: LambdaClient;
  queueUrl: string;
  /** the function to invoke, by its deployed name (serverless-offline: `<service>-<stage>-<key>`) */
  functionName: string;
  /** records per invocation, at most 10 (serverless.yml: batchSize) */
  batchSize?: number;
  /** invocations in flight at once (serverless.yml: maximumConcurrency) */
  concurrency?: number;
  /** long-poll wait per ReceiveMessage */
  waitTimeSeconds?: number;
  region?: string;
  onError?: (error: unknown) => void;
}

/**
 * What Lambda's SQS event source mapping does, for the local stack: long-polls the queue,
 * invokes the worker with batches of up to 10 records, deletes the records that succeeded
 * and leaves the `batchItemFailures` to reappear after their visibility timeout (and to be
 * redriven to the DLQ by the queue). A failed invocation deletes nothing. One poller serves one
 * queue, as one event source mapping does; its records carry that queue's ARN.
 */
export class SqsPoller {
  readonly #options: Required<Omit<SqsPollerOptions, "onError">> &
    Pick<SqsPollerOptions, "onError">;
  #running = false;
  #loops: Promise<void>[] = [];
  #abort = new AbortController();
  #queueArn: string | undefined;
  /** invocations made, and records deleted after them */
  readonly stats = { invocations: 0, failedInvocations: 0, deleted: 0, reportedFailures: 0 };

  constructor(options: SqsPollerOptions) {
    this.#options = {
      batchSize: 10,
      concurrency: 2,
      waitTimeSeconds: 1,
      region: "us-east-1",
      ...options,
    };
  }

  async start(): Promise<void> {
    const attributes = await this.#options.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: this.#options.queueUrl,
        AttributeNames: ["QueueArn"],
      }),
    );
    this.#queueArn = attributes.Attributes?.QueueArn;
    this.#running = true;
    this.#loops = Array.from({ length: this.#options.concurrency }, () => this.#loop());
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#abort.abort();
    await Promise.allSettled(this.#loops);
  }

  async #loop(): Promise<void> {
    while (this.#running) {
      try {
        await this.#pollOnce();
      } catch (error) {
        if (!this.#running) return;
        this.#options.onError?.(error);
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  }

  async #pollOnce(): Promise<void> {
    const { sqs, lambda, queueUrl } = this.#options;
    const received = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: this.#options.batchSize,
        WaitTimeSeconds: this.#options.waitTimeSeconds,
        MessageSystemAttributeNames: ["All"],
        MessageAttributeNames: ["All"],
      }),
      { abortSignal: this.#abort.signal },
    );
    const messages = received.Messages ?? [];
    if (messages.length === 0) return;

    const event: SQSEvent = {
      Records: messages.map((m) => toSqsRecord(m, this.#queueArn ?? "", this.#options.region)),
    };
    this.stats.invocations++;
    const output = await lambda.send(
      new InvokeCommand({
        FunctionName: this.#options.functionName,
        Payload: Buffer.from(JSON.stringify(event)),
      }),
    );
    if (output.FunctionError) {
      this.stats.failedInvocations++;
      return; // as Lambda does: the whole batch comes back after its visibility timeout
    }
    const response = JSON.parse(
      Buffer.from(output.Payload ?? []).toString() || "{}",
    ) as Partial<SQSBatchResponse>;
    this.stats.reportedFailures += response.batchItemFailures?.length ?? 0;
    this.stats.deleted += await deleteSucceeded(sqs, queueUrl, messages, response);
  }
}
