export * from "./seed";
export * from "./server";
export * from "./settings";
