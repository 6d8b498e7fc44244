/**
 * One "Lambda container" for the benchmark and the crash test: a fresh Node process that imports
 * the worker's handler, takes batches from the queue as the event source mapping would, and
 * exits once the queue stays empty (`BENCH_IDLE_POLLS` empty polls in a row, default 3; 0: never,
 * until SIGTERM). Configured entirely by the environment, as in Lambda. Each invocation gets
 * `BENCH_TIMEOUT_MS` (default 90000, serverless.yml's timeout) and sees it run down. On exit it
 * prints one JSON line: `{"invocations": n, "records": n}`.
 */
import { GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import type { Context, SQSBatchResponse } from "aws-lambda";
import { handler } from "../../functions/sqs-worker";
import { deleteSucceeded, toSqsRecord } from "./sqs-records";

const queueUrl = process.env.BENCH_QUEUE_URL as string;
const idlePolls = Number(process.env.BENCH_IDLE_POLLS ?? "3");
const timeoutMs = Number(process.env.BENCH_TIMEOUT_MS ?? "90000");
const sqs = new SQSClient({});
const arn = (
  await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["QueueArn"] }),
  )
).Attributes?.QueueArn as string;

let stopping = false;
process.once("SIGTERM", () => {
  stopping = true;
});
const stats = { invocations: 0, records: 0 };

for (let idle = 0; !stopping && (idlePolls === 0 || idle < idlePolls); ) {
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
  stats.invocations++;
  stats.records += Messages.length;
  const deadline = Date.now() + timeoutMs;
  const context = {
    functionName: "bench-worker",
    awsRequestId: `bench-${stats.invocations}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  } as Context;
  const response = (await handler(
    { Records: Messages.map((m) => toSqsRecord(m, arn)) },
    context,
  )) as SQSBatchResponse;
  await deleteSucceeded(sqs, queueUrl, Messages, response);
}
process.stdout.write(`${JSON.stringify(stats)}\n`);
