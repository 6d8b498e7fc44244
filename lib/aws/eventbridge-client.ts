/**
 * The EventBridge client class, alone in a module: {@link lazyEventBridgeClient} loads it with
 * `import()` on the first event sent, so a Lambda bundle keeps it in a chunk of its own.
 */
export { EventBridgeClient } from "@aws-sdk/client-eventbridge";
