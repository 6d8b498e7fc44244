/**
 * `npm run redrive`: look at the dead-letter queues and move parked jobs back to their queue.
 * `npm run redrive -- --help` says how; USAGE below is the same text.
 *
 * `list` and `move <id…>`/`move --code` receive every message of the DLQ with long polling,
 * each hidden for as long as the whole listing may take (SQS cannot peek), so none is listed or
 * moved twice; what is not moved is made visible again at the end. `move --all` is SQS's own
 * DLQ redrive (StartMessageMoveTask), with the queue the DLQ belongs to as the destination:
 * the worker parks jobs with SendMessage, and SQS cannot tell where such a message came from.
 */
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import {
  CancelMessageMoveTaskCommand,
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ListMessageMoveTasksCommand,
  type ListMessageMoveTasksResultEntry,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
  type SQSClientConfig,
  StartMessageMoveTaskCommand,
} from "@aws-sdk/client-sqs";

export const USAGE = `usage: npm run redrive -- <command> [--queue activation|bulk]

  list                      every parked job: message id, code, when, attempts, reason, body
  move <message-id>…        those jobs back onto their queue
  move --code CODE          every job parked with that code (e.g. CONTACT_NOT_FOUND)
  move --all [--rate N]     everything, by SQS's own DLQ redrive (StartMessageMoveTask),
                            N messages a second (1-500; default: SQS chooses), with progress
  cancel                    stop a running move --all

  --queue activation|bulk   one lane only (default: both)
  -h, --help                this text

The queues come from ACTIVATION_QUEUE_URL, ACTIVATION_DLQ_URL, BULK_QUEUE_URL and BULK_DLQ_URL
(the stack's outputs, or what npm start prints). Region and credentials are the AWS SDK's
(AWS_REGION or the URL's region, AWS_PROFILE, ...); for URLs on 127.0.0.1 or localhost (the
local stack) the URL's origin is the endpoint, with us-east-1 and dummy credentials.`;

export type Lane = "activation" | "bulk";
const LANES: Lane[] = ["activation", "bulk"];

export interface LaneQueues {
  lane: Lane;
  queueUrl?: string;
  dlqUrl?: string;
}

export interface ParkedJob {
  messageId: string;
  body: string;
  code: string;
  reason: string;
  parkedAt: string;
  attempts: string;
  zohoCode: string;
  details: string;
  /** the message's attributes, sent back with the body as the move task does */
  attributes: Message["MessageAttributes"];
  receiptHandle: string;
}

/** What the command line asks for; a UsageError says what is wrong with it. */
export interface Command {
  command: "help" | "list" | "move" | "cancel";
  lanes: Lane[];
  ids: string[];
  code?: string;
  all: boolean;
  rate?: number;
}

export class UsageError extends Error {}

export function parseCommand(argv: string[]): Command {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    const { code, message } = error as { code?: string; message: string };
    const option = /'([^' ]+)/.exec(message)?.[1] ?? "";
    if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") throw new UsageError(`unknown option ${option}`);
    if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
      throw new UsageError(`${option} needs a value`);
    }
    throw new UsageError(message.split("\n")[0] ?? message);
  }
  const { values, positionals } = parsed;
  const [command, ...ids] = positionals;
  const lanes = ((): Lane[] => {
    if (values.queue === undefined) return LANES;
    if (values.queue === "activation" || values.queue === "bulk") return [values.queue];
    throw new UsageError(`--queue must be activation or bulk, not ${values.queue}`);
  })();
  if (values.help) return { command: "help", lanes, ids: [], all: false };
  if (command === undefined) throw new UsageError("no command given");
  const rate = values.rate === undefined ? undefined : Number(values.rate);
  if (rate !== undefined && !(Number.isInteger(rate) && rate >= 1 && rate <= 500)) {
    throw new UsageError(`--rate must be a whole number from 1 to 500, not ${values.rate}`);
  }
  const only = (allowed: string[]) => {
    const given = Object.entries({ code: values.code, all: values.all || undefined, rate })
      .filter(([name, value]) => value !== undefined && !allowed.includes(name))
      .map(([name]) => `--${name}`);
    if (given.length > 0) throw new UsageError(`${command} takes no ${given.join(", ")}`);
    if (command !== "move" && ids.length > 0) {
      throw new UsageError(`${command} takes no arguments (${ids.join(" ")})`);
    }
  };
  switch (command) {
    case "list":
    case "cancel":
      only([]);
      return { command, lanes, ids: [], all: false };
    case "move": {
      only(["code", "all", "rate"]);
      const ways = [ids.length > 0, values.code !== undefined, values.all].filter(Boolean);
      if (ways.length === 0) throw new UsageError("move needs message ids, --code CODE or --all");
      if (ways.length > 1) throw new UsageError("move takes one of: message ids, --code, --all");
      if (rate !== undefined && !values.all) throw new UsageError("--rate goes with move --all");
      return {
        command,
        lanes,
        ids,
        all: values.all,
        ...(values.code === undefined ? {} : { code: values.code }),
        ...(rate === undefined ? {} : { rate }),
      };
    }
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      code: { type: "string" },
      all: { type: "boolean", default: false },
      rate: { type: "string" },
      queue: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
}

/** The lanes' queue URLs from the environment. */
export function queuesFromEnv(env: NodeJS.ProcessEnv): LaneQueues[] {
  return [
    { lane: "activation", queueUrl: env.ACTIVATION_QUEUE_URL, dlqUrl: env.ACTIVATION_DLQ_URL },
    { lane: "bulk", queueUrl: env.BULK_QUEUE_URL, dlqUrl: env.BULK_DLQ_URL },
  ];
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

/**
 * The SQS client for these queue URLs. Queues on this machine (the local stack) are reached at
 * the URL's origin with us-east-1 and dummy credentials, unless AWS_ENDPOINT_URL(_SQS) says
 * otherwise; AWS queues in the region their URL names when AWS_REGION does not say one.
 */
export function sqsClientFor(urls: string[], env: NodeJS.ProcessEnv): SQSClient {
  const config: SQSClientConfig = {};
  const [first] = urls.map((url) => new URL(url));
  const endpointSet = Boolean(env.AWS_ENDPOINT_URL_SQS || env.AWS_ENDPOINT_URL);
  if (first && LOOPBACK.has(first.hostname)) {
    if (!endpointSet) config.endpoint = first.origin;
    config.region = env.AWS_REGION || "us-east-1";
    config.credentials = { accessKeyId: "local", secretAccessKey: "local" };
  } else if (!env.AWS_REGION && !env.AWS_DEFAULT_REGION) {
    const region = first && /^sqs\.([a-z0-9-]+)\.amazonaws\.com/.exec(first.hostname)?.[1];
    if (region) config.region = region;
  }
  return new SQSClient(config);
}

/** An AWS SDK failure a user can fix, said in one line. */
export function explain(error: unknown): string {
  const { name = "", message = String(error) } = (error ?? {}) as {
    name?: string;
    message?: string;
  };
  if (/Region is missing/i.test(message)) {
    return "no AWS region: set AWS_REGION (or a profile with a region), or use the queue URLs the stack printed";
  }
  if (name === "CredentialsProviderError" || /Could not load credentials/i.test(message)) {
    return "no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY";
  }
  if (name === "QueueDoesNotExist" || /NonExistentQueue/.test(name)) {
    return `no such queue (${message}): check the *_QUEUE_URL and *_DLQ_URL variables`;
  }
  if (/ECONNREFUSED/.test(`${message} ${(error as { code?: string })?.code ?? ""}`)) {
    return `cannot reach SQS (${message}): is the local stack (npm start) running?`;
  }
  return `${name || "Error"}: ${message.split("\n")[0]}`;
}

const attributeOf = (message: Message, name: string) =>
  message.MessageAttributes?.[name]?.StringValue ?? "";

function toParked(message: Message): ParkedJob {
  return {
    messageId: message.MessageId ?? "",
    body: message.Body ?? "",
    code: attributeOf(message, "error_code") || "REDRIVEN_BY_SQS",
    reason:
      attributeOf(message, "error_message") ||
      "failed maxReceiveCount times (see the worker's logs)",
    parkedAt: attributeOf(message, "parked_at"),
    attempts: attributeOf(message, "attempts"),
    zohoCode: attributeOf(message, "zoho_code"),
    details: attributeOf(message, "error_details"),
    attributes: message.MessageAttributes,
    receiptHandle: message.ReceiptHandle ?? "",
  };
}

/**
 * Every job in the DLQ, received with long polling and hidden while we look: for `holdSeconds`
 * when given, else for a minute plus two seconds per ten messages the queue says it holds, so
 * no message comes round twice in one listing. A message seen twice (the hold ran out) ends the
 * listing. Call `release` with what you do not delete.
 */
export async function listParked(
  sqs: SQSClient,
  dlqUrl: string,
  options: { holdSeconds?: number; waitSeconds?: number } = {},
): Promise<ParkedJob[]> {
  let hold = options.holdSeconds;
  if (hold === undefined) {
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: dlqUrl,
        AttributeNames: ["ApproximateNumberOfMessages"],
      }),
    );
    const count = Number(Attributes?.ApproximateNumberOfMessages ?? 0);
    hold = Math.min(43_200, 60 + Math.ceil(count / 10) * 2);
  }
  const parked = new Map<string, ParkedJob>();
  for (;;) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: dlqUrl,
        MaxNumberOfMessages: 10,
        VisibilityTimeout: hold,
        MessageAttributeNames: ["All"],
        WaitTimeSeconds: options.waitSeconds ?? 1,
      }),
    );
    if (Messages.length === 0) return [...parked.values()];
    for (const message of Messages) {
      const job = toParked(message);
      if (parked.has(job.messageId)) {
        parked.set(job.messageId, job); // the newer receipt handle
        return [...parked.values()];
      }
      parked.set(job.messageId, job);
    }
  }
}

/** Makes jobs received by `listParked` visible again at once. */
export async function release(sqs: SQSClient, dlqUrl: string, jobs: ParkedJob[]): Promise<void> {
  for (let start = 0; start < jobs.length; start += 10) {
    await sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: dlqUrl,
        Entries: jobs.slice(start, start + 10).map((job, index) => ({
          Id: String(index),
          ReceiptHandle: job.receiptHandle,
          VisibilityTimeout: 0,
        })),
      }),
    );
  }
}

/**
 * Sends each job back to the queue with its body and attributes (as SQS's own redrive does),
 * then deletes it from the DLQ. Returns the ids moved.
 */
export async function moveBack(
  sqs: SQSClient,
  jobs: ParkedJob[],
  queueUrl: string,
  dlqUrl: string,
): Promise<string[]> {
  const moved: string[] = [];
  for (const job of jobs) {
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: queueUrl,
        MessageBody: job.body,
        ...(job.attributes ? { MessageAttributes: job.attributes } : {}),
      }),
    );
    await sqs.send(
      new DeleteMessageCommand({ QueueUrl: dlqUrl, ReceiptHandle: job.receiptHandle }),
    );
    moved.push(job.messageId);
  }
  return moved;
}

async function queueArn(sqs: SQSClient, url: string): Promise<string> {
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["QueueArn"] }),
  );
  return Attributes?.QueueArn ?? "";
}

async function latestTask(
  sqs: SQSClient,
  dlqArn: string,
): Promise<ListMessageMoveTasksResultEntry | undefined> {
  const { Results = [] } = await sqs.send(
    new ListMessageMoveTasksCommand({ SourceArn: dlqArn, MaxResults: 1 }),
  );
  return Results[0];
}

export interface Io {
  log(line: string): void;
  error(line: string): void;
  env: NodeJS.ProcessEnv;
  /** how often `move --all` asks for progress */
  pollMs?: number;
  /** ReceiveMessage's WaitTimeSeconds for `list` and `move` */
  waitSeconds?: number;
}

/** Runs the command line; returns the exit code (2: a usage error, 1: a failure). */
export async function run(argv: string[], io: Io): Promise<number> {
  let command: Command;
  try {
    command = parseCommand(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.error(`redrive: ${error.message}`);
    io.error(USAGE);
    return 2;
  }
  if (command.command === "help") {
    io.log(USAGE);
    return 0;
  }
  const wanted = queuesFromEnv(io.env).filter((queues) => command.lanes.includes(queues.lane));
  const needsQueue = command.command === "move";
  const missing = (queues: LaneQueues) =>
    [
      queues.dlqUrl ? undefined : `${queues.lane.toUpperCase()}_DLQ_URL`,
      queues.queueUrl || !needsQueue ? undefined : `${queues.lane.toUpperCase()}_QUEUE_URL`,
    ].filter((name) => name !== undefined);
  // Both lanes by default, but a lane with nothing set is left out when the other is set.
  const lanes =
    command.lanes.length > 1 && wanted.some((q) => q.dlqUrl || q.queueUrl)
      ? wanted.filter((q) => q.dlqUrl || q.queueUrl)
      : wanted;
  const unset = lanes.flatMap(missing);
  if (unset.length > 0) {
    io.error(`redrive: set ${unset.join(" and ")} (the stack's outputs, or what npm start prints)`);
    return 2;
  }
  const sqs = sqsClientFor(
    lanes.flatMap((q) => [q.dlqUrl as string, ...(q.queueUrl ? [q.queueUrl] : [])]),
    io.env,
  );
  try {
    return await carryOut(sqs, command, lanes as Required<LaneQueues>[], io);
  } catch (error) {
    io.error(`redrive: ${explain(error)}`);
    return 1;
  } finally {
    sqs.destroy();
  }
}

async function carryOut(
  sqs: SQSClient,
  command: Command,
  lanes: Required<LaneQueues>[],
  io: Io,
): Promise<number> {
  const name = (url: string) => url.split("/").pop();
  const listing = { waitSeconds: io.waitSeconds ?? 1 };
  if (command.command === "list") {
    for (const { dlqUrl } of lanes) {
      const parked = await listParked(sqs, dlqUrl, listing);
      try {
        for (const job of parked) {
          const zoho = job.zohoCode ? ` (Zoho ${job.zohoCode})` : "";
          const attempts = job.attempts ? `  ${job.attempts} attempt(s)` : "";
          io.log(`${job.messageId}  ${job.code}${zoho}  ${job.parkedAt}${attempts}  ${job.reason}`);
          if (job.details) io.log(`    details: ${job.details}`);
          io.log(`    ${job.body}`);
        }
        io.log(`${name(dlqUrl)}: ${parked.length} parked job(s)`);
      } finally {
        await release(sqs, dlqUrl, parked);
      }
    }
    return 0;
  }
  if (command.command === "cancel") {
    for (const { dlqUrl } of lanes) {
      const task = await latestTask(sqs, await queueArn(sqs, dlqUrl));
      if (task?.Status === "RUNNING" && task.TaskHandle) {
        const { ApproximateNumberOfMessagesMoved = 0 } = await sqs.send(
          new CancelMessageMoveTaskCommand({ TaskHandle: task.TaskHandle }),
        );
        io.log(`${name(dlqUrl)}: move cancelled after ${ApproximateNumberOfMessagesMoved} job(s)`);
      } else {
        io.log(`${name(dlqUrl)}: no move running`);
      }
    }
    return 0;
  }
  if (command.all) return moveAll(sqs, command, lanes, io);

  let moved = 0;
  const found = new Set<string>();
  for (const { queueUrl, dlqUrl } of lanes) {
    const parked = await listParked(sqs, dlqUrl, listing);
    const chosen = parked.filter((job) =>
      command.code === undefined ? command.ids.includes(job.messageId) : job.code === command.code,
    );
    try {
      const ids = await moveBack(sqs, chosen, queueUrl, dlqUrl);
      for (const id of ids) found.add(id);
      moved += ids.length;
      if (ids.length > 0)
        io.log(`${name(dlqUrl)}: moved ${ids.length} job(s) to ${name(queueUrl)}`);
    } finally {
      await release(
        sqs,
        dlqUrl,
        parked.filter((job) => !found.has(job.messageId)),
      );
    }
  }
  const notFound = command.ids.filter((id) => !found.has(id));
  if (notFound.length > 0) io.error(`redrive: not parked: ${notFound.join(" ")}`);
  if (moved === 0) {
    io.log("nothing matched; see `npm run redrive -- list`");
    return command.ids.length > 0 ? 1 : 0;
  }
  io.log(`moved ${moved} job(s) back`);
  return notFound.length > 0 ? 1 : 0;
}

/** SQS's own redrive of each DLQ to its queue, reporting progress until every task has ended. */
async function moveAll(
  sqs: SQSClient,
  command: Command,
  lanes: Required<LaneQueues>[],
  io: Io,
): Promise<number> {
  const name = (url: string) => url.split("/").pop();
  const started: { label: string; dlqArn: string; last: string }[] = [];
  for (const { queueUrl, dlqUrl } of lanes) {
    const [dlqArn, destinationArn] = await Promise.all([
      queueArn(sqs, dlqUrl),
      queueArn(sqs, queueUrl),
    ]);
    const label = `${name(dlqUrl)} → ${name(queueUrl)}`;
    try {
      await sqs.send(
        new StartMessageMoveTaskCommand({
          SourceArn: dlqArn,
          // explicit: jobs the worker parked itself have no redrive source SQS could go back to
          DestinationArn: destinationArn,
          ...(command.rate === undefined ? {} : { MaxNumberOfMessagesPerSecond: command.rate }),
        }),
      );
    } catch (error) {
      if ((error as { name?: string }).name !== "UnsupportedOperation") throw error;
      io.error(`redrive: ${label}: ${(error as Error).message} (npm run redrive -- cancel)`);
      return 1;
    }
    io.log(`${label}: move started`);
    started.push({ label, dlqArn, last: "" });
  }
  let failed = false;
  while (started.length > 0) {
    await new Promise((resolve) => setTimeout(resolve, io.pollMs ?? 1000));
    for (const task of [...started]) {
      const state = await latestTask(sqs, task.dlqArn);
      const moved = state?.ApproximateNumberOfMessagesMoved ?? 0;
      const total = state?.ApproximateNumberOfMessagesToMove ?? 0;
      const line = `${task.label}: ${state?.Status ?? "UNKNOWN"}, ${moved} of ${total} job(s) moved${
        state?.FailureReason ? ` (${state.FailureReason})` : ""
      }`;
      if (line !== task.last) io.log(line);
      task.last = line;
      if (state?.Status !== "RUNNING") {
        started.splice(started.indexOf(task), 1);
        if (state?.Status !== "COMPLETED") failed = true;
      }
    }
  }
  return failed ? 1 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  // Node 20.19 is supported here; the SDK's notice about its future versions is not for this CLI.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  process.exitCode = await run(process.argv.slice(2), {
    log: (line) => console.log(line),
    error: (line) => console.error(line),
    env: process.env,
  });
}
