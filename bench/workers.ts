import { spawn } from "node:child_process";
import { once } from "node:events";
import { CreateSecretCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { SQSClient } from "@aws-sdk/client-sqs";
import { type LocalAws, startLocalAws } from "../test/local-aws";
import { createQueueWithDlq, queueActivations } from "../test/local-stack/queues";
import { type Sandbox, type SandboxSettings, sandboxSecret, startSandbox } from "../test/sandbox";
import { contactId } from "../test/sandbox/seed";
import { bundle, ROOT } from "./bundle";

export interface WorkerRun {
  sandbox: Sandbox;
  aws: LocalAws;
  ids: string[];
  startedAt: number;
  seconds: number;
  done: string[];
  parked: string[];
  waiting: string[];
}

/** Inactive seed contacts (every 4th, but 12, whose email is shared), one job each. */
export function jobIds(jobs: number): string[] {
  return Array.from({ length: jobs + 1 }, (_, i) => 4 * (i + 1))
    .filter((n) => n !== 12)
    .slice(0, jobs)
    .map(contactId);
}

let runner: Promise<string> | undefined;

/**
 * `processes` separate worker processes (as separate Lambda containers are), each polling the
 * queue as the event source mapping does and running the worker's handler, on a fresh sandbox
 * and local AWS: `jobs` activations queued, a shared secret, a DLQ with redrive after 5 receives.
 * Resolves once every process has found the queue empty and exited.
 */
export async function runWorkers(options: {
  processes: number;
  jobs: number;
  sandbox?: Partial<SandboxSettings>;
  env?: Record<string, string>;
  freshToken: boolean;
}): Promise<WorkerRun> {
  runner ??= bundle("worker-process", { path: `${ROOT}/test/local-stack/worker-process.ts` }).then(
    (b) => b.file,
  );
  const sandbox = await startSandbox({
    contacts: options.jobs * 4 + 8,
    settings: options.sandbox ?? {},
  });
  const aws = await startLocalAws();
  const client = {
    endpoint: aws.url,
    region: "us-east-1",
    credentials: { accessKeyId: "bench", secretAccessKey: "bench" },
  };
  // An expired stored token is still a token: the first container to use it must refresh it.
  const secret = options.freshToken
    ? sandboxSecret(sandbox, { fresh: true })
    : {
        ...sandboxSecret(sandbox),
        access_token: "1000.expired.token",
        api_domain: sandbox.url,
        access_token_expires_at: new Date(Date.now() - 60_000).toISOString(),
      };
  await new SecretsManagerClient(client).send(
    new CreateSecretCommand({ Name: "bench/zoho", SecretString: JSON.stringify(secret) }),
  );
  const sqs = new SQSClient(client);
  const { queueUrl, dlqUrl } = await createQueueWithDlq(sqs, {
    queue: "activation-queue",
    dlq: "activation-dlq",
    visibilityTimeoutSeconds: 120,
  });
  const ids = jobIds(options.jobs);
  await queueActivations(sqs, queueUrl, ids);

  const startedAt = Date.now();
  const env = {
    PATH: process.env.PATH,
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "bench",
    AWS_SECRET_ACCESS_KEY: "bench",
    AWS_ENDPOINT_URL: aws.url,
    ZOHO_SECRET_ID: "bench/zoho",
    ACTIVATION_DLQ_URL: dlqUrl,
    BENCH_QUEUE_URL: queueUrl,
    LOG_LEVEL: "WARN",
    POWERTOOLS_METRICS_DISABLED: "true",
    ...options.env,
  };
  const file = await runner;
  const children = Array.from({ length: options.processes }, () =>
    spawn(process.execPath, [file], { env, stdio: "ignore" }),
  );
  await Promise.all(children.map((child) => once(child, "exit")));
  const bodyIds = (queue: string) =>
    aws.queueMessages(queue).map((m) => JSON.parse(m.body).contact_id as string);
  return {
    sandbox,
    aws,
    ids,
    startedAt,
    seconds: (Date.now() - startedAt) / 1000,
    done: ids.filter((id) => sandbox.contact(id)?.status === "active"),
    parked: bodyIds("activation-dlq"),
    waiting: bodyIds("activation-queue"),
  };
}

export async function stopRun(run: WorkerRun): Promise<void> {
  await Promise.all([run.sandbox.close(), run.aws.close()]);
}
