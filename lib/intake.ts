/**
 * What the HTTP API needs only to queue jobs (`POST /activations`, `POST /webhooks/{source}`),
 * the job schemas that check each item included, in one module: `functions/http-api.ts` loads it with `import()` on the first such request, so
 * the Lambda bundle keeps queueing and the webhook route (the webhook configuration's schemas,
 * signatures, mappings) in a chunk that a container answering the other routes never parses.
 * One module, not one per route: each `import()` target splits the eager bundle further (a chunk
 * per set of entries sharing code), and more files made the import slower, not faster
 * (docs/performance.md, "Cold start").
 */
export { describeIssues, parseJob } from "./jobs/job";
export { acceptJobs } from "./jobs/queue";
export { authorizeWebhook, WebhookUnauthorizedError } from "./webhooks/authorize";
export { parseWebhookBody, webhookRequest } from "./webhooks/body";
export { webhookConfigStore, webhookSource } from "./webhooks/config";
export { deliveryDedupe } from "./webhooks/dedupe";
export { mapWebhookPayload } from "./webhooks/mapping";
