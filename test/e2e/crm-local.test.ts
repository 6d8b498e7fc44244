import { InvokeCommand, LambdaClient } from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SEED } from "../../local/sandbox";
import { crmAccountId } from "../../local/sandbox/crm/seed";
import { contactId } from "../../local/sandbox/seed";
import { DEMO_HUBSPOT_SOURCE, DEMO_ZOHO_CRM_SOURCE } from "../../local/stack/crm-demo";
import { functionName, type LocalStack, startLocalStack } from "../../local/stack/stack";

// What `npm start` prints for the CRM sources (the same inputs: local/stack/crm-demo.ts), run
// against the same stack: the CRM edits, the scheduled sync invoked through serverless-offline,
// the notification over real HTTP.

let stack: LocalStack;
const logLines: string[] = [];

beforeAll(async () => {
  stack = await startLocalStack({ crm: true, log: (line) => logLines.push(line) });
});
afterAll(async () => {
  await stack?.stop();
});

async function runSync(input: unknown) {
  const lambda = new LambdaClient({
    endpoint: stack.lambdaUrl,
    region: "us-east-1",
    credentials: { accessKeyId: "l", secretAccessKey: "l" },
  });
  const output = await lambda.send(
    new InvokeCommand({
      FunctionName: functionName("scheduledSync"),
      Payload: Buffer.from(JSON.stringify(input)),
    }),
  );
  return JSON.parse(Buffer.from(output.Payload ?? []).toString());
}

async function editAccount(n: number, fields: Record<string, unknown>) {
  const response = await fetch(`${stack.sandbox.url}/__sandbox/crm/Accounts/${crmAccountId(n)}`, {
    method: "PATCH",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(fields),
  });
  expect(response.status).toBe(200);
}

async function eventually(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline)
      throw new Error(
        `timed out waiting for ${what}; last logs:\n${logLines.slice(-15).join("\n")}`,
      );
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe("npm start's CRM sources, end to end", () => {
  it("a dry run against the local Zoho CRM plans the activation a CRM edit asks for, with its reason", async () => {
    await editAccount(4, { Account_Type: "Customer" });
    const summary = await runSync({ mode: "full", dry_run: true, source: DEMO_ZOHO_CRM_SOURCE });
    expect(summary).toMatchObject({ source_type: "zoho_crm", dry_run: true, jobs_queued: 0 });
    expect(summary.planned).toEqual([
      expect.objectContaining({
        contact_id: SEED.inactiveId,
        action: "activate",
        reason: expect.objectContaining({
          crm_record_id: crmAccountId(4),
          field: "Account_Type",
          value: "Customer",
        }),
      }),
    ]);
    expect(stack.sandbox.contact(SEED.inactiveId)?.status).toBe("inactive");
  }, 60_000);

  it("a dry run against the local HubSpot, with the token from its secret, plans what a company's edit asks for", async () => {
    const hubspot = stack.hubspot;
    if (!hubspot) throw new Error("the stack started without the local HubSpot");
    const company = hubspot
      .records("companies")
      .find((record) => record.properties.zoho_books_contact_id === contactId(16));
    if (!company) throw new Error("no company linked to Books contact 16");
    hubspot.update("companies", company.id, { lifecyclestage: "customer" });
    await new Promise((resolve) => setTimeout(resolve, hubspot.settings.searchLagMs + 100));
    const summary = await runSync({
      mode: "full",
      dry_run: true,
      source: DEMO_HUBSPOT_SOURCE,
    });
    expect(summary).toMatchObject({ source_type: "hubspot", crm_records_read: 300 });
    expect(summary.planned).toEqual([
      expect.objectContaining({
        contact_id: contactId(16),
        action: "activate",
        reason: expect.objectContaining({ crm_record_id: company.id, value: "customer" }),
      }),
    ]);
  }, 60_000);

  it("a watch run enables the channel, and the next CRM edit activates its Books contact in real time", async () => {
    const watch = await runSync({ mode: "watch", source: DEMO_ZOHO_CRM_SOURCE });
    expect(watch).toMatchObject({ channel: "enabled" });
    expect(stack.sandbox.crm.channels()).toHaveLength(1);
    expect(stack.sandbox.contact(contactId(8))?.status).toBe("inactive");
    await editAccount(8, { Account_Type: "Customer" });
    await eventually(
      () => stack.sandbox.contact(contactId(8))?.status === "active",
      30_000,
      "contact 8 activated by the notification's job",
    );
    expect(stack.sandbox.crm.deliveries()).toEqual([
      expect.objectContaining({ outcome: "sent", status: 202 }),
    ]);
  }, 60_000);
});
