import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { CreateSecretCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { SQSClient } from "@aws-sdk/client-sqs";
import { type LocalAws, startLocalAws } from "../local/aws";
import { type Sandbox, type SandboxSettings, sandboxSecret, startSandbox } from "../local/sandbox";
import { contactId } from "../local/sandbox/seed";
import { createLedgerTable, storeLedgerToken } from "../local/stack/ledger-table";
import { createQueueWithDlq, queueActivations } from "../local/stack/queues";
import { bundle, ROOT } from "./bundle";

export const SECRET_ID = "bench/zoho";
export const TABLE = "bench-ledger";

/** Inactive seed contacts (every 4th, but 12, whose email is shared), one job each. */
export function jobIds(jobs: number, skip = 0): string[] {
  return Array.from({ length: jobs + skip + 1 }, (_, i) => 4 * (i + 1))
    .filter((n) => n !== 12)
    .slice(skip, skip + jobs)
    .map(contactId);
}

export type QueueName = "activation" | "bulk";

/** A fresh sandbox and local AWS (Secrets Manager, SQS, the ledger on DynamoDB) as deployed. */
export interface Stack {
  sandbox: Sandbox;
  aws: LocalAws;
  sqs: SQSClient;
  dynamo: DynamoDBClient;
  queues: Record<QueueName, { queueUrl: string; dlqUrl: string; name: string; dlq: string }>;
  /** the environment every function of the stack gets */
  env: Record<string, string>;
}

export async function startStack(options: {
  contacts: number;
  /** the sandbox's member organizations (default 1), each with `contacts` contacts */
  organizations?: number;
  sandbox?: Partial<SandboxSettings>;
  /** the access token in the ledger at the start: a live one, an expired one, or none */
  token: "fresh" | "expired" | "none";
  env?: Record<string, string>;
}): Promise<Stack> {
  const sandbox = await startSandbox({
    contacts: options.contacts,
    organizations: options.organizations ?? 1,
    settings: options.sandbox ?? {},
  });
  const aws = await startLocalAws();
  const client = {
    endpoint: aws.url,
    region: "us-east-1",
    credentials: { accessKeyId: "bench", secretAccessKey: "bench" },
  };
  await new SecretsManagerClient(client).send(
    new CreateSecretCommand({
      Name: SECRET_ID,
      SecretString: JSON.stringify(sandboxSecret(sandbox)),
    }),
  );
  const dynamo = new DynamoDBClient(client);
  await createLedgerTable(dynamo, TABLE);
  if (options.token !== "none") {
    // A token the refresher stored; an expired one must be replaced by the first container to need it.
    const issued = sandbox.issueToken();
    const expiresIn = options.token === "fresh" ? issued.expires_in : -60;
    await storeLedgerToken(
      dynamo,
      TABLE,
      SECRET_ID,
      { ...issued, expires_in: expiresIn },
      sandbox.url,
    );
  }
  const sqs = new SQSClient(client);
  const queue = async (name: string, dlq: string) => ({
    ...(await createQueueWithDlq(sqs, { queue: name, dlq, visibilityTimeoutSeconds: 540 })),
    name,
    dlq,
  });
  const queues = {
    activation: await queue("activation-queue", "activation-dlq"),
    bulk: await queue("bulk-queue", "bulk-dlq"),
  };
  const env = {
    PATH: process.env.PATH ?? "",
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "bench",
    AWS_SECRET_ACCESS_KEY: "bench",
    AWS_ENDPOINT_URL: aws.url,
    ZOHO_SECRET_ID: SECRET_ID,
    ZOHO_LEDGER_TABLE: TABLE,
    ACTIVATION_QUEUE_URL: queues.activation.queueUrl,
    ACTIVATION_DLQ_URL: queues.activation.dlqUrl,
    BULK_QUEUE_URL: queues.bulk.queueUrl,
    BULK_DLQ_URL: queues.bulk.dlqUrl,
    LOG_LEVEL: "WARN",
    POWERTOOLS_METRICS_DISABLED: "true",
    ...options.env,
  };
  return { sandbox, aws, sqs, dynamo, queues, env };
}

export async function stopStack(stack: Stack): Promise<void> {
  stack.sqs.destroy();
  stack.dynamo.destroy();
  await Promise.all([stack.sandbox.close(), stack.aws.close()]);
}

const entries = new Map<string, Promise<string>>();
/** A bench entry bundled as Lambda bundles are (once per run). */
export function entryFile(name: string, path: string): Promise<string> {
  let file = entries.get(name);
  if (!file) {
    file = bundle(name, { path: `${ROOT}/${path}` }).then((b) => b.file);
    entries.set(name, file);
  }
  return file;
}

/** Child processes, each printing one JSON line on exit. */
export interface Processes<T> {
  /** resolves when every process has exited, with what each printed */
  exited: Promise<T[]>;
  /** asks every process to finish (SIGTERM) and waits for them */
  stop(): Promise<T[]>;
}

export async function spawnProcesses<T>(
  file: string,
  count: number,
  env: Record<string, string>,
): Promise<Processes<T>> {
  const children: ChildProcess[] = Array.from({ length: count }, () =>
    spawn(process.execPath, [file], { env, stdio: ["ignore", "pipe", "ignore"] }),
  );
  const exited = Promise.all(
    children.map(async (child) => {
      let out = "";
      child.stdout?.on("data", (chunk: Buffer) => {
        out += chunk.toString();
      });
      await once(child, "exit");
      const last = out.trim().split("\n").pop() ?? "";
      try {
        return JSON.parse(last) as T;
      } catch {
        return {} as T;
      }
    }),
  );
  return {
    exited,
    stop: async () => {
      for (const child of children) if (child.exitCode === null) child.kill("SIGTERM");
      return exited;
    },
  };
}

export interface WorkerStats {
  invocations: number;
  records: number;
}

/**
 * `processes` worker processes (separate Lambda containers) polling one queue as the event
 * source mapping does. `idlePolls`: empty polls in a row after which a process exits (0: only
 * when stopped).
 */
export async function startWorkers(
  stack: Stack,
  options: {
    queue: QueueName;
    processes: number;
    idlePolls?: number;
    env?: Record<string, string>;
  },
): Promise<Processes<WorkerStats>> {
  const file = await entryFile("worker-process", "local/stack/worker-process.ts");
  return spawnProcesses<WorkerStats>(file, options.processes, {
    ...stack.env,
    BENCH_QUEUE_URL: stack.queues[options.queue].queueUrl,
    BENCH_IDLE_POLLS: String(options.idlePolls ?? 3),
    ...options.env,
  });
}

/** Where each job of `ids` ended: done in Zoho, parked in a DLQ, or still on a queue. */
export function outcome(stack: Stack, ids: readonly string[]) {
  const bodyIds = (queue: string) =>
    stack.aws.queueMessages(queue).map((m) => JSON.parse(m.body).contact_id as string);
  const wanted = new Set(ids);
  const parked = [...bodyIds("activation-dlq"), ...bodyIds("bulk-dlq")].filter((id) =>
    wanted.has(id),
  );
  const waiting = [...bodyIds("activation-queue"), ...bodyIds("bulk-queue")].filter((id) =>
    wanted.has(id),
  );
  const done = ids.filter((id) => stack.sandbox.contact(id)?.status === "active");
  return {
    done,
    parked,
    waiting,
    lost: ids.length - new Set([...done, ...parked, ...waiting]).size,
  };
}

export interface WorkerRun {
  stack: Stack;
  sandbox: Sandbox;
  aws: LocalAws;
  ids: string[];
  startedAt: number;
  seconds: number;
  done: string[];
  parked: string[];
  waiting: string[];
  lost: number;
}

/**
 * `processes` worker processes on `queue` (default: bulk), on a fresh stack with `jobs`
 * activations queued; resolves once every process has found the queue empty and exited.
 */
export async function runWorkers(options: {
  processes: number;
  jobs: number;
  queue?: QueueName;
  sandbox?: Partial<SandboxSettings>;
  env?: Record<string, string>;
  token: "fresh" | "expired" | "none";
}): Promise<WorkerRun> {
  const stack = await startStack({
    contacts: options.jobs * 4 + 8,
    sandbox: options.sandbox,
    token: options.token,
    env: options.env,
  });
  const queue = options.queue ?? "bulk";
  const ids = jobIds(options.jobs);
  await queueActivations(stack.sqs, stack.queues[queue].queueUrl, ids);
  await entryFile("worker-process", "local/stack/worker-process.ts");
  const startedAt = Date.now();
  const workers = await startWorkers(stack, { queue, processes: options.processes });
  await workers.exited;
  return {
    stack,
    sandbox: stack.sandbox,
    aws: stack.aws,
    ids,
    startedAt,
    seconds: (Date.now() - startedAt) / 1000,
    ...outcome(stack, ids),
  };
}

export async function stopRun(run: WorkerRun): Promise<void> {
  await stopStack(run.stack);
}
