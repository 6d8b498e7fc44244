import type { APIGatewayProxyEventV2, Context, SQSEvent, SQSRecord } from "aws-lambda";

/** A Lambda context good enough for Middy and Powertools. */
export function lambdaContext(functionName = "test-function"): Context {
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: "$LATEST",
    invokedFunctionArn: `arn:aws:lambda:us-east-1:123456789012:function:${functionName}`,
    memoryLimitInMB: "256",
    awsRequestId: "c6af9ac6-7b61-11e6-9a41-93e812345678",
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: "2026/11/25/[$LATEST]abcdef",
    getRemainingTimeInMillis: () => 30_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

export interface HttpEventInput {
  method: string;
  path: string;
  query?: Record<string, string>;
  body?: string;
  isBase64Encoded?: boolean;
  headers?: Record<string, string>;
  /** set as API Gateway would; leave out to test the router's own matching */
  pathParameters?: Record<string, string>;
}

/** An API Gateway HTTP API (payload format 2.0) event, as API Gateway sends it. */
export function httpEvent(input: HttpEventInput): APIGatewayProxyEventV2 {
  const rawQueryString = new URLSearchParams(input.query ?? {}).toString();
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath: input.path,
    rawQueryString,
    headers: { "Content-Type": "application/json", "User-Agent": "vitest", ...input.headers },
    ...(input.query ? { queryStringParameters: input.query } : {}),
    ...(input.pathParameters ? { pathParameters: input.pathParameters } : {}),
    requestContext: {
      accountId: "123456789012",
      apiId: "api-id",
      domainName: "api-id.execute-api.us-east-1.amazonaws.com",
      domainPrefix: "api-id",
      http: {
        method: input.method,
        path: input.path,
        protocol: "HTTP/1.1",
        sourceIp: "203.0.113.1",
        userAgent: "vitest",
      },
      requestId: "req-Abc123=",
      routeKey: "$default",
      stage: "$default",
      time: "25/Nov/2026:10:00:00 +0000",
      timeEpoch: 1795600000000,
    },
    ...(input.body === undefined ? {} : { body: input.body }),
    isBase64Encoded: input.isBase64Encoded ?? false,
  };
}

export const QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:activation-queue";

/** An SQS record as Lambda's event source mapping delivers it. */
export function sqsRecord(body: unknown, overrides: Partial<SQSRecord> = {}): SQSRecord {
  const messageId = overrides.messageId ?? `msg-${Math.random().toString(36).slice(2)}`;
  return {
    messageId,
    receiptHandle: `rh-${messageId}`,
    body: typeof body === "string" ? body : JSON.stringify(body),
    attributes: {
      ApproximateReceiveCount: "1",
      SentTimestamp: "1795600000000",
      SenderId: "AIDAEXAMPLE",
      ApproximateFirstReceiveTimestamp: "1795600000001",
    },
    messageAttributes: {},
    md5OfBody: "",
    eventSource: "aws:sqs",
    eventSourceARN: QUEUE_ARN,
    awsRegion: "us-east-1",
    ...overrides,
  };
}

export function sqsEvent(records: SQSRecord[]): SQSEvent {
  return { Records: records };
}
