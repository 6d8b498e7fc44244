export * from "./server";
export type { MessageAttributes, QueueMessage } from "./sqs";
