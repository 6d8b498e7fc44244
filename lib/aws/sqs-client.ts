/**
 * The SQS client class, alone in a module: {@link lazySqsClient} loads it with `import()` on the
 * first request, so a Lambda bundle whose function may never send keeps it in a chunk of its own.
 */
export { SQSClient } from "@aws-sdk/client-sqs";
