/**
 * One "Lambda container" for the token-economy benchmark and the crash test: a fresh Node process that imports
 * the worker's handler, takes batches from the queue as the event source mapping would, and
 * exits once the queue stays empty. Configured entirely by the environment, as in Lambda.
 */
import { GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import type { Context, SQSBatchResponse } from "aws-lambda";
import { handler } from "../../functions/sqs-worker";
import { deleteSucceeded, toSqsRecord } from "./sqs-records";

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
      // as the event source mapping delivers them: a job's attempt count travels in one
      MessageAttributeNames: ["All"],
    }),
  );
  if (Messages.length === 0) {
    idle++;
    continue;
  }
  idle = 0;
  const response = (await handler(
    { Records: Messages.map((m) => toSqsRecord(m, arn)) },
    context,
  )) as SQSBatchResponse;
  await deleteSucceeded(sqs, queueUrl, Messages, response);
}
