import type { APIGatewayProxyEventV2 } from "aws-lambda";
import { ServiceError } from "../errors";
import { bodyBytes, type MAX_BODY_BYTES } from "../http";

/** A webhook request as authorization and parsing need it: exact bytes, lower-cased headers. */
export interface WebhookRequest {
  /** the HTTP method, upper-case */
  method: string;
  /** the https URL the sender called, as API Gateway received it (see {@link requestUrl}) */
  url: string;
  /** header names lower-cased */
  headers: Record<string, string | undefined>;
  query: Record<string, string | undefined>;
  /** the body's bytes as the sender signed them (base64-decoded when API Gateway encoded it) */
  body: Buffer;
}

/**
 * The parts of an API Gateway (payload 2.0) event a webhook needs, the body size-capped at
 * {@link MAX_BODY_BYTES}. An absent or `null` body is an empty one.
 */
export function webhookRequest(event: APIGatewayProxyEventV2): WebhookRequest {
  const body = bodyBytes(event);
  const headers: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(event.headers ?? {})) {
    headers[name.toLowerCase()] = value;
  }
  return {
    method: event.requestContext.http.method.toUpperCase(),
    url: requestUrl(event),
    headers,
    query: { ...event.queryStringParameters },
    body,
  };
}

/**
 * The URL the sender called, rebuilt from what API Gateway passes on: always `https` (an HTTP API
 * has no plain-HTTP endpoint), the host it was called on (`requestContext.domainName`: the
 * generated `execute-api` host, or the custom domain), the path and the query string exactly as
 * received (`rawPath`, `rawQueryString`, not decoded). It is the sender's URL only when nothing
 * between the sender and API Gateway rewrites the host or the path: on a named stage or behind an
 * API mapping with a path, `rawPath` need not be the path the sender called; behind a CDN or
 * proxy, `domainName` is API Gateway's host, not the one the sender called.
 *
 * @example
 * requestUrl(event); // "https://abc123.execute-api.eu-west-1.amazonaws.com/webhooks/hubspot?x=1"
 */
export function requestUrl(event: APIGatewayProxyEventV2): string {
  const query = event.rawQueryString ? `?${event.rawQueryString}` : "";
  return `https://${event.requestContext.domainName}${event.rawPath}${query}`;
}

/**
 * A webhook's payload: JSON, or `application/x-www-form-urlencoded` (Zoho CRM's default) as an
 * object of strings (a repeated field keeps its first value). Any other content type must be
 * JSON: a form is never guessed from the text.
 *
 * @example
 * const payload = parseWebhookBody(event); // { email: "ann@example.com", status: "inactive" }
 */
export function parseWebhookBody(event: APIGatewayProxyEventV2 | WebhookRequest): unknown {
  const request = "requestContext" in event ? webhookRequest(event) : event;
  const text = request.body.toString("utf8");
  if (text.trim() === "") {
    throw new ServiceError("INVALID_REQUEST", "The webhook needs a body (JSON or form data).");
  }
  const type = (request.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase();
  if (type === "application/x-www-form-urlencoded") {
    // No prototype: a field named __proto__ is a field like any other.
    const form: Record<string, string> = Object.create(null);
    for (const [name, value] of new URLSearchParams(text)) {
      if (!Object.hasOwn(form, name)) form[name] = value;
    }
    if (Object.keys(form).length === 0) {
      throw new ServiceError("INVALID_REQUEST", "The form body holds no fields.");
    }
    return form;
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new ServiceError(
      "INVALID_REQUEST",
      type === "application/json" || type === ""
        ? "The body is not valid JSON."
        : "The body is not valid JSON, and its content-type is not application/x-www-form-urlencoded.",
    );
  }
}
