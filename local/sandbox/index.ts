export * from "./messages";
export * from "./secret";
export * from "./seed";
export * from "./server";
export * from "./settings";
export type * from "./types";
