import type { ScheduledEvent } from "aws-lambda";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { handler, type TokenRefreshResult } from "../../functions/scheduled-token-refresh";
import { logger } from "../../lib/observability";
import { type Sandbox, sandboxSecret, startSandbox } from "../sandbox";
import { lambdaContext } from "../support/events";
import { mockSecretStore } from "../support/secret-store";

const scheduledEvent: ScheduledEvent = {
  version: "0",
  id: "89d1a02d-5ec7-412e-82f5-13505f849b41",
  "detail-type": "Scheduled Event",
  source: "aws.events",
  account: "123456789012",
  time: "2026-11-25T10:00:00Z",
  region: "us-east-1",
  resources: ["arn:aws:events:us-east-1:123456789012:rule/token-refresh"],
  detail: {},
};

let sandbox: Sandbox;
let secret: ReturnType<typeof mockSecretStore>;
let output: string[];

beforeAll(async () => {
  sandbox = await startSandbox();
  vi.stubEnv("ZOHO_SECRET_ID", "zoho/books");
  logger.setLogLevel("INFO"); // these tests read what is logged
  secret = mockSecretStore({});
});
afterAll(async () => {
  await sandbox.close();
  vi.unstubAllEnvs();
});
beforeEach(() => {
  sandbox.reset();
  output = [];
  vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
    output.push(String(chunk));
    return true;
  });
  return () => vi.restoreAllMocks();
});

const refresh = async () =>
  (await handler(scheduledEvent, lambdaContext("token-refresh"))) as TokenRefreshResult;

describe("scheduled-token-refresh", () => {
  it("leaves a fresh token alone and costs no grant", async () => {
    const fresh = sandboxSecret(sandbox, { fresh: true });
    secret.set(fresh);
    const result = await refresh();
    expect(result).toEqual({ refreshed: false, expires_at: fresh.access_token_expires_at });
    expect(sandbox.stats().grants).toBe(0);
  });

  it("refreshes a token with less than the margin left, stores it, and logs the expiry but never the token", async () => {
    secret.set({
      ...sandboxSecret(sandbox, { fresh: true }),
      access_token_expires_at: new Date(Date.now() + 10 * 60_000).toISOString(),
    });
    const result = await refresh();
    expect(result.refreshed).toBe(true);
    expect(sandbox.stats().grants).toBe(1);
    const stored = secret.current();
    expect(stored.access_token_expires_at).toBe(result.expires_at);
    expect(stored.api_domain).toBe(sandbox.url);
    expect(stored.refresh_lock).toBeUndefined();
    const logs = output.join("");
    expect(logs).toContain(result.expires_at);
    expect(logs).not.toContain(String(stored.access_token));
    expect(logs).not.toContain(String(stored.client_secret));
    expect(logs).not.toContain(String(stored.refresh_token));
  });

  it("fails loudly, without secrets in the error, when the refresh token is revoked", async () => {
    secret.set(sandboxSecret(sandbox));
    sandbox.settings.refreshTokenRevoked = true;
    const error = (await refresh().catch((e: unknown) => e)) as Error & { code: string };
    expect(error.code).toBe("ZOHO_AUTH_FAILED");
    expect(error.message).not.toContain(String(secret.current().client_secret));
  });
});
