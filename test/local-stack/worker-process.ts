/**
 * One "Lambda container" for the token-economy benchmark: a fresh Node process that imports
 * the worker's handler, takes batches from the queue as the event source mapping would, and
 * exits once the queue stays empty. Configured entirely by the environment, as in Lambda.
 */
import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import type { Context, SQSBatchResponse, SQSRecord } from "aws-lambda";
import { handler } from "../../functions/sqs-worker";

const queueUrl = process.env.BENCH_QUEUE_URL as string;
const sqs = new SQSClient({});
const arn = (
  await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["QueueArn"] }),
  )
).Attributes?.QueueArn as string;
const context = {
  functionName: "bench-worker",
  awsRequestId: "bench",
  getRemainingTimeInMillis: () => 90_000,
} as Context;

for (let idle = 0; idle < 3; ) {
  const { Messages = [] } = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: queueUrl,
      MaxNumberOfMessages: 10,
      WaitTimeSeconds: 1,
      MessageSystemAttributeNames: ["All"],
    }),
  );
  if (Messages.length === 0) {
    idle++;
    continue;
  }
  idle = 0;
  const Records = Messages.map(
    (m) =>
      ({
        messageId: m.MessageId,
        receiptHandle: m.ReceiptHandle,
        body: m.Body,
        attributes: m.Attributes,
        messageAttributes: {},
        eventSource: "aws:sqs",
        eventSourceARN: arn,
        awsRegion: "us-east-1",
      }) as unknown as SQSRecord,
  );
  const { batchItemFailures } = (await handler({ Records }, context)) as SQSBatchResponse;
  const failed = new Set(batchItemFailures.map((f) => f.itemIdentifier));
  const done = Messages.filter((m) => !failed.has(m.MessageId as string));
  if (done.length > 0) {
    await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
      }),
    );
  }
}
