import { PutSecretValueCommand } from "@aws-sdk/client-secrets-manager";
import type { ScheduledEvent } from "aws-lambda";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { handler, type TokenRefreshResult } from "../../functions/scheduled-token-refresh";
import { lambdaContext } from "../../local/lambda-events";
import { type Sandbox, sandboxSecret, startSandbox } from "../../local/sandbox";
import { type Ledger, startLedger } from "../support/ledger";
import { mockSecretStore } from "../support/secret-store";

// These tests read what is logged: the level is set before the logger is built (the project's
// default is SILENT, and each warm invocation goes back to the level the logger was built with).
vi.hoisted(() => vi.stubEnv("LOG_LEVEL", "INFO"));

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

const SECRET_ID = "zoho/books";
let sandbox: Sandbox;
let ledger: Ledger;
let secret: ReturnType<typeof mockSecretStore>;
let output: string[];

beforeAll(async () => {
  [sandbox, ledger] = await Promise.all([startSandbox(), startLedger()]);
  ledger.stubEnv();
  vi.stubEnv("ZOHO_SECRET_ID", SECRET_ID);
  secret = mockSecretStore({});
});
afterAll(async () => {
  await Promise.all([sandbox.close(), ledger.close()]);
  vi.unstubAllEnvs();
});
beforeEach(async () => {
  sandbox.reset();
  await ledger.reset();
  secret.set(sandboxSecret(sandbox));
  output = [];
  for (const stream of [process.stdout, process.stderr]) {
    vi.spyOn(stream, "write").mockImplementation((chunk) => {
      output.push(String(chunk));
      return true;
    });
  }
  return () => vi.restoreAllMocks();
});

const refresh = async () =>
  (await handler(scheduledEvent, lambdaContext("token-refresh"))) as TokenRefreshResult;

/** A live token in the ledger with `minutes` left, as an earlier grant left it. */
async function storeToken(minutes: number) {
  const token = { ...sandbox.issueToken(), expires_in: minutes * 60 };
  await ledger.storeToken(SECRET_ID, token, sandbox.url);
  return ledger.item(SECRET_ID);
}

describe("scheduled-token-refresh", () => {
  it("leaves a fresh token alone and costs no grant", async () => {
    const stored = await storeToken(55);
    const result = await refresh();
    expect(result).toEqual({
      refreshed: false,
      expires_at: new Date(Number(stored.token_expires_at)).toISOString(),
    });
    expect(sandbox.stats().grants).toBe(0);
    expect(await ledger.item(SECRET_ID)).toEqual(stored);
  });

  it("refreshes a token with less than the 40-minute margin left, stores it in the ledger, and logs the expiry but never the token", async () => {
    // 35 minutes left: the next run (30 minutes later) would find 5, so this run renews it
    const before = await storeToken(35);
    const result = await refresh();
    expect(result.refreshed).toBe(true);
    expect(sandbox.stats().grants).toBe(1);
    const stored = await ledger.item(SECRET_ID);
    expect(stored.access_token).not.toBe(before.access_token);
    expect(new Date(Number(stored.token_expires_at)).toISOString()).toBe(result.expires_at);
    expect(Number(stored.token_expires_at)).toBeGreaterThan(Date.now() + 50 * 60_000);
    expect(stored.api_domain).toBe(sandbox.url);
    expect(stored.lease_holder).toBeUndefined(); // the grant lease is let go
    // the secret is only read: the token is not written back to it
    expect(secret.sm.commandCalls(PutSecretValueCommand)).toHaveLength(0);
    expect(secret.current().access_token).toBeUndefined();
    const logs = output.join("");
    expect(logs).toContain(result.expires_at);
    expect(logs).not.toContain(String(stored.access_token));
    expect(logs).not.toContain(String(secret.current().client_secret));
    expect(logs).not.toContain(String(secret.current().refresh_token));
  });

  it("in steady state, each run every 30 minutes leaves a token that outlasts the gap to the next run", async () => {
    await storeToken(60);
    // Runs at 0, 30, 60 and 90 minutes (the sandbox's clock is Date's too). A 60-minute token
    // has 30 left at the next run, inside the 40-minute margin: that run renews it, so a
    // request-path container never finds it near its end and never grants.
    const start = Date.now();
    vi.useFakeTimers({ toFake: ["Date"], shouldAdvanceTime: true });
    try {
      const refreshed: boolean[] = [];
      for (let run = 0; run < 4; run++) {
        vi.setSystemTime(start + run * 30 * 60_000);
        const result = await refresh();
        refreshed.push(result.refreshed);
        expect(Date.parse(result.expires_at) - Date.now()).toBeGreaterThan(50 * 60_000);
      }
      expect(refreshed).toEqual([false, true, true, true]);
      expect(sandbox.stats().grants).toBe(3);
    } finally {
      vi.useRealTimers();
    }
  });

  it("fails loudly, without secrets in the error, when the refresh token is revoked", async () => {
    sandbox.settings.refreshTokenRevoked = true;
    const error = (await refresh().catch((e: unknown) => e)) as Error & { code: string };
    expect(error.code).toBe("ZOHO_AUTH_FAILED");
    expect(error.message).not.toContain(String(secret.current().client_secret));
    expect(error.message).not.toContain(String(secret.current().refresh_token));
  });
});
