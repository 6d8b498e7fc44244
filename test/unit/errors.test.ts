import { describe, expect, it } from "vitest";
import { ERROR_TABLE, parseRetryAfter, ServiceError, zohoAnswerToError } from "../../lib/errors";

const at = new Date("2026-11-25T10:00:45.000Z"); // 15 s before the next minute

const answer = (status: number, code?: number, message = "Zoho says so") => ({
  status,
  body: code === undefined ? undefined : { code, message },
});

describe("the error table", () => {
  it.each([
    // [what Zoho answered, status, code, message, expected code, HTTP status, worker decision]
    ["code 2 (no such contact)", 400, 2, "Invalid URL Passed", "CONTACT_NOT_FOUND", 404, "park"],
    [
      "code 1002 (does not exist)",
      404,
      1002,
      "Contact does not exist.",
      "CONTACT_NOT_FOUND",
      404,
      "park",
    ],
    ["HTTP 404 without a code", 404, undefined, "", "CONTACT_NOT_FOUND", 404, "park"],
    ["code 6024", 400, 6024, "Organization is not valid", "INVALID_ORGANIZATION", 400, "park"],
    [
      "code 2 about organization_id",
      400,
      2,
      "Invalid value passed for organization_id",
      "INVALID_ORGANIZATION",
      400,
      "park",
    ],
    [
      "code 14 about organization_id",
      400,
      14,
      "Invalid value passed for organization_id",
      "INVALID_ORGANIZATION",
      400,
      "park",
    ],
    [
      "code 4001 about organization_id",
      400,
      4001,
      "Invalid value passed for organization_id",
      "INVALID_ORGANIZATION",
      400,
      "park",
    ],
    [
      "code 6041 about organization_id",
      400,
      6041,
      "Invalid value passed for organization_id",
      "INVALID_ORGANIZATION",
      400,
      "park",
    ],
    [
      "code 57",
      401,
      57,
      "You are not authorized to perform this operation",
      "ZOHO_UNAUTHORIZED",
      502,
      "retry",
    ],
    [
      "code 14 (no Authorization header)",
      401,
      14,
      "Invalid OAuth token",
      "ZOHO_UNAUTHORIZED",
      502,
      "retry",
    ],
    ["HTTP 401 without a code", 401, undefined, "", "ZOHO_UNAUTHORIZED", 502, "retry"],
    ["HTTP 405", 405, undefined, "", "ZOHO_METHOD_NOT_ALLOWED", 500, "retry"],
    ["code 44 (per minute)", 429, 44, "Rate limit exceeded", "ZOHO_RATE_LIMITED", 429, "wait"],
    [
      "code 1070 (concurrency)",
      429,
      1070,
      "Too many requests in progress",
      "ZOHO_RATE_LIMITED",
      429,
      "wait",
    ],
    ["code 45 (daily cap)", 429, 45, "Daily limit exceeded", "ZOHO_DAILY_LIMIT", 429, "wait"],
    ["HTTP 429 without a code", 429, undefined, "", "ZOHO_RATE_LIMITED", 429, "wait"],
    ["code 5", 500, 5, "Internal error", "ZOHO_UNAVAILABLE", 502, "retry"],
    ["code 1000", 500, 1000, "Internal error", "ZOHO_UNAVAILABLE", 502, "retry"],
    ["an HTML 502 page", 502, undefined, "", "ZOHO_UNAVAILABLE", 502, "retry"],
    ["an unknown code", 400, 9999, "Something new", "ZOHO_UNEXPECTED_ANSWER", 502, "retry"],
  ] as const)("maps %s to %s", (_what, status, code, message, expected, httpStatus, worker) => {
    const error = zohoAnswerToError(answer(status, code, message), at);
    expect(error).toBeInstanceOf(ServiceError);
    expect(error.code).toBe(expected);
    expect(error.statusCode).toBe(httpStatus);
    expect(error.worker).toBe(worker);
    expect(error.zohoCode).toBe(code);
    expect(error.message).toContain(`HTTP ${status}`);
  });

  it("waits until the next minute after code 44", () => {
    expect(zohoAnswerToError(answer(429, 44), at).retryAfterSeconds).toBe(15);
  });

  it("waits a short back-off after code 1070", () => {
    expect(zohoAnswerToError(answer(429, 1070), at).retryAfterSeconds).toBe(2);
  });

  it("waits until the next UTC day after code 45", () => {
    expect(zohoAnswerToError(answer(429, 45), at).retryAfterSeconds).toBe(14 * 3600 - 45);
  });

  it("honours a Retry-After header over the code's wait", () => {
    const error = zohoAnswerToError({ ...answer(429, 44), retryAfter: "7" }, at);
    expect(error.retryAfterSeconds).toBe(7);
  });

  it("reads Retry-After as seconds or as an HTTP date", () => {
    expect(parseRetryAfter("120", at)).toBe(120);
    expect(parseRetryAfter("Wed, 25 Nov 2026 10:01:45 GMT", at)).toBe(60);
    expect(parseRetryAfter("soon", at)).toBeUndefined();
    expect(parseRetryAfter(null, at)).toBeUndefined();
  });

  it("retries inline only what is transient", () => {
    const inline = Object.entries(ERROR_TABLE)
      .filter(([, rule]) => "retryInline" in rule)
      .map(([code]) => code);
    expect(inline.sort()).toEqual(["ZOHO_RATE_LIMITED", "ZOHO_UNAVAILABLE"]);
  });

  it("parks exactly the errors no retry can cure", () => {
    const parked = Object.entries(ERROR_TABLE)
      .filter(([, rule]) => rule.worker === "park")
      .map(([code]) => code);
    expect(parked.sort()).toEqual([
      "CONTACT_AMBIGUOUS",
      "CONTACT_NOT_FOUND",
      "INVALID_ORGANIZATION",
      "INVALID_REQUEST",
      "SYNC_LIMIT_EXCEEDED",
    ]);
  });
});
