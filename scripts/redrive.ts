/**
 * `npm run redrive`: look at the dead-letter queue and move chosen jobs back to the queue.
 *
 *   npm run redrive -- list                      every parked job, with its reason
 *   npm run redrive -- move <message-id> …       those jobs back onto the activation queue
 *   npm run redrive -- move --code CONTACT_NOT_FOUND   every job parked with that code
 *   npm run redrive -- move --all
 *
 * Queues come from ACTIVATION_QUEUE_URL and ACTIVATION_DLQ_URL (the stack's outputs); the AWS
 * SDK's own variables pick the account, region and endpoint. A moved job keeps its body and
 * loses the reason; it is deleted from the DLQ only once it is on the queue.
 */
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import {
  DeleteMessageCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";

export interface ParkedJob {
  messageId: string;
  body: string;
  code: string;
  reason: string;
  parkedAt: string;
  receiptHandle: string;
}

/** Every job in the DLQ, each hidden for `holdSeconds` while we look (SQS cannot peek). */
export async function listParked(
  sqs: SQSClient,
  dlqUrl: string,
  holdSeconds = 30,
): Promise<ParkedJob[]> {
  const parked: ParkedJob[] = [];
  for (;;) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: dlqUrl,
        MaxNumberOfMessages: 10,
        VisibilityTimeout: holdSeconds,
        MessageAttributeNames: ["All"],
        WaitTimeSeconds: 0,
      }),
    );
    if (Messages.length === 0) return parked;
    parked.push(...Messages.map(toParked));
  }
}

function toParked(message: Message): ParkedJob {
  const attribute = (name: string) => message.MessageAttributes?.[name]?.StringValue ?? "";
  return {
    messageId: message.MessageId ?? "",
    body: message.Body ?? "",
    code: attribute("error_code") || "REDRIVEN_BY_SQS",
    reason: attribute("error_message") || "failed maxReceiveCount times (see the worker's logs)",
    parkedAt: attribute("parked_at"),
    receiptHandle: message.ReceiptHandle ?? "",
  };
}

/** Sends each job back to the queue, then deletes it from the DLQ. Returns the ids moved. */
export async function moveBack(
  sqs: SQSClient,
  jobs: ParkedJob[],
  queueUrl: string,
  dlqUrl: string,
): Promise<string[]> {
  const moved: string[] = [];
  for (const job of jobs) {
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: job.body }));
    await sqs.send(
      new DeleteMessageCommand({ QueueUrl: dlqUrl, ReceiptHandle: job.receiptHandle }),
    );
    moved.push(job.messageId);
  }
  return moved;
}

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: { code: { type: "string" }, all: { type: "boolean", default: false } },
  });
  const [command, ...ids] = positionals;
  const queueUrl = process.env.ACTIVATION_QUEUE_URL;
  const dlqUrl = process.env.ACTIVATION_DLQ_URL;
  if (!dlqUrl || (command === "move" && !queueUrl) || (command !== "list" && command !== "move")) {
    console.error(
      "usage: ACTIVATION_DLQ_URL=… [ACTIVATION_QUEUE_URL=…] npm run redrive -- list | move (<message-id>… | --code CODE | --all)",
    );
    process.exitCode = 2;
    return;
  }
  const sqs = new SQSClient({});
  const parked = await listParked(sqs, dlqUrl, command === "list" ? 5 : 60);
  if (command === "list") {
    for (const job of parked)
      console.log(`${job.messageId}  ${job.code}  ${job.parkedAt}  ${job.reason}\n    ${job.body}`);
    console.log(`${parked.length} parked job(s)`);
    return;
  }
  const chosen = parked.filter(
    (job) => values.all || job.code === values.code || ids.includes(job.messageId),
  );
  if (chosen.length === 0) console.log("nothing matched; see `npm run redrive -- list`");
  const moved = await moveBack(sqs, chosen, queueUrl as string, dlqUrl);
  console.log(`moved ${moved.length} job(s) back to the queue`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
