export * from "./search";
export * from "./seed";
export * from "./server";
export * from "./settings";
export type * from "./types";
