import { DynamoDBClient, GetItemCommand, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import { mockClient } from "aws-sdk-client-mock";
import { describe, expect, it } from "vitest";
import { ZohoBudget } from "../../lib/ledger/budget";

describe("ZohoBudget on an item it cannot use", () => {
  it("fails after a few tries instead of looping when the daily window never opens", async () => {
    const dynamo = mockClient(DynamoDBClient);
    dynamo.on(GetItemCommand).resolves({}); // no item, however often it is opened
    dynamo.on(UpdateItemCommand).resolves({});
    const budget = new ZohoBudget({
      dynamo: new DynamoDBClient({}),
      table: "ledger",
      minuteShare: 80,
      concurrency: 5,
      dailyQuota: 1000,
      leaseSeconds: 15,
    });
    await expect(budget.acquire("123", "realtime", { maxWaitMs: 0 })).rejects.toMatchObject({
      code: "ZOHO_RATE_LIMITED",
    });
    expect(dynamo.commandCalls(UpdateItemCommand).length).toBeLessThanOrEqual(3);
    dynamo.restore();
  });
});
