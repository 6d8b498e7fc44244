/**
 * One "Lambda container" for the cost benchmark: a fresh Node process running one function's
 * handler as Lambda would, timing each invocation (what Lambda bills, with the memory). Set by
 * the environment:
 *
 * - `BENCH_ROLE=http`: `POST /activations` with one item for each id of `BENCH_CONTACT_IDS`
 *   (comma-separated), one every `BENCH_INTERVAL_MS`: a CRM's status changes, one a request.
 * - `BENCH_ROLE=worker`: polls `BENCH_QUEUE_URL` as the event source mapping does (10 records a
 *   batch) and invokes the worker, until `BENCH_IDLE_POLLS` empty polls in a row or SIGTERM.
 * - `BENCH_ROLE=sync`: one scheduled sync, its input the JSON of `BENCH_SYNC_INPUT`.
 *
 * On exit it prints one JSON line: `{"durations_ms": [...], "statuses": [...], "records": n}`.
 */
import { GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import type { APIGatewayProxyStructuredResultV2, Context, SQSBatchResponse } from "aws-lambda";
import { httpEvent } from "../local/lambda-events";
import { deleteSucceeded, toSqsRecord } from "../local/stack/sqs-records";

const role = process.env.BENCH_ROLE;
const durations: number[] = [];
const statuses: number[] = [];
let records = 0;
let stopping = false;
process.once("SIGTERM", () => {
  stopping = true;
});

const contextFor = (timeoutMs: number, n: number): Context => {
  const deadline = Date.now() + timeoutMs;
  return {
    functionName: `bench-${role}`,
    awsRequestId: `bench-${n}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  } as Context;
};

/** Runs one invocation and keeps its duration (ms, as Lambda measures: the handler's run). */
async function timed<T>(invoke: () => Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    return await invoke();
  } finally {
    durations.push(performance.now() - started);
  }
}

if (role === "http") {
  const { handler } = await import("../functions/http-api");
  const ids = (process.env.BENCH_CONTACT_IDS ?? "").split(",").filter(Boolean);
  const intervalMs = Number(process.env.BENCH_INTERVAL_MS ?? "300");
  for (const [n, id] of ids.entries()) {
    if (stopping) break;
    const started = Date.now();
    const result = (await timed(() =>
      handler(
        httpEvent({
          method: "POST",
          path: "/activations",
          body: JSON.stringify({ items: [{ contact_id: id }] }),
        }),
        contextFor(29_000, n),
      ),
    )) as APIGatewayProxyStructuredResultV2;
    statuses.push(result.statusCode ?? 0);
    await new Promise((resolve) => setTimeout(resolve, intervalMs - (Date.now() - started)));
  }
} else if (role === "worker") {
  const { handler } = await import("../functions/sqs-worker");
  const queueUrl = process.env.BENCH_QUEUE_URL as string;
  const idlePolls = Number(process.env.BENCH_IDLE_POLLS ?? "3");
  const sqs = new SQSClient({});
  const arn = (
    await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["QueueArn"] }),
    )
  ).Attributes?.QueueArn as string;
  for (let idle = 0; !stopping && (idlePolls === 0 || idle < idlePolls); ) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
        MessageSystemAttributeNames: ["All"],
        MessageAttributeNames: ["All"],
      }),
    );
    if (Messages.length === 0) {
      idle++;
      continue;
    }
    idle = 0;
    records += Messages.length;
    const response = (await timed(() =>
      handler({ Records: Messages.map((m) => toSqsRecord(m, arn)) }, contextFor(90_000, records)),
    )) as SQSBatchResponse;
    // the event source mapping's delete, not the function's: outside the billed duration
    await deleteSucceeded(sqs, queueUrl, Messages, response);
  }
} else if (role === "sync") {
  const { handler } = await import("../functions/scheduled-sync");
  const input = JSON.parse(process.env.BENCH_SYNC_INPUT ?? "{}");
  const summary = (await timed(() => handler(input, contextFor(300_000, 0)))) as {
    jobs_queued: number;
  };
  records = summary.jobs_queued;
}
process.stdout.write(`${JSON.stringify({ durations_ms: durations, statuses, records })}\n`);
