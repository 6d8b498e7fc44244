import { DynamoDBClient, GetItemCommand, QueryCommand } from "@aws-sdk/client-dynamodb";
import type { APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type HttpEventInput, httpEvent, lambdaContext } from "../../local/lambda-events";

// The HTTP API loads the Zoho path (token store, budget, Books client: lib/zoho-path.ts) with
// `import()` on the first route that needs it, and builds it once per container.
const loads = vi.hoisted(() => ({ modules: 0, built: 0 }));
vi.mock(import("../../lib/zoho-path"), async (importOriginal) => {
  loads.modules++;
  const real = await importOriginal();
  return {
    ...real,
    withZoho: (...args: Parameters<typeof real.withZoho>) => {
      loads.built++;
      return real.withZoho(...args);
    },
  };
});

const dynamo = mockClient(DynamoDBClient);
const CONTACT = "460000000026049";
const ORGANIZATION = "10234695";

beforeAll(() => {
  vi.stubEnv("AWS_REGION", "us-east-1");
  vi.stubEnv("ZOHO_SECRET_ID", "zoho/books");
  vi.stubEnv("ZOHO_LEDGER_TABLE", "ledger");
  dynamo.on(GetItemCommand).resolves({});
  dynamo.on(QueryCommand).resolves({ Items: [] });
});
afterAll(() => {
  vi.unstubAllEnvs();
  dynamo.restore();
});

async function call(input: HttpEventInput) {
  const { handler } = await import("../../functions/http-api");
  const response = (await handler(
    httpEvent(input),
    lambdaContext("http-api"),
  )) as APIGatewayProxyStructuredResultV2;
  return { status: response.statusCode, body: JSON.parse(String(response.body)) };
}

const history = () =>
  call({
    method: "GET",
    path: `/contacts/${CONTACT}/history`,
    pathParameters: { contact_id: CONTACT },
    query: { organization_id: ORGANIZATION },
  });

describe("the HTTP API's Zoho path, loaded by the routes that call Zoho only", () => {
  it("is not loaded by the routes that read the ledger, refuse a body or answer health", async () => {
    expect((await call({ method: "GET", path: "/health" })).status).toBe(200);
    const jobId = "0f8fad5b-d9cb-469f-a165-70867728950e";
    const job = await call({
      method: "GET",
      path: `/activations/${jobId}`,
      pathParameters: { job_id: jobId },
    });
    expect(job.status).toBe(404);
    expect((await call({ method: "POST", path: "/activations", body: "{}" })).status).toBe(400);
    expect(dynamo.commandCalls(GetItemCommand)).toHaveLength(1);
    expect(loads).toEqual({ modules: 0, built: 0 });
  });

  it("is loaded and built once by the first route that needs it, then kept", async () => {
    const first = await history();
    expect(first).toEqual({
      status: 200,
      body: { contact_id: CONTACT, organization_id: ORGANIZATION, changes: [] },
    });
    expect((await history()).status).toBe(200);
    expect(dynamo.commandCalls(QueryCommand)).toHaveLength(2);
    expect(loads).toEqual({ modules: 1, built: 1 });
  });
});
