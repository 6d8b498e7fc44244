import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { DynamoDBClient, GetItemCommand } from "@aws-sdk/client-dynamodb";
import { EventBridgeClient, PutEventsCommand } from "@aws-sdk/client-eventbridge";
import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { SendMessageBatchCommand, SQSClient } from "@aws-sdk/client-sqs";
import { httpEvent, lambdaContext, sqsEvent, sqsRecord } from "../local/lambda-events";
import { allAccepted } from "../local/queue-mock";
import { median } from "./stats";

export interface WarmFigure {
  median_us: number;
  ratio: number;
}

/** A Zoho stub that answers at once: the action, and a one-contact list. */
async function zohoStub(): Promise<{ url: string; close(): void }> {
  const action = JSON.stringify({ code: 0, message: "The contact has been marked as active." });
  const list = JSON.stringify({
    code: 0,
    message: "success",
    contacts: [{ contact_id: "1", status: "inactive", email: "a@example.com" }],
    page_context: { page: 1, per_page: 200, has_more_page: false },
  });
  const server = createServer((req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(req.method === "GET" ? list : action);
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

/**
 * A zero-latency AWS service: the client's `send` answers at once. (aws-sdk-client-mock's
 * matching costs about 80 µs a call, more than our own code, and would be measured as ours.)
 * Returns the restore function.
 */
function answerAtOnce(
  client: { prototype: { send: unknown } },
  answer: (command: unknown) => unknown,
): () => void {
  const send = client.prototype.send;
  client.prototype.send = async (command: unknown) => answer(command);
  return () => {
    client.prototype.send = send;
  };
}

/**
 * Warm overhead: the median time of one in-process invocation of each handler against a
 * zero-latency Zoho stub, as a ratio to a bare fetch-and-parse of the same answer. Calls are
 * paired (baseline, handler) and the ratio is the median of the pairs'. Output written by the
 * handlers (logs, EMF) is produced but not printed.
 */
export async function warmOverhead(iterations: number): Promise<Record<string, WarmFigure>> {
  const stub = await zohoStub();
  Object.assign(process.env, {
    ZOHO_SECRET_ID: "bench/zoho",
    ACTIVATION_QUEUE_URL: "https://sqs.us-east-1.amazonaws.com/123456789012/activation-queue",
    ACTIVATION_DLQ_URL: "https://sqs.us-east-1.amazonaws.com/123456789012/activation-dlq",
    BULK_QUEUE_URL: "https://sqs.us-east-1.amazonaws.com/123456789012/bulk-queue",
    BULK_DLQ_URL: "https://sqs.us-east-1.amazonaws.com/123456789012/bulk-dlq",
    ZOHO_LEDGER_TABLE: "bench-ledger",
    AWS_REGION: "us-east-1",
    // Every AWS client is stubbed below; one that is not would meet a closed loopback port,
    // never the internet.
    AWS_ENDPOINT_URL: "http://127.0.0.1:9",
    ZOHO_MINUTE_SHARE: "100000000",
    ZOHO_DAILY_QUOTA: "100000000",
  });
  const secret = JSON.stringify({
    client_id: "1000.BENCH",
    client_secret: "bench",
    refresh_token: "1000.bench.refresh",
    organization_id: "123456",
  });
  // The ledger answers at once: the stored token for a GetItem, success for every write (the
  // budget's conditional updates all pass), so the figure is our own cost per ledger call.
  const tokenItem = {
    access_token: { S: "1000.bench.token" },
    api_domain: { S: stub.url },
    token_expires_at: { N: String(Date.now() + 3600_000) },
    granted_at: { N: String(Date.now()) },
    token_version: { N: "1" },
  };
  // Zoho's budget of the organization: an open day, nothing taken, nothing in progress.
  const budgetItem = {
    seq: { N: "0" },
    marks: { M: {} },
    leases: { M: {} },
    waiting_realtime: { M: {} },
    waiting_bulk: { M: {} },
    remaining: { N: "100000000" },
    reset_at: { N: String(Date.now() + 86_400_000) },
    quota: { N: "100000000" },
    reported: { BOOL: true },
  };
  const isBudget = (command: unknown) =>
    (command as { input?: { Key?: { sk?: { S?: string } } } }).input?.Key?.sk?.S === "budget";
  const restoreDynamo = answerAtOnce(DynamoDBClient, (command) => {
    if (isBudget(command))
      return command instanceof GetItemCommand ? { Item: budgetItem } : { Attributes: budgetItem };
    return command instanceof GetItemCommand ? { Item: tokenItem } : {};
  });
  const restoreSecrets = answerAtOnce(SecretsManagerClient, (command) => {
    if (!(command instanceof GetSecretValueCommand)) throw new Error("unexpected call");
    return { SecretString: secret, VersionId: "v1" };
  });
  const restoreEvents = answerAtOnce(EventBridgeClient, (command) => {
    if (!(command instanceof PutEventsCommand)) throw new Error("unexpected call");
    return { FailedEntryCount: 0, Entries: [{ EventId: "bench" }] };
  });
  const restoreSqs = answerAtOnce(SQSClient, (command) => {
    if (!(command instanceof SendMessageBatchCommand)) throw new Error("unexpected call");
    return allAccepted(command.input);
  });

  const context = lambdaContext("bench");
  const { handler: httpApi } = await import("../functions/http-api");
  const { handler: worker } = await import("../functions/sqs-worker");
  const { handler: sync } = await import("../functions/scheduled-sync");
  const { handler: refresh } = await import("../functions/scheduled-token-refresh");
  const invocations: Record<string, () => Promise<unknown>> = {
    "http-api": () =>
      httpApi(
        httpEvent({
          method: "POST",
          path: "/contacts/1/active",
          pathParameters: { contact_id: "1" },
        }),
        context,
      ),
    "sqs-worker": () => worker(sqsEvent([sqsRecord({ contact_id: "1" })]), context),
    "scheduled-sync": () =>
      sync(
        { source: { type: "inline", contacts: [{ contact_id: "1", status: "active" }] } },
        context,
      ),
    "scheduled-token-refresh": () => refresh({} as never, context),
  };
  const baseline = async () =>
    (
      await fetch(`${stub.url}/books/v3/contacts/1/active?organization_id=123456`, {
        method: "POST",
      })
    ).json();

  const write = process.stdout.write;
  const writeErr = process.stderr.write;
  const figures: Record<string, WarmFigure> = {};
  try {
    process.stdout.write = () => true;
    process.stderr.write = () => true;
    for (const [name, invoke] of Object.entries(invocations)) {
      for (let i = 0; i < 50; i++) {
        await baseline();
        await invoke();
      }
      const times: number[] = [];
      const ratios: number[] = [];
      for (let i = 0; i < iterations; i++) {
        const t0 = process.hrtime.bigint();
        await baseline();
        const t1 = process.hrtime.bigint();
        await invoke();
        const t2 = process.hrtime.bigint();
        times.push(Number(t2 - t1) / 1000);
        ratios.push(Number(t2 - t1) / Number(t1 - t0));
      }
      figures[name] = {
        median_us: Math.round(median(times)),
        ratio: Math.round(median(ratios) * 100) / 100,
      };
    }
  } finally {
    process.stdout.write = write;
    process.stderr.write = writeErr;
    restoreSecrets();
    restoreSqs();
    restoreEvents();
    restoreDynamo();
    stub.close();
  }
  return figures;
}
