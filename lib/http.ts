import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import { ServiceError } from "./errors";

/** Bodies larger than this are refused before parsing (500 items are far below it). */
export const MAX_BODY_BYTES = 256 * 1024;

/** The request body as JSON: base64 decoded when API Gateway encoded it, size-capped, parsed. */
export function readJsonBody(event: APIGatewayProxyEventV2): unknown {
  if (event.body === undefined || event.body === "") {
    throw new ServiceError("INVALID_REQUEST", "The request needs a JSON body.");
  }
  const text = event.isBase64Encoded
    ? Buffer.from(event.body, "base64").toString("utf8")
    : event.body;
  if (Buffer.byteLength(text) > MAX_BODY_BYTES) {
    throw new ServiceError("INVALID_REQUEST", `The body is larger than ${MAX_BODY_BYTES} bytes.`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new ServiceError("INVALID_REQUEST", "The body is not valid JSON.");
  }
}

export function json(statusCode: number, body: unknown): APIGatewayProxyStructuredResultV2 {
  return {
    statusCode,
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  };
}
