import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ORGANIZATION_ID, SANDBOX_CREDENTIALS, type Sandbox, SEED, startSandbox } from "../sandbox";

let sandbox: Sandbox;
beforeAll(async () => {
  sandbox = await startSandbox();
});
afterAll(() => sandbox.close());
beforeEach(() => sandbox.reset());

async function grant(params: Record<string, string> = {}, how: "form" | "query" = "form") {
  const all = new URLSearchParams({
    grant_type: "refresh_token",
    client_id: SANDBOX_CREDENTIALS.client_id,
    client_secret: SANDBOX_CREDENTIALS.client_secret,
    refresh_token: SANDBOX_CREDENTIALS.refresh_token,
    ...params,
  });
  const response =
    how === "form"
      ? await fetch(`${sandbox.url}/oauth/v2/token`, { method: "POST", body: all })
      : await fetch(`${sandbox.url}/oauth/v2/token?${all}`, { method: "POST" });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function books(path: string, init: RequestInit & { token?: string | null } = {}) {
  const token = init.token === undefined ? sandbox.issueToken().access_token : init.token;
  const response = await fetch(`${sandbox.url}/books/v3${path}`, {
    method: "POST",
    ...init,
    headers: token === null ? {} : { Authorization: `Zoho-oauthtoken ${token}` },
  });
  const text = await response.text();
  return {
    status: response.status,
    text,
    body: text.startsWith("{") ? JSON.parse(text) : undefined,
  };
}

const action = (id: string, verb: "active" | "inactive", org = ORGANIZATION_ID) =>
  `/contacts/${id}/${verb}?organization_id=${org}`;

describe("sandbox OAuth", () => {
  it("grants a one-hour token for the refresh token, from a form or the query string", async () => {
    for (const how of ["form", "query"] as const) {
      const { status, body } = await grant({}, how);
      expect(status).toBe(200);
      expect(body).toEqual({
        access_token: expect.stringMatching(/^1000\.[0-9a-f]{32}\.[0-9a-f]{32}$/),
        api_domain: sandbox.url,
        token_type: "Bearer",
        expires_in: 3600,
      });
    }
    expect(sandbox.stats().grants).toBe(2);
  });

  it("answers invalid_client and invalid_code with HTTP 200", async () => {
    expect(await grant({ client_secret: "wrong" })).toEqual({
      status: 200,
      body: { error: "invalid_client" },
    });
    expect(await grant({ refresh_token: "1000.other" })).toEqual({
      status: 200,
      body: { error: "invalid_code" },
    });
    sandbox.settings.refreshTokenRevoked = true;
    expect((await grant()).body).toEqual({ error: "invalid_code" });
  });

  it.each([200, 400] as const)(
    "refuses the 11th grant in ten minutes with Access Denied (HTTP %i), for ten minutes",
    async (status) => {
      sandbox.settings.tooManyGrantsStatus = status;
      for (let i = 0; i < 10; i++) expect((await grant()).body.access_token).toBeDefined();
      const refused = await grant();
      expect(refused).toEqual({
        status,
        body: {
          error: "Access Denied",
          error_description:
            "You have made too many requests continuously. Please try again after some time.",
          status: "failure",
        },
      });
      sandbox.advanceClock(9 * 60);
      expect((await grant()).body.error).toBe("Access Denied");
      sandbox.advanceClock(11 * 60);
      expect((await grant()).body.access_token).toBeDefined();
    },
  );

  it("expires access tokens on its clock, and keeps at most 10 live", async () => {
    const first = sandbox.issueToken().access_token;
    sandbox.advanceClock(3599);
    expect((await books(action(SEED.inactiveId, "active"), { token: first })).status).toBe(200);
    sandbox.advanceClock(2);
    expect((await books(action(SEED.activeId, "inactive"), { token: first })).body).toMatchObject({
      code: 57,
    });
    const oldest = sandbox.issueToken().access_token;
    for (let i = 0; i < 10; i++) sandbox.issueToken();
    expect((await books(action(SEED.activeId, "inactive"), { token: oldest })).body).toMatchObject({
      code: 57,
    });
  });

  it("never records a secret, a token or the Authorization header", async () => {
    const { body } = await grant();
    await books(action(SEED.inactiveId, "active"), { token: String(body.access_token) });
    const recorded = JSON.stringify(sandbox.requests());
    for (const secret of [
      SANDBOX_CREDENTIALS.client_secret,
      SANDBOX_CREDENTIALS.refresh_token,
      String(body.access_token),
    ]) {
      expect(recorded).not.toContain(secret);
    }
  });
});

describe("sandbox Books API", () => {
  it("marks active, then answers 3031; marks inactive, then answers 3032", async () => {
    expect((await books(action(SEED.inactiveId, "active"))).body).toEqual({
      code: 0,
      message: "The contact has been marked as active.",
    });
    expect(await books(action(SEED.inactiveId, "active"))).toMatchObject({
      status: 400,
      body: { code: 3031 },
    });
    expect((await books(action(SEED.inactiveId, "inactive"))).body.code).toBe(0);
    expect(await books(action(SEED.inactiveId, "inactive"))).toMatchObject({
      status: 400,
      body: { code: 3032 },
    });
  });

  it("answers 405 for any other method on an action endpoint", async () => {
    for (const method of ["GET", "PUT", "DELETE"]) {
      expect((await books(action(SEED.inactiveId, "active"), { method })).status).toBe(405);
    }
  });

  it("answers 401 code 14 without an Authorization header", async () => {
    expect(await books(action(SEED.inactiveId, "active"), { token: null })).toMatchObject({
      status: 401,
      body: { code: 14 },
    });
  });

  it("answers 57 while the required scope is removed, and works again once restored", async () => {
    const token = sandbox.issueToken().access_token;
    sandbox.settings.grantedScopes = ["ZohoBooks.contacts.READ"];
    expect(await books(action(SEED.inactiveId, "active"), { token })).toMatchObject({
      status: 401,
      body: { code: 57 },
    });
    sandbox.settings.requiredScope = "ZohoBooks.contacts.READ";
    expect((await books(action(SEED.inactiveId, "active"), { token })).status).toBe(200);
  });

  it("answers 6024 for an organization the user is not in, and for a missing one", async () => {
    expect(await books(action(SEED.inactiveId, "active", "20234695"))).toMatchObject({
      status: 400,
      body: { code: 6024 },
    });
    expect(await books(`/contacts/${SEED.inactiveId}/active`)).toMatchObject({
      status: 400,
      body: { code: 6024 },
    });
  });

  it("filters loosely by email, as Zoho's search does", async () => {
    const { body } = await books(
      `/contacts?organization_id=${ORGANIZATION_ID}&email=contact1@example.com`,
      { method: "GET" },
    );
    expect(body.contacts.map((c: { email: string }) => c.email)).toEqual([
      "contact1@example.com",
      "xcontact1@example.com",
    ]);
  });

  it("blocks an organization for the rest of the minute past the per-minute limit, then lets it through", async () => {
    sandbox.advanceClock(60 - ((Date.now() / 1000) % 60) + 0.1);
    sandbox.settings.rateLimitPerMinute = 2;
    await books(action(SEED.inactiveIds[0] as string, "active"));
    await books(action(SEED.inactiveIds[1] as string, "active"));
    expect(await books(action(SEED.inactiveIds[2] as string, "active"))).toMatchObject({
      status: 429,
      body: { code: 44 },
    });
    sandbox.advanceClock(60);
    expect((await books(action(SEED.inactiveIds[2] as string, "active"))).status).toBe(200);
  });

  it("answers 45 past the daily cap", async () => {
    sandbox.settings.dailyLimit = 1;
    await books(action(SEED.inactiveIds[0] as string, "active"));
    expect(await books(action(SEED.inactiveIds[1] as string, "active"))).toMatchObject({
      status: 429,
      body: { code: 45 },
    });
  });

  it("answers 1070 to one request more than the concurrency limit", async () => {
    sandbox.settings.concurrencyLimit = 2;
    sandbox.settings.latencyMs = 200;
    const answers = await Promise.all(
      SEED.inactiveIds.slice(0, 3).map((id) => books(action(id, "active"))),
    );
    expect(answers.map((a) => a.status).sort()).toEqual([200, 200, 429]);
    expect(sandbox.stats().byCode["1070"]).toBe(1);
  });

  it("fails the next requests on demand, as JSON 500 or an HTML 502 page", async () => {
    sandbox.settings.failNext = 1;
    expect(await books(action(SEED.inactiveId, "active"))).toMatchObject({
      status: 500,
      body: { code: 5 },
    });
    sandbox.settings.failNext = 1;
    sandbox.settings.failureStyle = "html";
    const html = await books(action(SEED.inactiveId, "active"));
    expect(html.status).toBe(502);
    expect(html.text).toContain("<html>");
  });

  it("leaves a request hanging until the client gives up, and still closes promptly", async () => {
    sandbox.settings.hangNext = 1;
    const aborted = await fetch(`${sandbox.url}/books/v3${action(SEED.inactiveId, "active")}`, {
      method: "POST",
      headers: { Authorization: `Zoho-oauthtoken ${sandbox.issueToken().access_token}` },
      signal: AbortSignal.timeout(200),
    }).catch((e: Error) => e.name);
    expect(aborted).toBe("TimeoutError");
  });
});

describe("sandbox control API", () => {
  it("changes settings over HTTP and refuses an unknown or mistyped one", async () => {
    const patch = (body: unknown) =>
      fetch(`${sandbox.url}/__sandbox/settings`, {
        method: "PATCH",
        body: JSON.stringify(body),
      }).then((r) => r.status);
    expect(await patch({ rateLimitPerMinute: 7 })).toBe(200);
    expect(sandbox.settings.rateLimitPerMinute).toBe(7);
    expect(await patch({ rateLimitPerMinute: "fast" })).toBe(400);
    expect(await patch({ noSuchSetting: 1 })).toBe(400);
    expect(await patch({ failureStyle: "xml" })).toBe(400);
  });

  it("shows and sets contact states, and counts calls by endpoint", async () => {
    await fetch(`${sandbox.url}/__sandbox/contacts/${SEED.activeId}`, {
      method: "PUT",
      body: JSON.stringify({ status: "inactive" }),
    });
    const contact = (await (
      await fetch(`${sandbox.url}/__sandbox/contacts/${SEED.activeId}`)
    ).json()) as {
      status: string;
    };
    expect(contact.status).toBe("inactive");
    await books(action(SEED.activeId, "active"));
    const stats = (await (await fetch(`${sandbox.url}/__sandbox/stats`)).json()) as {
      calls: unknown;
    };
    expect(stats.calls).toEqual({ "contact.active": 1 });
  });
});
