/**
 * The local Secrets Manager + SQS on their own: `tsx local/aws/main.ts [--port 4566]`.
 * Prints one JSON line, `{"url": …}`, the endpoint to put in AWS_ENDPOINT_URL; stops on
 * SIGINT or SIGTERM.
 */
import { parseArgs } from "node:util";
import { startLocalAws } from "./server";

const { values } = parseArgs({ options: { port: { type: "string", default: "4566" } } });
const aws = await startLocalAws({ port: Number(values.port) });
console.log(JSON.stringify({ url: aws.url }));

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => void aws.close().then(() => process.exit(0)));
}
