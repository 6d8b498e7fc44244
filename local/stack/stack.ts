import { type ChildProcess, type SpawnOptions, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createServer } from "node:net";
import { resolve } from "node:path";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { LambdaClient } from "@aws-sdk/client-lambda";
import { CreateSecretCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { SQSClient } from "@aws-sdk/client-sqs";
import { type LocalAws, startLocalAws } from "../aws";
import { type HubSpotSandbox, startHubSpotSandbox } from "../hubspot";
import {
  CRM_SCOPES,
  DEFAULT_SETTINGS,
  type Sandbox,
  type SandboxSettings,
  sandboxSecret,
  startSandbox,
} from "../sandbox";
import { createLedgerTable, LOCAL_LEDGER_TABLE } from "./ledger-table";
import { createQueueWithDlq } from "./queues";
import { SqsPoller } from "./sqs-poller";

export interface LocalStackOptions {
  /** 0 or absent: a free port */
  httpPort?: number;
  lambdaPort?: number;
  sandboxPort?: number;
  awsPort?: number;
  hubspotPort?: number;
  /** contacts seeded in the sandbox's organization */
  contacts?: number;
  /**
   * The CRMs too: the sandbox's Zoho CRM with its scopes granted, and the local HubSpot (seeded
   * with the Books contacts' companies and people) as the `hubspot` source's secret and URL.
   */
  crm?: boolean;
  sandbox?: Partial<SandboxSettings>;
  /** both queues' visibility timeout: longer than the worker's 90 s timeout, as in AWS */
  visibilityTimeoutSeconds?: number;
  /** extra environment for the functions (e.g. a smaller ZOHO_HTTP_TIMEOUT_MS) */
  env?: Record<string, string>;
  /** serverless.yml params (e.g. workerRateLimitPerMinute for a sandbox with another limit) */
  params?: Record<string, string>;
  /** where serverless-offline's output goes; default: discarded */
  log?: (line: string) => void;
  /** start the SQS event-source poller (default true) */
  poller?: boolean;
  /** worker invocations at once, per queue (serverless.yml's maximumConcurrency, 2) */
  pollerConcurrency?: number;
}

export interface LocalStack {
  /** the HTTP API, as serverless-offline serves it */
  httpUrl: string;
  /** serverless-offline's Lambda invoke endpoint */
  lambdaUrl: string;
  sandbox: Sandbox;
  aws: LocalAws;
  secretId: string;
  /** the webhook secret, with one source `local` (Zoho CRM's preset) */
  webhookSecretId: string;
  /** the `local` source's token, for `?token=` or `Authorization: Bearer` */
  webhookToken: string;
  /** the ledger table (DynamoDB) */
  ledgerTable: string;
  /** the local HubSpot and its token's secret (with `crm`) */
  hubspot: HubSpotSandbox | undefined;
  hubspotSecretId: string | undefined;
  /** the activation queue (real-time jobs) and its DLQ */
  queueUrl: string;
  dlqUrl: string;
  /** the bulk queue (the sync's jobs) and its DLQ */
  bulkQueueUrl: string;
  bulkDlqUrl: string;
  /** the activation queue's event-source poller */
  poller: SqsPoller | undefined;
  /** the bulk queue's, invoking the same worker */
  bulkPoller: SqsPoller | undefined;
  /** the environment the functions run with (AWS endpoints, secret id, table, queue URLs) */
  env: Record<string, string>;
  stop(): Promise<void>;
}

export const SERVICE = "zoho-contact-status";
export const STAGE = "local";
const ROOT = resolve(import.meta.dirname, "../..");

export function functionName(key: string): string {
  return `${SERVICE}-${STAGE}-${key}`;
}

/** A free TCP port on loopback. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  server.close();
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

/** A port the stack was asked to use is taken; `option` is the LocalStackOptions field. */
export class PortTakenError extends Error {
  constructor(
    readonly port: number,
    readonly option: string,
  ) {
    super(`port ${port} is taken (${option})`);
  }
}

/** Whether something listens on this port of loopback already (or it cannot be listened on). */
export async function portTaken(port: number): Promise<boolean> {
  const server = createServer();
  server.listen(port, "127.0.0.1");
  try {
    await once(server, "listening");
  } catch {
    return true;
  }
  await new Promise((closed) => server.close(closed));
  return false;
}

/**
 * Checks every fixed port before anything starts, so a second stack fails at once and leaves
 * nothing half started. Throws PortTakenError for the first one taken.
 */
export async function checkPorts(ports: Record<string, number | undefined>): Promise<void> {
  for (const [option, port] of Object.entries(ports)) {
    if (port && (await portTaken(port))) throw new PortTakenError(port, option);
  }
}

const WATCHDOG = resolve(import.meta.dirname, "parent-watchdog.cjs");

/**
 * Runs a Node script in its own process group (so stopProcessGroup ends its children too) that
 * still dies with this process, however this one ends: parent-watchdog.cjs, preloaded into it,
 * kills its group when the pipe this process holds on its fd 3 closes. A detached process would
 * otherwise outlive a SIGKILLed parent, keeping its ports.
 */
export function spawnNodeInOwnGroup(
  script: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): ChildProcess {
  const spawnOptions: SpawnOptions = {
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    env: { ...(options.env ?? process.env), LOCAL_STACK_PARENT_FD: "3" },
    stdio: ["ignore", "pipe", "pipe", "pipe"],
    detached: true,
  };
  const child = spawn(process.execPath, ["--require", WATCHDOG, script, ...args], spawnOptions);
  // this end of the watchdog's pipe lives as long as this process; it must not keep it alive
  const lifeline = child.stdio[3] as { unref?: () => void } | null;
  lifeline?.unref?.();
  return child;
}

/**
 * The whole system on one machine, wired as serverless.yml wires it in AWS: the Zoho Books
 * sandbox, local Secrets Manager, SQS and DynamoDB endpoints (the secret, the ledger table, the
 * activation and bulk queues with their DLQs), the four functions under serverless-offline
 * (HTTP routes and schedules), and an SQS event-source poller per queue for the worker.
 */
export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  await checkPorts({
    httpPort: options.httpPort,
    lambdaPort: options.lambdaPort,
    sandboxPort: options.sandboxPort,
    awsPort: options.awsPort,
    hubspotPort: options.crm ? options.hubspotPort : undefined,
  });
  // With the CRMs, the grant carries the CRM scopes, and Books' list rows carry the integration's
  // link (zcrm_account_id): whether Zoho's do is undocumented (the tests run both ways); with it,
  // a first run needs no lookup per record, which at the default share would take minutes.
  const crmScopes = options.crm
    ? {
        grantedScopes: [...DEFAULT_SETTINGS.grantedScopes, ...CRM_SCOPES],
        booksListCrmIds: true,
      }
    : {};
  const sandbox = await startSandbox({
    port: options.sandboxPort ?? 0,
    ...(options.contacts === undefined ? {} : { contacts: options.contacts }),
    settings: { ...crmScopes, ...options.sandbox },
  });
  const hubspot = options.crm
    ? await startHubSpotSandbox({
        port: options.hubspotPort ?? 0,
        ...(options.contacts === undefined ? {} : { records: options.contacts }),
      })
    : undefined;
  const aws = await startLocalAws({ port: options.awsPort ?? 0 });
  const awsEnv = {
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "local",
    AWS_SECRET_ACCESS_KEY: "local",
    AWS_ENDPOINT_URL: aws.url,
  };
  const client = {
    region: awsEnv.AWS_REGION,
    endpoint: aws.url,
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
  };
  const secretsManager = new SecretsManagerClient(client);
  const sqs = new SQSClient(client);
  const dynamodb = new DynamoDBClient(client);

  const secretId = "zoho-contact-status/local";
  await secretsManager.send(
    new CreateSecretCommand({
      Name: secretId,
      SecretString: JSON.stringify(sandboxSecret(sandbox)),
    }),
  );
  const webhookSecretId = "zoho-contact-status/local/webhooks";
  const webhookToken = randomBytes(24).toString("hex");
  await secretsManager.send(
    new CreateSecretCommand({
      Name: webhookSecretId,
      SecretString: JSON.stringify({ local: { preset: "zoho-crm", tokens: [webhookToken] } }),
    }),
  );
  const hubspotSecretId = "zoho-contact-status/local/hubspot";
  if (hubspot)
    await secretsManager.send(
      new CreateSecretCommand({
        Name: hubspotSecretId,
        SecretString: JSON.stringify({ access_token: hubspot.token }),
      }),
    );
  const ledgerTable = await createLedgerTable(dynamodb, LOCAL_LEDGER_TABLE);
  const visibilityTimeoutSeconds = options.visibilityTimeoutSeconds ?? 100;
  const { queueUrl, dlqUrl } = await createQueueWithDlq(sqs, {
    queue: "activation-queue",
    dlq: "activation-dlq",
    visibilityTimeoutSeconds,
  });
  const bulk = await createQueueWithDlq(sqs, {
    queue: "bulk-queue",
    dlq: "bulk-dlq",
    visibilityTimeoutSeconds,
  });

  const httpPort = options.httpPort || (await freePort());
  const lambdaPort = options.lambdaPort || (await freePort());
  const env = {
    ...awsEnv,
    ZOHO_SECRET_ID: secretId,
    WEBHOOK_SECRET_ID: webhookSecretId,
    ZOHO_LEDGER_TABLE: ledgerTable,
    ACTIVATION_QUEUE_URL: queueUrl,
    ACTIVATION_DLQ_URL: dlqUrl,
    BULK_QUEUE_URL: bulk.queueUrl,
    BULK_DLQ_URL: bulk.dlqUrl,
    LOG_LEVEL: "INFO",
    // the Zoho CRM notification channel's notify_url (watch runs)
    API_BASE_URL: `http://127.0.0.1:${httpPort}`,
    ...options.env,
  };
  const params = {
    ...(hubspot ? { hubspotSecretArn: hubspotSecretId, hubspotApiUrl: hubspot.url } : {}),
    ...options.params,
  };
  const offline = spawnNodeInOwnGroup(
    resolve(ROOT, "node_modules/osls/bin/serverless.js"),
    [
      "offline",
      "start",
      "--stage",
      STAGE,
      "--host",
      "127.0.0.1",
      "--httpPort",
      String(httpPort),
      "--lambdaPort",
      String(lambdaPort),
      "--noPrependStageInUrl",
      // API Gateway checks IAM signatures in AWS; serverless-offline cannot, so locally none is asked for.
      "--noAuth",
      ...Object.entries(params).map(([name, value]) => `--param=${name}=${value}`),
    ],
    {
      cwd: ROOT,
      env: { ...process.env, ...env, SLS_TELEMETRY_DISABLED: "1", SLS_NOTIFICATIONS_MODE: "off" },
    },
  );
  const stopOffline = () => stopProcessGroup(offline);
  try {
    await waitForOutput(offline, /Server ready/, options.log, 120_000);
  } catch (error) {
    await stopOffline();
    await Promise.all([sandbox.close(), aws.close(), hubspot?.close()]);
    throw error;
  }

  const lambda = new LambdaClient({ ...client, endpoint: `http://127.0.0.1:${lambdaPort}` });
  // As in AWS: one event source mapping per queue, both invoking the same worker, each with
  // its own maximumConcurrency; the records say by their eventSourceARN which queue they are from.
  const pollerFor = (url: string) =>
    options.poller === false
      ? undefined
      : new SqsPoller({
          sqs,
          lambda,
          queueUrl: url,
          functionName: functionName("sqsWorker"),
          concurrency: options.pollerConcurrency ?? 2,
        });
  const poller = pollerFor(queueUrl);
  const bulkPoller = pollerFor(bulk.queueUrl);
  await Promise.all([poller?.start(), bulkPoller?.start()]);

  return {
    httpUrl: `http://127.0.0.1:${httpPort}`,
    lambdaUrl: `http://127.0.0.1:${lambdaPort}`,
    sandbox,
    aws,
    secretId,
    webhookSecretId,
    webhookToken,
    hubspot,
    hubspotSecretId: hubspot ? hubspotSecretId : undefined,
    ledgerTable,
    queueUrl,
    dlqUrl,
    bulkQueueUrl: bulk.queueUrl,
    bulkDlqUrl: bulk.dlqUrl,
    poller,
    bulkPoller,
    env,
    async stop() {
      await Promise.all([poller?.stop(), bulkPoller?.stop()]);
      await stopOffline();
      await Promise.all([sandbox.close(), aws.close(), hubspot?.close()]);
    },
  };
}

function waitForOutput(
  child: ChildProcess,
  ready: RegExp,
  log: ((line: string) => void) | undefined,
  timeoutMs: number,
): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    let seen = "";
    const timer = setTimeout(
      () => reject(new Error(`serverless-offline did not start:\n${seen.slice(-4000)}`)),
      timeoutMs,
    );
    const onData = (chunk: Buffer) => {
      const text = chunk.toString();
      for (const line of text.split("\n")) if (line.trim()) log?.(line);
      seen += text;
      if (ready.test(seen)) {
        clearTimeout(timer);
        resolvePromise();
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`serverless-offline exited with ${code}:\n${seen.slice(-4000)}`));
    });
  });
}

async function stopProcessGroup(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.pid === undefined) return;
  const exited = once(child, "exit");
  process.kill(-child.pid, "SIGTERM");
  const timer = setTimeout(() => {
    try {
      process.kill(-(child.pid as number), "SIGKILL");
    } catch {
      // already gone
    }
  }, 5_000);
  await exited;
  clearTimeout(timer);
}
