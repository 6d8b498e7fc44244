import middy from "@middy/core";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import { describe, expect, it, vi } from "vitest";
import { ERROR_TABLE, type ErrorCode, ServiceError } from "../../lib/errors";
import { httpErrorResponse } from "../../lib/middleware/http-error-response";
import { httpEvent, lambdaContext } from "../../local/lambda-events";

function failingHandler(error: unknown) {
  const logger = { error: vi.fn(), warn: vi.fn() };
  const handler = middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>()
    .use(httpErrorResponse({ logger }))
    .handler(async () => {
      throw error;
    });
  return { handler, logger };
}

async function answer(error: unknown) {
  const { handler, logger } = failingHandler(error);
  const response = (await handler(
    httpEvent({ method: "GET", path: "/x" }),
    lambdaContext(),
  )) as APIGatewayProxyStructuredResultV2;
  return { response, body: JSON.parse(String(response.body)), logger };
}

describe("httpErrorResponse", () => {
  it.each(Object.entries(ERROR_TABLE))(
    "answers %s with the table's status %o",
    async (code, rule) => {
      const { response, body } = await answer(
        new ServiceError(code as ErrorCode, `because ${code}`, { zohoCode: 57 }),
      );
      expect(response.statusCode).toBe(rule.httpStatus);
      expect(response.headers?.["content-type"]).toBe("application/json");
      expect(body).toEqual({
        error: { code, message: `because ${code}`, zoho_code: 57, request_id: "req-Abc123=" },
      });
    },
  );

  it("sets Retry-After on a 429", async () => {
    const { response } = await answer(
      new ServiceError("ZOHO_RATE_LIMITED", "slow down", { retryAfterSeconds: 17 }),
    );
    expect(response.headers?.["retry-after"]).toBe("17");
  });

  it("answers a per-error status over the table's (504 on timeout)", async () => {
    const { response } = await answer(
      new ServiceError("ZOHO_UNAVAILABLE", "timeout", { httpStatus: 504 }),
    );
    expect(response.statusCode).toBe(504);
  });

  it("answers an unexpected error as 500 INTERNAL_ERROR without its message or stack, and logs the stack", async () => {
    const bug = new TypeError("Cannot read properties of undefined (reading 'secret_value')");
    const { response, body, logger } = await answer(bug);
    expect(response.statusCode).toBe(500);
    expect(body.error).toEqual({
      code: "INTERNAL_ERROR",
      message: "Unexpected internal error.",
      request_id: "req-Abc123=",
    });
    expect(response.body).not.toContain("secret_value");
    expect(logger.error).toHaveBeenCalledWith("Request failed", {
      error: expect.objectContaining({
        code: "INTERNAL_ERROR",
        stack: expect.stringContaining("TypeError"),
      }),
    });
  });

  it("keeps the status of Middy's own client errors (an unknown route is a 404)", async () => {
    const notFound = Object.assign(new Error("Route does not exist"), {
      statusCode: 404,
      expose: true,
    });
    const { response, body } = await answer(notFound);
    expect(response.statusCode).toBe(404);
    expect(body.error.code).toBe("INVALID_REQUEST");
  });

  it("logs client errors as warnings and server errors as errors", async () => {
    const client = await answer(new ServiceError("INVALID_REQUEST", "bad"));
    expect(client.logger.warn).toHaveBeenCalled();
    expect(client.logger.error).not.toHaveBeenCalled();
    const server = await answer(new ServiceError("ZOHO_UNAVAILABLE", "down"));
    expect(server.logger.error).toHaveBeenCalled();
  });
});

describe("workerDecision", async () => {
  const { workerDecision } = await import("../../lib/errors");
  it.each(Object.entries(ERROR_TABLE))("decides for %s what the table says", (code, rule) => {
    const decision = workerDecision(
      new ServiceError(code as ErrorCode, "x", { retryAfterSeconds: 30 }),
      0,
      5,
    );
    if (rule.worker === "park") expect(decision).toEqual({ action: "park" });
    else if (rule.worker === "wait") expect(decision).toEqual({ action: "wait", delaySeconds: 30 });
    else expect(decision).toEqual({ action: "retry", delaySeconds: 30 });
  });

  it("backs off real failures with the attempts, up to 15 minutes, and parks the 5th", () => {
    const error = new ServiceError("ZOHO_UNAVAILABLE", "down");
    expect([0, 1, 2, 3, 4].map((attempts) => workerDecision(error, attempts, 5))).toEqual([
      { action: "retry", delaySeconds: 15 },
      { action: "retry", delaySeconds: 60 },
      { action: "retry", delaySeconds: 240 },
      { action: "retry", delaySeconds: 900 },
      { action: "park" },
    ]);
  });

  it("never counts a quota wait as an attempt, however many came before", () => {
    const daily = new ServiceError("ZOHO_DAILY_LIMIT", "x", { retryAfterSeconds: 80_000 });
    expect(workerDecision(daily, 4, 5)).toEqual({ action: "wait", delaySeconds: 80_000 });
  });
});
