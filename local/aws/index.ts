export { type LocalAwsUsage, PARTITION_LIMITS, PartitionMeter } from "./billing";
export type { BusEvent } from "./eventbridge";
export * from "./server";
export type { MessageAttributes, QueueMessage } from "./sqs";
