import { DeleteMessageBatchCommand, type Message, type SQSClient } from "@aws-sdk/client-sqs";
import type { SQSBatchResponse, SQSRecord } from "aws-lambda";

// Apart from the poller so that the worker processes (bundled as Lambda bundles are, without
// the SDK's event streams) do not import the Lambda client.

/** An SQS message as Lambda's event source mapping hands it to the function. */
export function toSqsRecord(message: Message, queueArn: string, region = "us-east-1"): SQSRecord {
  const system = message.Attributes ?? {};
  return {
    messageId: message.MessageId ?? "",
    receiptHandle: message.ReceiptHandle ?? "",
    body: message.Body ?? "",
    attributes: {
      ApproximateReceiveCount: system.ApproximateReceiveCount ?? "1",
      SentTimestamp: system.SentTimestamp ?? String(Date.now()),
      SenderId: system.SenderId ?? "local",
      ApproximateFirstReceiveTimestamp:
        system.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
    },
    messageAttributes: Object.fromEntries(
      Object.entries(message.MessageAttributes ?? {}).map(([name, value]) => [
        name,
        {
          dataType: value.DataType ?? "String",
          stringValue: value.StringValue,
          stringListValues: [],
          binaryListValues: [],
        },
      ]),
    ),
    md5OfBody: message.MD5OfBody ?? "",
    eventSource: "aws:sqs",
    eventSourceARN: queueArn,
    awsRegion: region,
  };
}

/** As the event source mapping does after an invocation: deletes every record not reported failed. */
export async function deleteSucceeded(
  sqs: SQSClient,
  queueUrl: string,
  messages: Message[],
  response: Partial<SQSBatchResponse>,
): Promise<number> {
  const failed = new Set(
    (response.batchItemFailures ?? []).map((failure) => failure.itemIdentifier),
  );
  const done = messages.filter((message) => !failed.has(message.MessageId ?? ""));
  if (done.length > 0) {
    await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: done.map((message, i) => ({
          Id: String(i),
          ReceiptHandle: message.ReceiptHandle ?? "",
        })),
      }),
    );
  }
  return done.length;
}
