export type Json = Record<string, unknown>;

/** An AWS error as the JSON protocols carry it: `__type`, a message and a status. */
export class AwsError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
    /** for SQS's query-compatible errors: the code the SDK reads from `x-amzn-query-error` */
    readonly queryCode?: string,
  ) {
    super(message);
  }
}
