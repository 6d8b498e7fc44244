import { defineConfig } from "vitest/config";

// Three suites: unit (no I/O beyond mocks), integration (real HTTP to the Zoho sandbox),
// e2e (the whole local stack). `npm test` runs them all; CI repeats unit+integration on Node 24.
// In-process handlers log nothing and emit no EMF unless a test turns logging on to assert on it.
const quiet = { LOG_LEVEL: "SILENT", POWERTOOLS_METRICS_DISABLED: "true" };
// No test may reach a real AWS endpoint: an SDK client a test did not point at a local endpoint
// (or mock) meets a closed loopback port instead of the internet.
const offline = {
  AWS_ENDPOINT_URL: "http://127.0.0.1:9",
  AWS_REGION: "us-east-1",
  AWS_ACCESS_KEY_ID: "test",
  AWS_SECRET_ACCESS_KEY: "test",
};

export default defineConfig({
  test: {
    projects: [
      {
        test: { name: "unit", include: ["test/unit/**/*.test.ts"], env: { ...offline, ...quiet } },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          testTimeout: 30_000,
          // handlers run in-process here too: quiet unless a test sets a level to read the logs
          env: { ...offline, ...quiet },
        },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          env: offline,
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
