import {
  InternalServerError,
  ProvisionedThroughputExceededException,
  ResourceNotFoundException,
  ThrottlingException,
} from "@aws-sdk/client-dynamodb";
import { describe, expect, it } from "vitest";
import {
  AWS_RETRY_AFTER_SECONDS,
  awsError,
  ERROR_TABLE,
  isAwsTransient,
  parseRetryAfter,
  ServiceError,
  workerDecision,
  zohoAnswerToError,
} from "../../lib/errors";

const at = new Date("2026-11-25T10:00:45.000Z"); // 15 s before the next minute

const answer = (status: number, code?: number, message = "Zoho says so", contactInPath = true) => ({
  status,
  body: code === undefined ? undefined : { code, message },
  contactInPath,
});

const CONTACT = true;
const LIST = false;

describe("the error table", () => {
  it.each([
    // [what Zoho answered, status, code, request named a contact, expected code, HTTP status, worker decision]
    ["code 2 on a contact URL", 400, 2, CONTACT, "CONTACT_NOT_FOUND", 404, "park"],
    ["code 2 on a contact URL, HTTP 404", 404, 2, CONTACT, "CONTACT_NOT_FOUND", 404, "park"],
    ["code 2 on the list (organization_id)", 400, 2, LIST, "INVALID_ORGANIZATION", 400, "park"],
    ["code 1002 on a contact URL", 404, 1002, CONTACT, "CONTACT_NOT_FOUND", 404, "park"],
    ["code 1002 on a contact URL, HTTP 400", 400, 1002, CONTACT, "CONTACT_NOT_FOUND", 404, "park"],
    ["code 1002 on the list", 404, 1002, LIST, "INVALID_ORGANIZATION", 400, "park"],
    [
      "HTTP 404 without a code on a contact URL",
      404,
      undefined,
      CONTACT,
      "CONTACT_NOT_FOUND",
      404,
      "park",
    ],
    [
      "HTTP 404 without a code on the list",
      404,
      undefined,
      LIST,
      "ZOHO_UNEXPECTED_ANSWER",
      502,
      "retry",
    ],
    ["code 6024", 400, 6024, CONTACT, "INVALID_ORGANIZATION", 400, "park"],
    ["code 4001", 400, 4001, CONTACT, "INVALID_ORGANIZATION", 400, "park"],
    ["code 6041", 400, 6041, LIST, "INVALID_ORGANIZATION", 400, "park"],
    ["code 9017", 400, 9017, CONTACT, "INVALID_ORGANIZATION", 400, "park"],
    [
      "code 14 with HTTP 400 (organization_id)",
      400,
      14,
      CONTACT,
      "INVALID_ORGANIZATION",
      400,
      "park",
    ],
    [
      "code 14 with HTTP 401 (no Authorization header)",
      401,
      14,
      CONTACT,
      "ZOHO_UNAUTHORIZED",
      502,
      "retry",
    ],
    ["code 57", 401, 57, CONTACT, "ZOHO_UNAUTHORIZED", 502, "retry"],
    ["HTTP 401 without a code", 401, undefined, LIST, "ZOHO_UNAUTHORIZED", 502, "retry"],
    ["HTTP 405", 405, undefined, CONTACT, "ZOHO_METHOD_NOT_ALLOWED", 500, "retry"],
    ["code 44 (per minute)", 429, 44, CONTACT, "ZOHO_RATE_LIMITED", 429, "wait"],
    ["code 1070 (concurrency)", 429, 1070, LIST, "ZOHO_RATE_LIMITED", 429, "wait"],
    ["code 45 (daily cap)", 429, 45, CONTACT, "ZOHO_DAILY_LIMIT", 429, "wait"],
    ["HTTP 429 without a code", 429, undefined, CONTACT, "ZOHO_RATE_LIMITED", 429, "wait"],
    ["HTTP 429 with an unknown code", 429, 7777, CONTACT, "ZOHO_RATE_LIMITED", 429, "wait"],
    ["code 5", 500, 5, CONTACT, "ZOHO_UNAVAILABLE", 502, "retry"],
    ["code 1000", 500, 1000, LIST, "ZOHO_UNAVAILABLE", 502, "retry"],
    ["an HTML 502 page", 502, undefined, CONTACT, "ZOHO_UNAVAILABLE", 502, "retry"],
    ["an unknown code", 400, 9999, CONTACT, "ZOHO_UNEXPECTED_ANSWER", 502, "retry"],
  ] as const)(
    "maps %s to %s",
    (_what, status, code, contactInPath, expected, httpStatus, worker) => {
      const error = zohoAnswerToError(answer(status, code, "Zoho says so", contactInPath), at);
      expect(error).toBeInstanceOf(ServiceError);
      expect(error.code).toBe(expected);
      expect(error.statusCode).toBe(httpStatus);
      expect(error.worker).toBe(worker);
      expect(error.zohoCode).toBe(code);
      expect(error.message).toContain(`HTTP ${status}`);
    },
  );

  it("takes a request that does not say otherwise as naming a contact", () => {
    expect(zohoAnswerToError({ status: 400, body: { code: 2 } }, at).code).toBe(
      "CONTACT_NOT_FOUND",
    );
  });

  it.each([
    [400, 2, CONTACT],
    [400, 2, LIST],
    [404, 1002, CONTACT],
    [400, 14, CONTACT],
    [401, 14, CONTACT],
    [400, 6024, CONTACT],
    [401, 57, CONTACT],
  ] as const)(
    "never decides by the message: HTTP %i code %i reads the same in any language",
    (status, code, contactInPath) => {
      const codes = [
        "Invalid value passed for organization_id",
        "Invalid value passed for contact_id",
        "El recurso no existe.",
        "拒绝访问",
        "",
      ].map((message) => zohoAnswerToError(answer(status, code, message, contactInPath), at).code);
      expect(new Set(codes).size).toBe(1);
    },
  );

  it("says, for code 2 on a contact URL, that the organization may be the invalid value", () => {
    expect(zohoAnswerToError(answer(400, 2), at).message).toContain("organization_id");
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
      "METHOD_NOT_ALLOWED",
      "NOT_FOUND",
      "OUTSTANDING_BALANCE",
      "SYNC_LIMIT_EXCEEDED",
      "UNAUTHORIZED",
    ]);
  });
});

describe("AWS failures: AWS_UNAVAILABLE when they pass with time, CONFIGURATION_ERROR when an operator must act", () => {
  const meta = (httpStatusCode: number) => ({ $metadata: { httpStatusCode } });
  const named = (name: string, extra: object = {}) =>
    Object.assign(new Error(`${name} happened`), { name }, extra);

  it.each([
    [
      "a throttled ledger write",
      new ProvisionedThroughputExceededException({ message: "slow down", ...meta(400) }),
    ],
    ["DynamoDB throttling", new ThrottlingException({ message: "throttled", ...meta(400) })],
    ["a DynamoDB 500", new InternalServerError({ message: "oops", ...meta(500) })],
    ["an SQS 503", named("ServiceUnavailable", meta(503))],
    ["a Secrets Manager 503", named("ServiceUnavailable", meta(503))],
    ["an HTTP 429 of any service", named("TooManyRequests", meta(429))],
    ["the SDK's request timeout", named("TimeoutError")],
    ["a reset connection", named("Error", { code: "ECONNRESET" })],
    ["DNS that failed", named("Error", { code: "EAI_AGAIN" })],
    ["a failure the SDK marked retryable", named("InternalError", { $retryable: {} })],
  ])("%s is AWS_UNAVAILABLE: 503 with Retry-After, the worker waits", (_, failure) => {
    const error = awsError(failure, "use the ledger table t in DynamoDB");
    expect(isAwsTransient(failure)).toBe(true);
    expect(error).toMatchObject({
      code: "AWS_UNAVAILABLE",
      statusCode: 503,
      retryAfterSeconds: AWS_RETRY_AFTER_SECONDS,
    });
    expect(error.message).toMatch(/^Could not use the ledger table t in DynamoDB \(\w+\): AWS/);
    expect(workerDecision(error, 4, 5)).toEqual({
      action: "wait",
      delaySeconds: AWS_RETRY_AFTER_SECONDS,
    });
  });

  it.each([
    ["a missing table", new ResourceNotFoundException({ message: "no table", ...meta(400) })],
    ["a missing queue", named("AWS.SimpleQueueService.NonExistentQueue", meta(400))],
    ["a missing secret", named("ResourceNotFoundException", meta(400))],
    ["access denied", named("AccessDeniedException", meta(400))],
    ["an unknown key id", named("UnrecognizedClientException", meta(400))],
    ["a refusal SQS says is ours", named("InvalidParameterValue", meta(400))],
    [
      "a missing table after the SDK corrected its clock skew",
      named("ResourceNotFoundException", {
        $metadata: { httpStatusCode: 400, clockSkewCorrected: true },
      }),
    ],
  ])("%s is CONFIGURATION_ERROR: 500, retried with attempts counted", (_, failure) => {
    const error = awsError(failure, "read the Zoho secret s in Secrets Manager");
    expect(isAwsTransient(failure)).toBe(false);
    expect(error).toMatchObject({ code: "CONFIGURATION_ERROR", statusCode: 500 });
    expect(error.message).toBe(
      `Could not read the Zoho secret s in Secrets Manager (${failure.name}).`,
    );
    expect(workerDecision(error, 0, 5)).toEqual({ action: "retry", delaySeconds: 15 });
    expect(workerDecision(error, 4, 5)).toEqual({ action: "park" });
  });

  it("keeps a ServiceError as it is", () => {
    const error = new ServiceError("ZOHO_DAILY_LIMIT", "quota");
    expect(awsError(error, "anything")).toBe(error);
  });

  it("has one row each in the error table", () => {
    expect(ERROR_TABLE.AWS_UNAVAILABLE).toEqual({ httpStatus: 503, worker: "wait" });
    expect(ERROR_TABLE.CONFIGURATION_ERROR).toEqual({ httpStatus: 500, worker: "retry" });
  });
});
