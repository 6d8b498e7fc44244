/**
 * One caller of the HTTP API for the `mixed` benchmark: a fresh Node process (a Lambda container
 * of the http-api function) that invokes the handler with `POST /contacts/{id}/active` for each
 * id of `BENCH_CONTACT_IDS` (comma-separated), one every `BENCH_INTERVAL_MS`, until the ids run
 * out or SIGTERM. Prints one JSON line on exit: the status of each call and its duration (ms).
 */
import type { APIGatewayProxyStructuredResultV2, Context } from "aws-lambda";
import { handler } from "../functions/http-api";
import { httpEvent } from "../local/lambda-events";

const ids = (process.env.BENCH_CONTACT_IDS ?? "").split(",").filter(Boolean);
const intervalMs = Number(process.env.BENCH_INTERVAL_MS ?? "3000");
let stopping = false;
process.once("SIGTERM", () => {
  stopping = true;
});

const calls: Array<{ id: string; status: number; ms: number }> = [];
const pending: Promise<void>[] = [];
for (const id of ids) {
  if (stopping) break;
  const started = Date.now();
  const context = {
    functionName: "bench-http-api",
    awsRequestId: `bench-${calls.length}`,
    getRemainingTimeInMillis: () => Math.max(0, started + 29_000 - Date.now()),
  } as Context;
  pending.push(
    (async () => {
      const result = (await handler(
        httpEvent({
          method: "POST",
          path: `/contacts/${id}/active`,
          pathParameters: { contact_id: id },
        }),
        context,
      )) as APIGatewayProxyStructuredResultV2;
      calls.push({ id, status: result.statusCode ?? 0, ms: Date.now() - started });
    })().catch(() => {
      calls.push({ id, status: 0, ms: Date.now() - started });
    }),
  );
  await new Promise((resolve) => setTimeout(resolve, intervalMs));
}
await Promise.all(pending);
process.stdout.write(`${JSON.stringify({ calls })}\n`);
