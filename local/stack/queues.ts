import { randomUUID } from "node:crypto";
import { CreateQueueCommand, GetQueueAttributesCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { enqueueJobs } from "../../lib/jobs/queue";

/**
 * A queue and its dead-letter queue as serverless.yml declares both pairs, activation and bulk
 * (redrive after `maxReceiveCount` receives), on whatever SQS endpoint `sqs` points at.
 */
export async function createQueueWithDlq(
  sqs: SQSClient,
  options: {
    queue: string;
    dlq: string;
    visibilityTimeoutSeconds: number;
    maxReceiveCount?: number;
  },
): Promise<{ queueUrl: string; dlqUrl: string }> {
  const dlqUrl = (
    await sqs.send(
      new CreateQueueCommand({
        QueueName: options.dlq,
        Attributes: { MessageRetentionPeriod: "1209600" },
      }),
    )
  ).QueueUrl as string;
  const dlqArn = (
    await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ["QueueArn"] }),
    )
  ).Attributes?.QueueArn;
  const queueUrl = (
    await sqs.send(
      new CreateQueueCommand({
        QueueName: options.queue,
        Attributes: {
          VisibilityTimeout: String(options.visibilityTimeoutSeconds),
          RedrivePolicy: JSON.stringify({
            deadLetterTargetArn: dlqArn,
            maxReceiveCount: options.maxReceiveCount ?? 5,
          }),
        },
      }),
    )
  ).QueueUrl as string;
  return { queueUrl, dlqUrl };
}

/** Queues one activation job per contact id, as the HTTP API does; throws if any is not queued. */
export async function queueActivations(
  sqs: SQSClient,
  queueUrl: string,
  contactIds: readonly string[],
): Promise<void> {
  const { failed } = await enqueueJobs(
    sqs,
    queueUrl,
    contactIds.map((id, index) => ({
      index,
      job: { contact_id: id, action: "activate", job_id: randomUUID() },
    })),
  );
  if (failed.length > 0) throw new Error(`${failed.length} jobs could not be queued`);
}
