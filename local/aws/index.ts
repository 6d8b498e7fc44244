export type { BusEvent } from "./eventbridge";
export * from "./server";
export type { MessageAttributes, QueueMessage } from "./sqs";
