import {
  GetSecretValueCommand,
  PutSecretValueCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
} from "@aws-sdk/client-secrets-manager";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { TokenStore } from "../../lib/credentials/token-store";
import type { ServiceError } from "../../lib/errors";
import { type Ledger, startLedger } from "../support/ledger";

// The token store against a real (in-memory) DynamoDB ledger; Secrets Manager mocked, read-only.
const sm = mockClient(SecretsManagerClient);
const T0 = Date.parse("2026-11-25T10:00:00.000Z");
const CLIENT_SECRET = "client-secret-never-logged";
const REFRESH_TOKEN = "1000.refresh.never-logged";
const SECRET_ID = "zoho/books";

const baseSecret = {
  client_id: "1000.CLIENT",
  client_secret: CLIENT_SECRET,
  refresh_token: REFRESH_TOKEN,
  accounts_url: "https://accounts.example.test",
  organization_id: "123456789",
};

let ledger: Ledger;
let secretVersion = 1;
let secretValue: Record<string, unknown> = baseSecret;

beforeAll(async () => {
  ledger = await startLedger();
});
afterAll(() => ledger.close());
beforeEach(async () => {
  await ledger.reset();
  sm.reset();
  setSecret(baseSecret);
  sm.on(GetSecretValueCommand).callsFake(() => ({
    SecretString: JSON.stringify(secretValue),
    VersionId: `v${secretVersion}`,
  }));
  sm.on(PutSecretValueCommand).rejects(
    Object.assign(new Error("not authorized"), { name: "AccessDeniedException" }),
  );
});

/** The operator writes a new version of the secret. */
function setSecret(value: Record<string, unknown>) {
  secretValue = value;
  secretVersion++;
}

/** A token endpoint that grants a new token per call (or answers `answer`) and counts the calls. */
function tokenEndpoint(
  answer: (n: number) => { status: number; body: unknown } = (n) => ({
    status: 200,
    body: {
      access_token: `1000.granted.${n}`,
      api_domain: "https://books.example.test",
      token_type: "Bearer",
      expires_in: 3600,
    },
  }),
  delayMs = 0,
) {
  let calls = 0;
  const fetch = vi.fn(async () => {
    calls++;
    const n = calls;
    if (delayMs) await new Promise((resolve) => setTimeout(resolve, delayMs));
    const { status, body } = answer(n);
    return new Response(JSON.stringify(body), { status });
  });
  return { fetch: fetch as unknown as typeof globalThis.fetch, calls: () => calls };
}

/** One container's token store. */
function container(fetchImpl: typeof fetch, now = () => T0, extra = {}) {
  return new TokenStore({
    secretId: SECRET_ID,
    secretsManager: new SecretsManagerClient({ region: "us-east-1" }),
    dynamo: ledger.dynamo,
    table: ledger.table,
    fetch: fetchImpl,
    now,
    pollIntervalMs: 5,
    cacheTtlSeconds: 300,
    ...extra,
  });
}

const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (error: unknown) => error as ServiceError,
  );

describe("TokenStore on the ledger: at Zoho's grant limits", () => {
  it("lets exactly one of 8 containers grant when none has a token, and all use its token", async () => {
    const endpoint = tokenEndpoint(undefined, 50);
    const containers = Array.from({ length: 8 }, () => container(endpoint.fetch, () => Date.now()));
    const tokens = await Promise.all(containers.map((c) => c.getAccessToken()));
    expect(endpoint.calls()).toBe(1);
    expect(new Set(tokens.map((t) => t.accessToken))).toEqual(new Set(["1000.granted.1"]));
  });

  it("never writes the secret: no PutSecretValue, whatever happens", async () => {
    const endpoint = tokenEndpoint();
    await container(endpoint.fetch).getAccessToken();
    await container(
      tokenEndpoint(() => ({ status: 200, body: { error: "invalid_code" } })).fetch,
      () => T0 + 7200_000,
    )
      .getAccessToken()
      .catch(() => undefined);
    expect(sm.commandCalls(PutSecretValueCommand)).toHaveLength(0);
  });

  it("after an accounts-server failure, no container grants again before the back-off (60 s) ends", async () => {
    let now = T0;
    let down = true;
    const endpoint = tokenEndpoint((n) =>
      down
        ? { status: 502, body: { n } }
        : {
            status: 200,
            body: {
              access_token: `1000.ok.${n}`,
              api_domain: "https://books.example.test",
              expires_in: 3600,
            },
          },
    );
    const containers = Array.from({ length: 8 }, () => container(endpoint.fetch, () => now));
    // Ten minutes of an outage, every container busy every 5 seconds.
    for (let second = 0; second < 600; second += 5) {
      now = T0 + second * 1000;
      const errors = await Promise.all(containers.map((c) => failure(c.getAccessToken())));
      // the one container that tried finds the server down; the others wait out its back-off
      for (const error of errors) {
        expect(["ZOHO_UNAVAILABLE", "ZOHO_ACCOUNTS_BACKOFF"]).toContain(error?.code);
      }
      expect(errors.filter((e) => e?.code === "ZOHO_UNAVAILABLE").length).toBeLessThanOrEqual(1);
      if (errors.some((e) => e?.code === "ZOHO_ACCOUNTS_BACKOFF")) {
        expect(errors.find((e) => e?.code === "ZOHO_ACCOUNTS_BACKOFF")?.worker).toBe("wait");
      }
    }
    // one attempt per 60-second back-off window, across all 8 containers
    expect(endpoint.calls()).toBe(10);
    down = false;
    now = T0 + 660_000;
    const tokens = await Promise.all(containers.map((c) => c.getAccessToken()));
    expect(endpoint.calls()).toBe(11);
    expect(new Set(tokens.map((t) => t.accessToken)).size).toBe(1);
  });

  it("after a refused grant (invalid_code), backs off 10 minutes for every container, until the operator changes the secret", async () => {
    let now = T0;
    let revoked = true;
    const endpoint = tokenEndpoint((n) =>
      revoked
        ? { status: 200, body: { error: "invalid_code" } }
        : {
            status: 200,
            body: {
              access_token: `1000.ok.${n}`,
              api_domain: "https://books.example.test",
              expires_in: 3600,
            },
          },
    );
    const [a, b] = [
      container(endpoint.fetch, () => now),
      container(endpoint.fetch, () => now, { cacheTtlSeconds: 0 }),
    ];
    expect((await failure(a.getAccessToken()))?.code).toBe("ZOHO_AUTH_FAILED");
    now += 300_000;
    expect((await failure(a.getAccessToken()))?.message).toContain("store it as refresh_token");
    expect((await failure(b.getAccessToken()))?.code).toBe("ZOHO_AUTH_FAILED");
    expect(endpoint.calls()).toBe(1);
    // The operator stores a new refresh token: the block is lifted for that new version at once.
    revoked = false;
    setSecret({ ...baseSecret, refresh_token: "1000.new.refresh" });
    const token = await b.getAccessToken();
    expect(token.accessToken).toBe("1000.ok.2");
    expect(endpoint.calls()).toBe(2);
  });

  it("an operator's rotation during a grant is never reverted (the secret is only read)", async () => {
    const endpoint = tokenEndpoint(undefined, 30);
    const pending = container(endpoint.fetch).getAccessToken();
    setSecret({ ...baseSecret, refresh_token: "1000.rotated" });
    await pending;
    expect(secretValue.refresh_token).toBe("1000.rotated");
    expect(sm.commandCalls(PutSecretValueCommand)).toHaveLength(0);
  });

  it("a container whose grant lease is live waits for that grant; an expired lease is taken over", async () => {
    let now = T0;
    const endpoint = tokenEndpoint();
    // A container claimed the lease and died (ZOHO_HTTP_TIMEOUT_MS 10 s: the lease lasts 15 s).
    const dead = container(
      tokenEndpoint(() => ({ status: 502, body: {} }), 60_000).fetch,
      () => now,
      {
        timeoutMs: 10_000,
      },
    );
    void dead.getAccessToken().catch(() => undefined);
    await vi.waitFor(async () =>
      expect(await ledger.item(SECRET_ID)).toHaveProperty("lease_holder"),
    );
    const waiting = container(endpoint.fetch, () => now);
    const result = waiting.getAccessToken();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(endpoint.calls()).toBe(0); // it waits instead of granting beside the holder
    now += 16_000; // the lease has expired
    expect((await result).accessToken).toBe("1000.granted.1");
  });

  it("uses the stored token while it is fresh: no grant, no ledger read per call", async () => {
    const endpoint = tokenEndpoint();
    await ledger.storeToken(
      SECRET_ID,
      { access_token: "1000.stored", expires_in: 3600 },
      "https://books.example.test",
    );
    const tokens = container(endpoint.fetch, () => Date.now());
    for (let i = 0; i < 5; i++)
      expect((await tokens.getAccessToken()).accessToken).toBe("1000.stored");
    expect(endpoint.calls()).toBe(0);
  });

  it("after a rejected token, uses a newer stored token without a grant", async () => {
    const endpoint = tokenEndpoint();
    await ledger.storeToken(
      SECRET_ID,
      { access_token: "1000.newer", expires_in: 3600 },
      "https://books.example.test",
    );
    const token = await container(endpoint.fetch, () => Date.now()).replaceRejectedToken(
      "1000.older",
    );
    expect(token.accessToken).toBe("1000.newer");
    expect(endpoint.calls()).toBe(0);
  });

  it("does not grant again when a freshly granted token is refused (a missing scope), in any container", async () => {
    let now = T0;
    const endpoint = tokenEndpoint();
    const first = await container(endpoint.fetch, () => now).getAccessToken();
    now += 60_000;
    for (const c of [container(endpoint.fetch, () => now), container(endpoint.fetch, () => now)]) {
      const error = await failure(c.replaceRejectedToken(first.accessToken));
      expect(error?.code).toBe("ZOHO_UNAUTHORIZED");
      expect(error?.message).toContain("scopes");
    }
    expect(endpoint.calls()).toBe(1);
    now += 300_000; // an older token refused is an expiry or a revocation: one new grant
    await container(endpoint.fetch, () => now).replaceRejectedToken(first.accessToken);
    expect(endpoint.calls()).toBe(2);
  });

  it("with the refresher every 30 minutes and a 40-minute margin, no request container ever grants", async () => {
    let now = T0;
    const endpoint = tokenEndpoint();
    const refresher = container(endpoint.fetch, () => now);
    const request = container(
      () => Promise.reject(new Error("a request container granted")),
      () => now,
    );
    let refreshes = 0;
    for (let minute = 0; minute <= 6 * 60; minute++) {
      now = T0 + minute * 60_000 + 17_000;
      if (minute % 30 === 0)
        refreshes += (await refresher.refreshIfExpiringWithin(40 * 60)).refreshed ? 1 : 0;
      const token = await request.getAccessToken();
      expect(token.expiresAt - now).toBeGreaterThan(5 * 60_000); // never at the edge where it would grant
    }
    expect(refreshes).toBe(13);
    expect(endpoint.calls()).toBe(13);
  });

  it("assumes a one-hour token when the grant answer lacks expires_in", async () => {
    const endpoint = tokenEndpoint(() => ({
      status: 200,
      body: { access_token: "1000.no.expiry", api_domain: "https://books.example.test" },
    }));
    expect((await container(endpoint.fetch).getAccessToken()).expiresAt).toBe(T0 + 3600_000);
  });

  it("picks the accounts server from data_center when no accounts_url is set", async () => {
    const { accounts_url: _omit, ...secret } = baseSecret;
    setSecret({ ...secret, data_center: "eu" });
    const endpoint = tokenEndpoint();
    await container(endpoint.fetch).getAccessToken();
    expect(endpoint.fetch).toHaveBeenCalledWith(
      new URL("https://accounts.zoho.eu/oauth/v2/token"),
      expect.anything(),
    );
  });

  it("ignores the token fields older secrets still carry", async () => {
    setSecret({
      ...baseSecret,
      access_token: "1000.old.in.secret",
      api_domain: "https://x.test",
      access_token_expires_at: new Date(T0 + 3600_000).toISOString(),
    });
    const endpoint = tokenEndpoint();
    expect((await container(endpoint.fetch).getAccessToken()).accessToken).toBe("1000.granted.1");
  });
});

describe("TokenStore: the secret and the ledger unavailable", () => {
  it("reports a malformed secret as CONFIGURATION_ERROR naming fields, not values", async () => {
    setSecret({ client_id: "1000.CLIENT", client_secret: CLIENT_SECRET, data_center: "mars" });
    const error = await failure(container(tokenEndpoint().fetch).getAccessToken());
    expect(error?.code).toBe("CONFIGURATION_ERROR");
    expect(error?.message).toContain("refresh_token");
    expect(error?.message).toContain("data_center: must be one of com, eu");
    expect(error?.message).not.toContain(CLIENT_SECRET);
    expect(error?.message).not.toContain("mars");
  });

  it("reports an unreadable secret as CONFIGURATION_ERROR with the AWS error name", async () => {
    sm.on(GetSecretValueCommand).rejects(
      new ResourceNotFoundException({ message: "nope", $metadata: {} }),
    );
    await expect(container(tokenEndpoint().fetch).getSecret()).rejects.toMatchObject({
      code: "CONFIGURATION_ERROR",
      message:
        "Could not read the Zoho secret zoho/books in Secrets Manager (ResourceNotFoundException).",
    });
  });

  it("reports a missing ledger table as CONFIGURATION_ERROR naming the table", async () => {
    const error = await failure(
      container(tokenEndpoint().fetch, () => T0, { table: "no-such-table" }).getAccessToken(),
    );
    expect(error).toMatchObject({ code: "CONFIGURATION_ERROR" });
    expect(error?.message).toContain("no-such-table");
  });
});
