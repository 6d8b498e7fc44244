/**
 * The SQS client class and the commands this code base sends, alone in a module:
 * {@link lazySqsClient} and lib/jobs/queue.ts load it with `import()` on the first request, so a
 * Lambda bundle whose function may never send keeps the client, the commands and SQS's schemas in
 * a chunk of its own (docs/performance.md, "Cold start").
 */
export {
  ChangeMessageVisibilityCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
