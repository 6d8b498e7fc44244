/**
 * Local Secrets Manager + SQS on their own: `tsx test/local-aws/main.ts [--port 4566]`.
 * Prints one JSON line with the endpoint to put in AWS_ENDPOINT_URL.
 */
import { parseArgs } from "node:util";
import { startLocalAws } from "./index";

const { values } = parseArgs({ options: { port: { type: "string", default: "4566" } } });
const aws = await startLocalAws({ port: Number(values.port) });
console.log(JSON.stringify({ url: aws.url }));

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => void aws.close().then(() => process.exit(0)));
}
