import type { SQSClient } from "@aws-sdk/client-sqs";
import { lazyClient } from "./lazy-client";

/**
 * An SQS client whose SDK module is loaded, and the client created, on its first `send`: the
 * HTTP API sends only for `POST /activations` and webhooks, the worker only for a job that waits
 * or is parked, the sync only when it queues changes. In a Lambda bundle the client's own code
 * is then a chunk parsed only on that first send, with the commands lib/jobs/queue.ts builds from
 * the same chunk (docs/performance.md, "Cold start"). It serves
 * the two methods this code base calls, `send(command, options?)` (lib/jobs/queue.ts) and
 * `destroy()`; nothing reads an SQS client's `config` or `middlewareStack` here.
 */
export function lazySqsClient(): SQSClient {
  return lazyClient(() => import("./sqs-client").then(({ SQSClient }) => new SQSClient({})));
}
