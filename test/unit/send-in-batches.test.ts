import {
  SendMessageBatchCommand,
  type SendMessageBatchCommandInput,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { resendEntry, sendInBatches } from "../../lib/jobs/queue";
import { allAccepted } from "../../local/queue-mock";

// The one place that sends messages in batches (the API's queued jobs, the worker's re-sends).

const sqs = mockClient(SQSClient);
const sent = () =>
  sqs.commandCalls(SendMessageBatchCommand).map((call) => call.args[0].input.Entries ?? []);
const entries = (count: number, body = "{}") =>
  Array.from({ length: count }, (_, i) => ({ Id: String(i), MessageBody: body }));

beforeEach(() => {
  sqs.reset();
});

describe("sendInBatches", () => {
  it("sends 25 entries as 10, 10 and 5, and says each one's MessageId", async () => {
    sqs.on(SendMessageBatchCommand).callsFake(allAccepted);
    const result = await sendInBatches(sqs as unknown as SQSClient, "q", entries(25));
    expect(sent().map((batch) => batch.length)).toEqual([10, 10, 5]);
    expect(result.failed.size).toBe(0);
    expect(result.sent.get("24")).toBe("m-24");
  });

  it("cuts a batch before its bodies and attributes pass 256 KiB", async () => {
    sqs.on(SendMessageBatchCommand).callsFake(allAccepted);
    await sendInBatches(sqs as unknown as SQSClient, "q", entries(5, "x".repeat(100_000)));
    expect(sent().map((batch) => batch.length)).toEqual([2, 2, 1]);
  });

  it("sends again the entries SQS reports failed, and those of a call that threw; 3 tries, then says why", async () => {
    let call = 0;
    sqs.on(SendMessageBatchCommand).callsFake((input: SendMessageBatchCommandInput) => {
      call++;
      if (call === 2) throw Object.assign(new Error("down"), { name: "ServiceUnavailable" });
      const failing = (input.Entries ?? []).filter((entry) => entry.Id === "3");
      const rest = { ...input, Entries: (input.Entries ?? []).filter((e) => e.Id !== "3") };
      return {
        ...allAccepted(rest),
        Failed: failing.map(({ Id }) => ({ Id, Code: "InternalError", SenderFault: false })),
      };
    });
    const result = await sendInBatches(sqs as unknown as SQSClient, "q", entries(5));
    expect(sent().map((batch) => batch.map((entry) => entry.Id))).toEqual([
      ["0", "1", "2", "3", "4"],
      ["3"],
      ["3"],
    ]);
    expect([...result.sent.keys()].sort()).toEqual(["0", "1", "2", "4"]);
    expect([...result.failed].map(([id, error]) => [id, error.code, error.message])).toEqual([
      [
        "3",
        "AWS_UNAVAILABLE",
        "Could not send the message to SQS queue q (InternalError): AWS is throttling or unavailable for now; try again shortly.",
      ],
    ]);
  });

  it("says CONFIGURATION_ERROR for what SQS says is the sender's fault, or a queue that does not exist", async () => {
    sqs
      .on(SendMessageBatchCommand)
      .resolvesOnce({
        Successful: [],
        Failed: [{ Id: "0", Code: "InvalidParameterValue", SenderFault: true }],
      })
      .rejects(
        Object.assign(new Error("no queue"), {
          name: "AWS.SimpleQueueService.NonExistentQueue",
          $metadata: { httpStatusCode: 400 },
        }),
      );
    const url = "https://sqs.us-east-1.amazonaws.com/123456789012/jobs";
    const result = await sendInBatches(sqs as unknown as SQSClient, url, entries(1));
    expect(result.failed.get("0")).toMatchObject({
      code: "CONFIGURATION_ERROR",
      message:
        "Could not send the message to SQS queue jobs (AWS.SimpleQueueService.NonExistentQueue).",
    });
  });
});

describe("resendEntry", () => {
  it("keeps the body, carries attempts and what the job waits for, within SQS's 0 to 900 s delay", () => {
    const body = JSON.stringify({ contact_id: "1", requested_at: "2026-11-25T10:00:00.000Z" });
    const entry = resendEntry("7", { body }, { delaySeconds: 86_400, attempts: 2, reason: "X" });
    expect(entry).toEqual({
      Id: "7",
      MessageBody: body,
      DelaySeconds: 900,
      MessageAttributes: {
        attempts: { DataType: "Number", StringValue: "2" },
        waiting_for: { DataType: "String", StringValue: "X" },
      },
    });
    expect(
      resendEntry("7", { body }, { delaySeconds: 1.2, attempts: 0, reason: "X" }),
    ).toMatchObject({ DelaySeconds: 2 });
  });
});
