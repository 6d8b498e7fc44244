import type { MiddlewareObj, Request } from "@middy/core";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import { ServiceError, toServiceError } from "../errors";
import { errorForLog, logger, recordFailure } from "../observability";

export interface HttpErrorResponseOptions {
  logger?: Pick<typeof logger, "error" | "warn">;
}

const defaults: Required<HttpErrorResponseOptions> = { logger };

/**
 * Turns any error into the contract's answer: the error table's status and
 * `{"error": {code, message, zoho_code, request_id}}`, `Retry-After` on 429 and 503, `Allow` on 405. No stack trace
 * or secret ever reaches the body; server-side failures are logged with what may be logged.
 *
 * @example
 * export const handler = middy(router).use(httpErrorResponse());
 */
export function httpErrorResponse(
  opts: HttpErrorResponseOptions = {},
): MiddlewareObj<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2> {
  const options = { ...defaults, ...opts };

  const httpErrorResponseMiddlewareOnError = async (
    request: Request<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>,
  ): Promise<void> => {
    const error = fromMiddyOrThrown(request.error);
    const log = error.statusCode >= 500 ? options.logger.error : options.logger.warn;
    log.call(options.logger, "Request failed", { error: errorForLog(error) });
    recordFailure(error);
    request.response = errorResponse(error, request.event?.requestContext?.requestId);
  };

  return { onError: httpErrorResponseMiddlewareOnError };
}

export function errorResponse(
  error: ServiceError,
  requestId: string | undefined,
): APIGatewayProxyStructuredResultV2 {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (
    (error.statusCode === 429 || error.statusCode === 503) &&
    error.retryAfterSeconds !== undefined
  ) {
    headers["retry-after"] = String(error.retryAfterSeconds);
  }
  if (error.statusCode === 405 && Array.isArray(error.details?.allow)) {
    headers.allow = error.details.allow.join(", ");
  }
  return {
    statusCode: error.statusCode,
    headers,
    body: JSON.stringify({
      error: {
        code: error.code,
        message: error.message,
        ...(error.zohoCode === undefined ? {} : { zoho_code: error.zohoCode }),
        ...(error.details === undefined ? {} : { details: error.details }),
        ...(requestId === undefined ? {} : { request_id: requestId }),
      },
    }),
  };
}

/** Middy's own 4xx errors (an unknown route) become INVALID_REQUEST with their status. */
function fromMiddyOrThrown(error: unknown): ServiceError {
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  if (
    !(error instanceof ServiceError) &&
    typeof status === "number" &&
    status >= 400 &&
    status < 500
  ) {
    return new ServiceError("INVALID_REQUEST", (error as Error).message, { httpStatus: status });
  }
  return toServiceError(error);
}
