/**
 * The HubSpot sandbox on its own: `tsx local/hubspot/main.ts [--port 4020] [--records 300]
 * [--search-lag-ms 300]`. Prints one JSON line, `{"url", "token"}` (the private-app token to send
 * as `Authorization: Bearer …`; a test value); stops on SIGINT or SIGTERM. Drive it through
 * `{url}/__hubspot/…`.
 */
import { parseArgs } from "node:util";
import { startHubSpotSandbox } from "./index";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "4020" },
    records: { type: "string", default: "300" },
    "search-lag-ms": { type: "string", default: "300" },
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

const hubspot = await startHubSpotSandbox({
  port: count("port"),
  records: count("records"),
  settings: { searchLagMs: count("search-lag-ms") },
});
console.log(JSON.stringify({ url: hubspot.url, token: hubspot.token }));

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => void hubspot.close().then(() => process.exit(0)));
}
