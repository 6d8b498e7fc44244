export * from "./protocol";
export * from "./server";
export { md5OfAttributes } from "./sqs";
