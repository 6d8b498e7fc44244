import { CreateQueueCommand, SQSClient } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ServiceError } from "../../lib/errors";
import { parkJob } from "../../lib/jobs/queue";
import { listParked, moveBack } from "../../scripts/redrive";
import { type LocalAws, startLocalAws } from "../local-aws";

let aws: LocalAws;
let sqs: SQSClient;
beforeAll(async () => {
  aws = await startLocalAws();
  sqs = new SQSClient({
    endpoint: aws.url,
    region: "us-east-1",
    credentials: { accessKeyId: "l", secretAccessKey: "l" },
  });
});
afterAll(() => aws.close());

describe("npm run redrive", () => {
  it("lists parked jobs with their reasons and moves the chosen ones back, bodies unchanged", async () => {
    const queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: "activation-queue" })))
      .QueueUrl as string;
    const dlqUrl = (await sqs.send(new CreateQueueCommand({ QueueName: "activation-dlq" })))
      .QueueUrl as string;
    const bodies = ['{"contact_id":"1"}', '{"contact_id":"2"}', '{"email":"a@example.com"}'];
    await parkJob(
      sqs,
      dlqUrl,
      { body: bodies[0] as string, messageId: "a" },
      new ServiceError("CONTACT_NOT_FOUND", "No such contact."),
    );
    await parkJob(
      sqs,
      dlqUrl,
      { body: bodies[1] as string, messageId: "b" },
      new ServiceError("CONTACT_NOT_FOUND", "No such contact."),
      5, // parked by the worker at its JOB_MAX_ATTEMPTS-th failure
    );
    await parkJob(
      sqs,
      dlqUrl,
      { body: bodies[2] as string, messageId: "c" },
      new ServiceError("CONTACT_AMBIGUOUS", "2 contacts."),
    );

    const parked = await listParked(sqs, dlqUrl, 1);
    expect(parked.map((job) => [job.body, job.code, job.reason])).toEqual([
      [bodies[0], "CONTACT_NOT_FOUND", "No such contact."],
      [bodies[1], "CONTACT_NOT_FOUND", "No such contact."],
      [bodies[2], "CONTACT_AMBIGUOUS", "2 contacts."],
    ]);

    const moved = await moveBack(
      sqs,
      parked.filter((job) => job.code === "CONTACT_NOT_FOUND"),
      queueUrl,
      dlqUrl,
    );
    expect(moved).toHaveLength(2);
    expect(aws.queueMessages("activation-queue").map((m) => m.body)).toEqual([
      bodies[0],
      bodies[1],
    ]);
    // moved back as new jobs: the attempt count starts again, so the fixed job gets its 5 tries
    for (const message of aws.queueMessages("activation-queue"))
      expect(message.messageAttributes.attempts).toBeUndefined();
    expect(
      aws.queueMessages("activation-dlq").map((m) => m.messageAttributes.attempts?.StringValue),
    ).toEqual(["0"]);
    expect(aws.queueMessages("activation-dlq").map((m) => m.body)).toEqual([bodies[2]]);
  });
});
