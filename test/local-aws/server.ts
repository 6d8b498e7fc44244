import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { AwsError, type Json } from "./protocol";
import { SecretsManager } from "./secrets-manager";
import { Sqs } from "./sqs";

export interface LocalAwsOptions {
  /** 0 or absent: a free port */
  port?: number;
  region?: string;
  accountId?: string;
}

export interface LocalAwsFaults {
  /** every Secrets Manager call answers HTTP 503 ServiceUnavailable (the SDK retries, then fails) */
  secretsManagerUnavailable: boolean;
  /** likewise for SQS */
  sqsUnavailable: boolean;
  /** the next N SendMessageBatch entries answer Failed (InternalError, not the sender's fault) */
  failBatchEntries: number;
}

export interface LocalAws {
  url: string;
  close(): Promise<void>;
  reset(): void;
  stats(): { calls: Record<string, number>; secretReads: Record<string, number> };
  secretValue(nameOrArn: string): string | undefined;
  queueMessages(queueName: string): ReturnType<Sqs["messages"]>;
  /** lets time pass for a queue: its hidden and delayed messages become visible now */
  endDelays(queueName: string): void;
  faults: LocalAwsFaults;
}

/**
 * The smallest faithful local AWS for this service: Secrets Manager (JSON 1.1) and SQS (JSON
 * 1.0) on one endpoint, chosen by the `X-Amz-Target` header, so the unmodified AWS SDK v3
 * clients reach it through `AWS_ENDPOINT_URL`. Credentials and signatures are not checked.
 * `/__local/` answers inspection and fault injection over HTTP.
 *
 * @example
 * const aws = await startLocalAws();
 * const sqs = new SQSClient({ endpoint: aws.url, region: "us-east-1" });
 */
export async function startLocalAws(options: LocalAwsOptions = {}): Promise<LocalAws> {
  const region = options.region ?? "us-east-1";
  const account = options.accountId ?? "000000000000";
  let url = "";
  const secrets = new SecretsManager(region, account);
  const sqs = new Sqs(() => url, region, account);
  const faults: LocalAwsFaults = {
    secretsManagerUnavailable: false,
    sqsUnavailable: false,
    failBatchEntries: 0,
  };
  let calls: Record<string, number> = {};

  async function aws(target: string, input: Json): Promise<Json> {
    const [prefix, operation = ""] = target.split(".");
    calls[target] = (calls[target] ?? 0) + 1;
    if (prefix === "secretsmanager") {
      if (faults.secretsManagerUnavailable)
        throw new AwsError("ServiceUnavailable", "Service is unavailable.", 503);
      return secrets.handle(operation, input);
    }
    if (prefix === "AmazonSQS") {
      if (faults.sqsUnavailable)
        throw new AwsError("ServiceUnavailable", "Service is unavailable.", 503);
      sqs.failBatchEntries = faults.failBatchEntries;
      try {
        return await sqs.handle(operation, input);
      } finally {
        faults.failBatchEntries = sqs.failBatchEntries;
      }
    }
    throw new AwsError("UnknownOperationException", `Unknown target ${target}.`);
  }

  function control(method: string, path: string, body: Json): { status: number; body: unknown } {
    const queue = /^\/__local\/queues\/([\w-]+)\/messages$/.exec(path);
    const secret = /^\/__local\/secrets\/(.+)$/.exec(path);
    if (method === "GET" && path === "/__local/stats") return { status: 200, body: local.stats() };
    if (method === "POST" && path === "/__local/reset") {
      local.reset();
      return { status: 200, body: { reset: true } };
    }
    if (method === "PATCH" && path === "/__local/faults") {
      for (const [key, value] of Object.entries(body)) {
        if (!(key in faults) || typeof value !== typeof faults[key as keyof LocalAwsFaults]) {
          return { status: 400, body: { error: `bad fault ${key}` } };
        }
      }
      Object.assign(faults, body);
      return { status: 200, body: faults };
    }
    if (method === "GET" && queue?.[1]) return { status: 200, body: sqs.messages(queue[1]) };
    if (method === "GET" && secret?.[1]) {
      const value = secrets.value(decodeURIComponent(secret[1]));
      return value === undefined
        ? { status: 404, body: { error: "no such secret" } }
        : { status: 200, body: JSON.parse(value) };
    }
    return { status: 404, body: { error: "no such control endpoint" } };
  }

  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    let body: Json = {};
    try {
      const text = await readText(req);
      body = text ? (JSON.parse(text) as Json) : {};
    } catch {
      return reply(res, 400, { __type: "SerializationException", message: "Body is not JSON." });
    }
    const path = new URL(req.url ?? "/", "http://local").pathname;
    if (path.startsWith("/__local/")) {
      const answer = control(req.method ?? "GET", path, body);
      return reply(res, answer.status, answer.body);
    }
    const target = String(req.headers["x-amz-target"] ?? "");
    try {
      reply(res, 200, await aws(target, body), target);
    } catch (error) {
      const failure =
        error instanceof AwsError
          ? error
          : new AwsError("InternalFailure", (error as Error).message, 500);
      const headers: Record<string, string> = failure.queryCode
        ? { "x-amzn-query-error": failure.queryCode }
        : {};
      reply(
        res,
        failure.status,
        { __type: failure.type, message: failure.message },
        target,
        headers,
      );
    }
  });
  server.listen(options.port ?? 0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const local: LocalAws = {
    url,
    faults,
    close: () =>
      new Promise<void>((resolve) => {
        sqs.close();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
    reset() {
      secrets.reset();
      sqs.reset();
      calls = {};
      Object.assign(faults, {
        secretsManagerUnavailable: false,
        sqsUnavailable: false,
        failBatchEntries: 0,
      });
    },
    stats: () => ({ calls: { ...calls }, secretReads: Object.fromEntries(secrets.reads) }),
    secretValue: (id) => secrets.value(id),
    queueMessages: (name) => sqs.messages(name),
    endDelays: (name) => sqs.endDelays(name),
  };
  return local;
}

function reply(
  res: ServerResponse,
  status: number,
  body: unknown,
  target = "",
  headers: Record<string, string> = {},
): void {
  if (res.writableEnded || res.destroyed) return;
  const contentType = target.startsWith("AmazonSQS")
    ? "application/x-amz-json-1.0"
    : "application/x-amz-json-1.1";
  res.writeHead(status, {
    "content-type": contentType,
    "x-amzn-requestid": crypto.randomUUID(),
    ...headers,
  });
  res.end(JSON.stringify(body));
}

async function readText(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}
