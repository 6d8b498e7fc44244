import {
  GetSecretValueCommand,
  PutSecretValueCommand,
  ResourceExistsException,
  ResourceNotFoundException,
  SecretsManagerClient,
} from "@aws-sdk/client-secrets-manager";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { TokenStore } from "../../lib/credentials/token-store";
import { ServiceError } from "../../lib/errors";

const sm = mockClient(SecretsManagerClient);
const T0 = Date.parse("2026-11-25T10:00:00.000Z");
const CLIENT_SECRET = "client-secret-never-logged";
const REFRESH_TOKEN = "1000.refresh.never-logged";

const baseSecret = {
  client_id: "1000.CLIENT",
  client_secret: CLIENT_SECRET,
  refresh_token: REFRESH_TOKEN,
  accounts_url: "https://accounts.example.test",
  organization_id: "123456789",
  note: "kept by every write-back",
};
const freshToken = {
  access_token: "1000.stored.token",
  api_domain: "https://books.example.test",
  access_token_expires_at: new Date(T0 + 3600_000).toISOString(),
};

/** A token endpoint that answers a new token per grant and counts the grants it made. */
function tokenEndpoint(
  answer: (n: number) => unknown = (n) => ({
    access_token: `1000.granted.${n}`,
    api_domain: "https://books.example.test",
    token_type: "Bearer",
    expires_in: 3600,
  }),
) {
  let grants = 0;
  const bodies: string[] = [];
  const fetch = vi.fn(async (_url: string | URL | Request, init?: RequestInit) => {
    bodies.push(String(init?.body));
    grants++;
    return new Response(JSON.stringify(answer(grants)), { status: 200 });
  });
  return { fetch: fetch as unknown as typeof globalThis.fetch, grants: () => grants, bodies };
}

function store(fetchImpl: typeof fetch, now = () => T0, extra = {}) {
  return new TokenStore({
    secretId: "zoho/books",
    secretsManager: new SecretsManagerClient({ region: "us-east-1" }),
    fetch: fetchImpl,
    now,
    pollIntervalMs: 1,
    ...extra,
  });
}

function storedSecret(value: Record<string, unknown>, versionId = "v1") {
  sm.on(GetSecretValueCommand).resolves({
    SecretString: JSON.stringify(value),
    VersionId: versionId,
  });
}

/** What the last PutSecretValue wrote, parsed. */
function lastWrite(): Record<string, unknown> {
  const calls = sm.commandCalls(PutSecretValueCommand);
  return JSON.parse(calls.at(-1)?.args[0].input.SecretString ?? "{}");
}

beforeEach(() => {
  sm.reset();
  sm.on(PutSecretValueCommand).resolves({ VersionId: "v2" });
});

describe("TokenStore", () => {
  it("uses the stored access token while it is fresh, without a grant", async () => {
    storedSecret({ ...baseSecret, ...freshToken });
    const endpoint = tokenEndpoint();
    const token = await store(endpoint.fetch).getAccessToken();
    expect(token).toEqual({
      accessToken: "1000.stored.token",
      apiDomain: "https://books.example.test",
      expiresAt: T0 + 3600_000,
    });
    expect(endpoint.grants()).toBe(0);
    expect(sm.commandCalls(PutSecretValueCommand)).toHaveLength(0);
  });

  it("caches the secret for SECRET_CACHE_TTL_SECONDS and reads it again after", async () => {
    storedSecret({ ...baseSecret, ...freshToken });
    let now = T0;
    const tokens = store(tokenEndpoint().fetch, () => now, { cacheTtlSeconds: 300 });
    await tokens.getAccessToken();
    now += 299_000;
    await tokens.getAccessToken();
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(1);
    now += 2_000;
    await tokens.getAccessToken();
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(2);
  });

  it("refreshes a token that expires within the margin and writes it back keeping every other field", async () => {
    storedSecret({
      ...baseSecret,
      ...freshToken,
      access_token_expires_at: new Date(T0 + 60_000).toISOString(),
    });
    const endpoint = tokenEndpoint();
    const token = await store(endpoint.fetch).getAccessToken();

    expect(endpoint.grants()).toBe(1);
    expect(token.accessToken).toBe("1000.granted.1");
    const form = new URLSearchParams(endpoint.bodies[0]);
    expect(Object.fromEntries(form)).toEqual({
      refresh_token: REFRESH_TOKEN,
      client_id: "1000.CLIENT",
      client_secret: CLIENT_SECRET,
      grant_type: "refresh_token",
    });
    expect(endpoint.fetch).toHaveBeenCalledWith(
      new URL("https://accounts.example.test/oauth/v2/token"),
      expect.objectContaining({ method: "POST" }),
    );
    const written = lastWrite();
    expect(written).toEqual({
      ...baseSecret,
      data_center: "com",
      access_token: "1000.granted.1",
      api_domain: "https://books.example.test",
      access_token_expires_at: new Date(T0 + 3600_000).toISOString(),
    });
  });

  it("refreshes when the secret holds no access token yet", async () => {
    storedSecret(baseSecret);
    const endpoint = tokenEndpoint();
    await store(endpoint.fetch).getAccessToken();
    expect(endpoint.grants()).toBe(1);
  });

  it("shares one secret read among concurrent callers at a cold start", async () => {
    storedSecret({ ...baseSecret, ...freshToken });
    const tokens = store(tokenEndpoint().fetch);
    await Promise.all(Array.from({ length: 10 }, () => tokens.getAccessToken()));
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(1);
  });

  it("shares one refresh among concurrent callers in a container", async () => {
    storedSecret(baseSecret);
    const endpoint = tokenEndpoint();
    const tokens = store(endpoint.fetch);
    const all = await Promise.all(Array.from({ length: 8 }, () => tokens.getAccessToken()));
    expect(endpoint.grants()).toBe(1);
    expect(new Set(all.map((t) => t.accessToken))).toEqual(new Set(["1000.granted.1"]));
  });

  it("claims the refresh with a lock version whose ClientRequestToken derives from the version it replaces", async () => {
    storedSecret(baseSecret, "version-7");
    await store(tokenEndpoint().fetch).getAccessToken();
    const [claim] = sm.commandCalls(PutSecretValueCommand);
    const input = claim?.args[0].input;
    expect(input?.ClientRequestToken).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.parse(input?.SecretString ?? "{}").refresh_lock).toEqual({
      holder: expect.any(String),
      until: new Date(T0 + 15_000).toISOString(),
    });
    expect(lastWrite()).not.toHaveProperty("refresh_lock");
  });

  it("waits for the container that won the lock instead of granting a second token", async () => {
    // The first read shows an expired token; the claim loses; the next read shows the winner's token.
    sm.on(GetSecretValueCommand)
      .resolvesOnce({ SecretString: JSON.stringify(baseSecret), VersionId: "v1" })
      .resolvesOnce({ SecretString: JSON.stringify(baseSecret), VersionId: "v1" })
      .resolves({
        SecretString: JSON.stringify({ ...baseSecret, ...freshToken }),
        VersionId: "v3",
      });
    sm.on(PutSecretValueCommand).rejects(
      new ResourceExistsException({ message: "exists", $metadata: {} }),
    );
    const endpoint = tokenEndpoint();
    const token = await store(endpoint.fetch).getAccessToken();
    expect(endpoint.grants()).toBe(0);
    expect(token.accessToken).toBe("1000.stored.token");
  });

  it("does not claim while another container's lock is live, and uses its token", async () => {
    const locked = {
      ...baseSecret,
      refresh_lock: { holder: "other", until: new Date(T0 + 10_000).toISOString() },
    };
    sm.on(GetSecretValueCommand)
      .resolvesOnce({ SecretString: JSON.stringify(locked), VersionId: "lock" })
      .resolvesOnce({ SecretString: JSON.stringify(locked), VersionId: "lock" })
      .resolves({
        SecretString: JSON.stringify({ ...baseSecret, ...freshToken }),
        VersionId: "v3",
      });
    const endpoint = tokenEndpoint();
    await store(endpoint.fetch).getAccessToken();
    expect(endpoint.grants()).toBe(0);
    expect(sm.commandCalls(PutSecretValueCommand)).toHaveLength(0);
  });

  it("takes over a lock whose holder died once it has expired", async () => {
    const stale = {
      ...baseSecret,
      refresh_lock: { holder: "dead", until: new Date(T0 - 1).toISOString() },
    };
    storedSecret(stale, "lock");
    const endpoint = tokenEndpoint();
    await store(endpoint.fetch).getAccessToken();
    expect(endpoint.grants()).toBe(1);
    expect(lastWrite()).not.toHaveProperty("refresh_lock");
  });

  it("after a rejected token, uses a newer stored token without a grant", async () => {
    storedSecret({ ...baseSecret, ...freshToken });
    const endpoint = tokenEndpoint();
    const token = await store(endpoint.fetch).replaceRejectedToken("1000.older.token");
    expect(token.accessToken).toBe("1000.stored.token");
    expect(endpoint.grants()).toBe(0);
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(1);
  });

  it("after a rejected token that is still the stored one, refreshes once", async () => {
    storedSecret({ ...baseSecret, ...freshToken });
    const endpoint = tokenEndpoint();
    const token = await store(endpoint.fetch).replaceRejectedToken("1000.stored.token");
    expect(token.accessToken).toBe("1000.granted.1");
    expect(endpoint.grants()).toBe(1);
  });

  it("does not grant again when a freshly granted token is refused too (a missing scope), for 5 minutes", async () => {
    storedSecret({ ...baseSecret, ...freshToken });
    let now = T0;
    const endpoint = tokenEndpoint();
    const tokens = store(endpoint.fetch, () => now);
    await tokens.replaceRejectedToken("1000.stored.token"); // the first refusal: one grant
    storedSecret({ ...baseSecret, ...freshToken, access_token: "1000.granted.1" });
    await expect(tokens.replaceRejectedToken("1000.granted.1")).rejects.toMatchObject({
      code: "ZOHO_UNAUTHORIZED",
      message: expect.stringContaining("freshly granted"),
    });
    expect(endpoint.grants()).toBe(1);
    now += 301_000;
    await tokens.replaceRejectedToken("1000.granted.1");
    expect(endpoint.grants()).toBe(2);
  });

  it.each([
    ["invalid_code", { error: "invalid_code" }, /refresh token is revoked or wrong/],
    ["invalid_client", { error: "invalid_client" }, /client_id or client_secret is wrong/],
    [
      "Access Denied",
      {
        error: "Access Denied",
        error_description: "You have made too many requests continuously.",
        status: "failure",
      },
      /too many token grants/,
    ],
  ])(
    "turns a %s answer with HTTP 200 into ZOHO_AUTH_FAILED that says what to fix",
    async (_name, body, hint) => {
      storedSecret(baseSecret);
      const error = await store(tokenEndpoint(() => body).fetch)
        .getAccessToken()
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ServiceError);
      expect((error as ServiceError).code).toBe("ZOHO_AUTH_FAILED");
      expect((error as ServiceError).message).toMatch(hint);
      expect((error as ServiceError).message).not.toContain(CLIENT_SECRET);
      expect((error as ServiceError).message).not.toContain(REFRESH_TOKEN);
      expect(lastWrite()).not.toHaveProperty("refresh_lock"); // the lock is released for others
    },
  );

  it("does not ask Zoho again for a minute after a refused grant", async () => {
    storedSecret(baseSecret);
    let now = T0;
    const endpoint = tokenEndpoint(() => ({ error: "invalid_code" }));
    const tokens = store(endpoint.fetch, () => now);
    await expect(tokens.getAccessToken()).rejects.toMatchObject({ code: "ZOHO_AUTH_FAILED" });
    await expect(tokens.getAccessToken()).rejects.toMatchObject({ code: "ZOHO_AUTH_FAILED" });
    expect(endpoint.grants()).toBe(1);
    now += 61_000;
    await expect(tokens.getAccessToken()).rejects.toMatchObject({ code: "ZOHO_AUTH_FAILED" });
    expect(endpoint.grants()).toBe(2);
  });

  it("assumes a one-hour token when the grant answer lacks expires_in", async () => {
    storedSecret(baseSecret);
    const endpoint = tokenEndpoint(() => ({
      access_token: "1000.no.expiry",
      api_domain: "https://books.example.test",
    }));
    const token = await store(endpoint.fetch).getAccessToken();
    expect(token.expiresAt).toBe(T0 + 3600_000);
  });

  it("refreshes from the scheduled refresher only when less than the margin is left", async () => {
    storedSecret({ ...baseSecret, ...freshToken }); // an hour left
    const endpoint = tokenEndpoint();
    const tokens = store(endpoint.fetch);
    expect(await tokens.refreshIfExpiringWithin(15 * 60)).toEqual({
      refreshed: false,
      expiresAt: T0 + 3600_000,
    });
    expect(endpoint.grants()).toBe(0);
    expect(await tokens.refreshIfExpiringWithin(61 * 60)).toEqual({
      refreshed: true,
      expiresAt: T0 + 3600_000,
    });
    expect(endpoint.grants()).toBe(1);
  });

  it("keeps working with a refreshed token when it cannot store it", async () => {
    storedSecret(baseSecret);
    sm.on(PutSecretValueCommand)
      .resolvesOnce({ VersionId: "lock" })
      .rejects(new Error("throttled"));
    const endpoint = tokenEndpoint();
    const token = await store(endpoint.fetch).getAccessToken();
    expect(token.accessToken).toBe("1000.granted.1");
  });

  it("reports a malformed secret as CONFIGURATION_ERROR naming fields, not values", async () => {
    sm.on(GetSecretValueCommand).resolves({
      SecretString: JSON.stringify({
        client_id: "1000.CLIENT",
        client_secret: CLIENT_SECRET,
        data_center: "mars",
      }),
    });
    const error = (await store(tokenEndpoint().fetch)
      .getAccessToken()
      .catch((e: unknown) => e)) as ServiceError;
    expect(error.code).toBe("CONFIGURATION_ERROR");
    expect(error.message).toContain("refresh_token");
    expect(error.message).toContain("data_center: must be one of com, eu");
    expect(error.message).not.toContain(CLIENT_SECRET);
    expect(error.message).not.toContain("mars");
  });

  it("reports a secret that is not JSON without quoting it", async () => {
    sm.on(GetSecretValueCommand).resolves({ SecretString: `{"client_secret": "${CLIENT_SECRET}"` });
    const error = (await store(tokenEndpoint().fetch)
      .getSecret()
      .catch((e: unknown) => e)) as ServiceError;
    expect(error.code).toBe("CONFIGURATION_ERROR");
    expect(error.message).toBe("The secret zoho/books is not a JSON object.");
  });

  it("reports an unreadable secret as CONFIGURATION_ERROR with the AWS error name", async () => {
    sm.on(GetSecretValueCommand).rejects(
      new ResourceNotFoundException({ message: "nope", $metadata: {} }),
    );
    await expect(store(tokenEndpoint().fetch).getSecret()).rejects.toMatchObject({
      code: "CONFIGURATION_ERROR",
      message:
        "Could not read the Zoho secret zoho/books in Secrets Manager (ResourceNotFoundException).",
    });
  });

  it("picks the accounts server from data_center when no accounts_url is set", async () => {
    const { accounts_url: _omit, ...secret } = baseSecret;
    storedSecret({ ...secret, data_center: "eu" });
    const endpoint = tokenEndpoint();
    await store(endpoint.fetch).getAccessToken();
    expect(endpoint.fetch).toHaveBeenCalledWith(
      new URL("https://accounts.zoho.eu/oauth/v2/token"),
      expect.anything(),
    );
  });
});
