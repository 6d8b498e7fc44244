import { SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, describe, expect, it, vi } from "vitest";
import { lazySqsClient } from "../../lib/aws/lazy-sqs";

const sqsMock = mockClient(SQSClient);

afterEach(() => {
  sqsMock.reset();
  vi.restoreAllMocks();
});

describe("lazySqsClient: the SQS client loaded on its first send", () => {
  it("sends through one real SQSClient, created on the first send and kept", async () => {
    sqsMock.on(SendMessageCommand).resolves({ MessageId: "m-1" });
    const sqs = lazySqsClient();

    const command = new SendMessageCommand({
      QueueUrl: "https://sqs.example/1/q",
      MessageBody: "{}",
    });
    await expect(sqs.send(command)).resolves.toEqual({ MessageId: "m-1" });
    await sqs.send(command);

    const calls = sqsMock.commandCalls(SendMessageCommand);
    expect(calls).toHaveLength(2);
    // one real client behind both sends
    expect(calls[0]?.thisValue).toBeInstanceOf(SQSClient);
    expect(calls[1]?.thisValue).toBe(calls[0]?.thisValue);
  });

  it("hands SQS's errors to the caller as the real client does", async () => {
    sqsMock
      .on(SendMessageCommand)
      .rejects(Object.assign(new Error("Rate exceeded"), { name: "ThrottlingException" }));
    const sqs = lazySqsClient();
    await expect(
      sqs.send(new SendMessageCommand({ QueueUrl: "https://sqs.example/1/q", MessageBody: "{}" })),
    ).rejects.toMatchObject({ name: "ThrottlingException" });
  });

  it("destroys no client when destroyed before any send", () => {
    const destroyed = vi.spyOn(SQSClient.prototype, "destroy");
    lazySqsClient().destroy();
    expect(destroyed).not.toHaveBeenCalled();
  });

  it("destroys the client it created", async () => {
    sqsMock.on(SendMessageCommand).resolves({});
    const destroyed = vi.spyOn(SQSClient.prototype, "destroy");
    const sqs = lazySqsClient();
    await sqs.send(
      new SendMessageCommand({ QueueUrl: "https://sqs.example/1/q", MessageBody: "{}" }),
    );
    sqs.destroy();
    await vi.waitFor(() => expect(destroyed).toHaveBeenCalledTimes(1));
  });
});
