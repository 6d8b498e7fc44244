/**
 * The Zoho Books sandbox on its own: `tsx local/sandbox/main.ts [--port 4010] [--contacts 300]
 * [--rate-limit 100]`. Prints one JSON line, `{"url", "credentials"}`, the credentials being what
 * to put in a secret; stops on SIGINT or SIGTERM. Drive it through `{url}/__sandbox/…`.
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

function count(flag: keyof typeof values): number {
  const n = Number(values[flag]);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`--${flag} must be a whole number, 0 or more (got ${values[flag]})`);
    process.exit(2);
  }
  return n;
}

const sandbox = await startSandbox({
  port: count("port"),
  contacts: count("contacts"),
  settings: { rateLimitPerMinute: count("rate-limit") },
});
console.log(JSON.stringify({ url: sandbox.url, credentials: SANDBOX_CREDENTIALS }));

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => void sandbox.close().then(() => process.exit(0)));
}
