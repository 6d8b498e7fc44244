import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import { ServiceError } from "./errors";

/** Bodies larger than this are refused before parsing (500 items are far below it). */
export const MAX_BODY_BYTES = 256 * 1024;

/**
 * The request body's bytes, base64-decoded when API Gateway encoded it, refused above
 * {@link MAX_BODY_BYTES}. An absent body and `null` (what serverless-offline sends) are empty.
 */
export function bodyBytes(event: Pick<APIGatewayProxyEventV2, "body" | "isBase64Encoded">): Buffer {
  const text = event.body ?? "";
  const body = event.isBase64Encoded ? Buffer.from(text, "base64") : Buffer.from(text, "utf8");
  if (body.byteLength > MAX_BODY_BYTES) {
    throw new ServiceError("INVALID_REQUEST", `The body is larger than ${MAX_BODY_BYTES} bytes.`);
  }
  return body;
}

/** The request body as JSON ({@link bodyBytes}, parsed); an empty body is refused. */
export function readJsonBody(event: APIGatewayProxyEventV2): unknown {
  const body = bodyBytes(event);
  if (body.byteLength === 0) {
    throw new ServiceError("INVALID_REQUEST", "The request needs a JSON body.");
  }
  try {
    return JSON.parse(body.toString("utf8"));
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

/** A route as `@middy/http-router` takes it; only its method and path matter here. */
export interface RouteShape {
  method: string;
  path: string;
}

/**
 * The router's fallback (`notFoundResponse`): 405 naming the methods the path takes when it
 * exists under another method, else 404; both in the contract's error shape. The path the caller
 * sent is not repeated in the message.
 *
 * @example
 * httpRouterHandler({ routes, notFoundResponse: routeNotFound(routes) });
 */
export function routeNotFound(routes: ReadonlyArray<RouteShape>) {
  const templates = routes.map(({ method, path }) => ({
    method,
    // Middy's own matching: `{name}` is one segment, a trailing slash is optional.
    pattern: new RegExp(`^${path.replace(/\{[^/]+\}/g, "[^/]+")}/?$`),
  }));
  return function routeNotFoundResponse({ method, path }: RouteShape): never {
    const allow = templates.filter((t) => t.pattern.test(path)).map((t) => t.method);
    if (allow.length > 0) {
      throw new ServiceError(
        "METHOD_NOT_ALLOWED",
        `This route does not take ${method}; it takes ${allow.join(", ")}.`,
        { details: { allow } },
      );
    }
    throw new ServiceError("NOT_FOUND", "No such route (see docs/api.md for the routes).");
  };
}
