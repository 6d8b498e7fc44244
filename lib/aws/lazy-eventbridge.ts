import type { EventBridgeClient } from "@aws-sdk/client-eventbridge";
import { lazyClient } from "./lazy-client";

/**
 * An EventBridge client whose SDK module is loaded, and the client created, on its first `send`:
 * the worker sends an outcome event when a job ends (done, held or parked: lib/jobs/recorder.ts),
 * after its Zoho call, and none for a job that waits. In a Lambda bundle the client's code is a
 * chunk parsed only then (docs/performance.md, "Cold start"). It serves `send` and `destroy()`.
 */
export function lazyEventBridgeClient(): EventBridgeClient {
  return lazyClient(() =>
    import("./eventbridge-client").then(({ EventBridgeClient }) => new EventBridgeClient({})),
  );
}
