import { spawn } from "node:child_process";
import { once } from "node:events";
import { CreateSecretCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import {
  CreateQueueCommand as CreateSqsQueue,
  SendMessageBatchCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { startLocalAws } from "../test/local-aws";
import { SANDBOX_CREDENTIALS, startSandbox } from "../test/sandbox";
import { contactId } from "../test/sandbox/seed";
import { bundle, ROOT } from "./bundle";

export interface TokenFigures {
  processes: number;
  jobs: number;
  grants_fresh: number;
  grants_expired: number;
  secret_reads_per_process_fresh: number;
  secret_reads_per_process_expired: number;
  /** what the contract requires of `secret_reads_per_process`: 1 per TTL when the token is fresh */
  secret_reads_per_process: number;
}

/**
 * Token economy: `processes` cold worker processes (as separate Lambda containers are) start at
 * once on one shared secret and carry out `jobs` jobs. Counts the grants the sandbox made and
 * the secret reads local Secrets Manager served, once with a fresh stored token and once with
 * an expired one.
 */
export async function tokenEconomy(processes: number, jobs: number): Promise<TokenFigures> {
  const runner = await bundle("worker-process", { path: `${ROOT}/test/local-stack/worker-process.ts` });
  const fresh = await runOnce(runner.file, processes, jobs, true);
  const expired = await runOnce(runner.file, processes, jobs, false);
  return {
    processes,
    jobs,
    grants_fresh: fresh.grants,
    grants_expired: expired.grants,
    secret_reads_per_process_fresh: fresh.reads / processes,
    secret_reads_per_process_expired: expired.reads / processes,
    secret_reads_per_process: fresh.reads / processes,
  };
}

async function runOnce(runner: string, processes: number, jobs: number, freshToken: boolean) {
  const sandbox = await startSandbox({
    contacts: jobs * 4 + 8,
    settings: { rateLimitPerMinute: 1_000_000, concurrencyLimit: 1_000 },
  });
  const aws = await startLocalAws();
  try {
    const client = {
      endpoint: aws.url,
      region: "us-east-1",
      credentials: { accessKeyId: "bench", secretAccessKey: "bench" },
    };
    const token = freshToken ? sandbox.issueToken() : undefined;
    await new SecretsManagerClient(client).send(
      new CreateSecretCommand({
        Name: "bench/zoho",
        SecretString: JSON.stringify({
          client_id: SANDBOX_CREDENTIALS.client_id,
          client_secret: SANDBOX_CREDENTIALS.client_secret,
          refresh_token: SANDBOX_CREDENTIALS.refresh_token,
          accounts_url: sandbox.url,
          organization_id: SANDBOX_CREDENTIALS.organization_id,
          ...(token
            ? {
                access_token: token.access_token,
                api_domain: sandbox.url,
                access_token_expires_at: new Date(Date.now() + 3600_000).toISOString(),
              }
            : {
                access_token: "1000.expired.token",
                api_domain: sandbox.url,
                access_token_expires_at: new Date(Date.now() - 60_000).toISOString(),
              }),
        }),
      }),
    );
    const sqs = new SQSClient(client);
    const queueUrl = (
      await sqs.send(
        new CreateSqsQueue({ QueueName: "jobs", Attributes: { VisibilityTimeout: "120" } }),
      )
    ).QueueUrl as string;
    const dlqUrl = (await sqs.send(new CreateSqsQueue({ QueueName: "dlq" }))).QueueUrl as string;
    // The seed's inactive contacts (every 4th), but 12, whose email is shared oddly.
    const ids = Array.from({ length: jobs + 1 }, (_, i) => 4 * (i + 1))
      .filter((n) => n !== 12)
      .slice(0, jobs)
      .map(contactId);
    for (let i = 0; i < ids.length; i += 10) {
      await sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: ids
            .slice(i, i + 10)
            .map((id, j) => ({ Id: String(j), MessageBody: JSON.stringify({ contact_id: id }) })),
        }),
      );
    }

    const env = {
      PATH: process.env.PATH,
      AWS_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: "bench",
      AWS_SECRET_ACCESS_KEY: "bench",
      AWS_ENDPOINT_URL: aws.url,
      ZOHO_SECRET_ID: "bench/zoho",
      ACTIVATION_DLQ_URL: dlqUrl,
      BENCH_QUEUE_URL: queueUrl,
      ZOHO_RATE_LIMIT_PER_MINUTE: "1000000",
      LOG_LEVEL: "WARN",
      POWERTOOLS_METRICS_DISABLED: "true",
      AWS_SDK_JS_SUPPRESS_NODE_DEPRECATION_WARNING: "1",
    };
    const children = Array.from({ length: processes }, () =>
      spawn(process.execPath, [runner], { env, stdio: "ignore" }),
    );
    await Promise.all(children.map((child) => once(child, "exit")));
    const done = ids.filter((id) => sandbox.contact(id)?.status === "active").length;
    if (done !== jobs) throw new Error(`token economy: only ${done} of ${jobs} jobs were done`);
    return { grants: sandbox.stats().grants, reads: aws.stats().secretReads["bench/zoho"] ?? 0 };
  } finally {
    await sandbox.close();
    await aws.close();
  }
}
