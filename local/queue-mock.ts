import {
  SendMessageBatchCommand,
  type SendMessageBatchCommandInput,
  SendMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import type { AwsClientStub } from "aws-sdk-client-mock";

/** SQS's answer to a SendMessageBatch that took every entry. */
export function allAccepted(input: SendMessageBatchCommandInput) {
  return {
    Successful: (input.Entries ?? []).map((e) => ({
      Id: e.Id,
      MessageId: `m-${e.Id}`,
      MD5OfMessageBody: "x",
    })),
    Failed: [],
  };
}

/** SQS as aws-sdk-client-mock: every batch entry accepted, every single send (a parked job) too. */
export function acceptEverything(sqs: AwsClientStub<SQSClient>): void {
  sqs.on(SendMessageBatchCommand).callsFake(allAccepted);
  sqs.on(SendMessageCommand).resolves({ MessageId: "parked" });
}
