import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { ServiceError } from "../../lib/errors";
import { parseWebhookConfig, webhookConfigStore, webhookSource } from "../../lib/webhooks/config";

const TOKEN = "tok-current-0123456789abcdef";
const HMAC_KEY = "hmac-current-0123456789abcdef";
const CLIENT_SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";
const CONFIG = {
  "zoho-crm": { tokens: [TOKEN], token_header: "X-Webhook-Token", preset: "zoho-crm" },
  hubspot: { hmac_secrets: [HMAC_KEY], preset: "hubspot", mapping: { events: "data" } },
};

function configurationError(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ServiceError);
    expect((error as ServiceError).code).toBe("CONFIGURATION_ERROR");
    const message = (error as ServiceError).message;
    for (const secret of [TOKEN, HMAC_KEY, CLIENT_SECRET, "short", "{not json"])
      expect(message).not.toContain(secret);
    return message;
  }
  throw new Error("accepted");
}

describe("parseWebhookConfig", () => {
  it("reads the sources, with header names lower-cased", () => {
    const config = parseWebhookConfig(JSON.stringify(CONFIG), "zoho/webhooks");
    expect(config["zoho-crm"]?.token_header).toBe("x-webhook-token");
    expect(config.hubspot?.mapping?.events).toBe("data");
  });

  it("reads a source authorized by HubSpot's signature alone, two client secrets at once", () => {
    const text = JSON.stringify({
      hubspot: { preset: "hubspot", hubspot_client_secrets: [CLIENT_SECRET, `${CLIENT_SECRET}2`] },
    });
    const config = parseWebhookConfig(text, "zoho/webhooks");
    expect(config.hubspot?.hubspot_client_secrets).toEqual([CLIENT_SECRET, `${CLIENT_SECRET}2`]);
  });

  it.each([
    ["{not json", "The secret zoho/webhooks is not a JSON object."],
    ["[]", "(root): must be a JSON object of sources"],
    [
      JSON.stringify({ crm: {} }),
      "crm: needs at least one of tokens, hmac_secrets or hubspot_client_secrets",
    ],
    [
      JSON.stringify({ crm: { hubspot_client_secrets: CLIENT_SECRET } }),
      "crm.hubspot_client_secrets: must be an array of strings",
    ],
    [
      JSON.stringify({ crm: { hubspot_client_secrets: ["short"] } }),
      "crm.hubspot_client_secrets.0: must be at least 16 characters",
    ],
    [
      JSON.stringify({
        crm: { hubspot_client_secrets: [CLIENT_SECRET, `${CLIENT_SECRET}1`, `${CLIENT_SECRET}2`] },
      }),
      "crm.hubspot_client_secrets: holds at most 2",
    ],
    [
      JSON.stringify({ crm: { tokens: ["short"] } }),
      "crm.tokens.0: must be at least 16 characters",
    ],
    [
      JSON.stringify({ crm: { tokens: [TOKEN, `${TOKEN}1`, `${TOKEN}2`] } }),
      "crm.tokens: holds at most 2",
    ],
    [
      JSON.stringify({ crm: { tokens: [TOKEN], token_header: "x y" } }),
      "crm.token_header: must be a header name",
    ],
    [
      JSON.stringify({ crm: { tokens: [TOKEN], preset: "salesforce" } }),
      'crm.preset: must be "zoho-crm" or "hubspot"',
    ],
    [
      JSON.stringify({ crm: { tokens: [TOKEN], mapping: { actions: { on: "enable" } } } }),
      'crm.mapping.actions.on: must be "activate" or "deactivate"',
    ],
    [JSON.stringify({ "Bad Name": { tokens: [TOKEN] } }), "source names are a-z"],
  ])("refuses %s naming the field, never the value", (text, message) => {
    expect(configurationError(() => parseWebhookConfig(text, "zoho/webhooks"))).toContain(message);
  });
});

describe("webhookSource", () => {
  const config = parseWebhookConfig(JSON.stringify(CONFIG), "zoho/webhooks");

  it("names the source", () => {
    expect(webhookSource(config, "hubspot")).toMatchObject({ name: "hubspot", preset: "hubspot" });
  });

  it.each(["salesforce", "__proto__", "constructor", undefined])("answers 404 for %s", (name) => {
    try {
      webhookSource(config, name);
      throw new Error("found");
    } catch (error) {
      expect((error as ServiceError).statusCode).toBe(404);
      expect((error as ServiceError).code).toBe("NOT_FOUND");
    }
  });
});

describe("webhookConfigStore", () => {
  const sm = mockClient(SecretsManagerClient);
  let now = 0;
  const store = () =>
    webhookConfigStore({
      secretsManager: sm as unknown as SecretsManagerClient,
      secretId: "zoho/webhooks",
      maxAgeSeconds: 300,
      now: () => now,
    });
  beforeEach(() => {
    sm.reset();
    now = 1_000_000;
    sm.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify(CONFIG) });
  });

  it("reads the secret once per maxAge, once for concurrent callers, and again when forced", async () => {
    const webhooks = store();
    await Promise.all([webhooks.get(), webhooks.get()]);
    now += 299_000;
    await webhooks.get();
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(1);
    now += 2_000;
    await webhooks.get();
    await webhooks.get(true);
    expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(3);
    expect(sm.commandCalls(GetSecretValueCommand)[0]?.args[0].input).toEqual({
      SecretId: "zoho/webhooks",
    });
  });

  it("picks up a rotated token after maxAge", async () => {
    const webhooks = store();
    expect((await webhooks.get())["zoho-crm"]?.tokens).toEqual([TOKEN]);
    const next = `${TOKEN}-next`;
    sm.on(GetSecretValueCommand).resolves({
      SecretString: JSON.stringify({ "zoho-crm": { tokens: [TOKEN, next] } }),
    });
    now += 301_000;
    expect((await webhooks.get())["zoho-crm"]?.tokens).toEqual([TOKEN, next]);
  });

  it("answers CONFIGURATION_ERROR naming the secret when Secrets Manager fails, and tries again next time", async () => {
    sm.on(GetSecretValueCommand)
      .rejectsOnce(Object.assign(new Error("denied"), { name: "AccessDeniedException" }))
      .resolves({ SecretString: JSON.stringify(CONFIG) });
    const webhooks = store();
    await expect(webhooks.get()).rejects.toMatchObject({
      code: "CONFIGURATION_ERROR",
      message:
        "Could not read the webhook secret zoho/webhooks in Secrets Manager (AccessDeniedException).",
    });
    await expect(webhooks.get()).resolves.toHaveProperty("hubspot");
  });
});
