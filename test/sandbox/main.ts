/**
 * The Zoho Books sandbox on its own: `tsx test/sandbox/main.ts [--port 4010] [--contacts 300]
 * [--rate-limit 100]`. Prints one JSON line with its URL and the credentials to put in a secret.
 */
import { parseArgs } from "node:util";
import { SANDBOX_CREDENTIALS, startSandbox } from "./index";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "4010" },
    contacts: { type: "string", default: "300" },
    "rate-limit": { type: "string", default: "100" },
  },
});

const sandbox = await startSandbox({
  port: Number(values.port),
  contacts: Number(values.contacts),
  settings: { rateLimitPerMinute: Number(values["rate-limit"]) },
});
console.log(JSON.stringify({ url: sandbox.url, credentials: SANDBOX_CREDENTIALS }));

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => void sandbox.close().then(() => process.exit(0)));
}
