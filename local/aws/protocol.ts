export type Json = Record<string, unknown>;

/**
 * An AWS error as the JSON protocols carry it: a status, a body with `__type` and the message
 * (under the member name the service's model uses) and, for SQS, the `x-amzn-query-error` header.
 */
export class AwsError extends Error {
  constructor(
    readonly status: number,
    readonly body: Json,
    readonly headers: Record<string, string> = {},
  ) {
    super(String(body.message ?? body.Message ?? body.__type));
  }
}

/** A JSON object, or undefined for anything else (invalid JSON, an array, a scalar). */
export function parseJsonObject(text: string): Json | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Json)
      : undefined;
  } catch {
    return undefined;
  }
}
