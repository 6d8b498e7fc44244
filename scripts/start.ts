/**
 * `npm start`: the whole system on this machine, offline, wired as serverless.yml wires it in
 * AWS. Ports come from the environment (HTTP_PORT, LAMBDA_PORT, SANDBOX_PORT, AWS_PORT) or the
 * defaults below. Ctrl-C stops everything.
 */

import { startLocalStack } from "../test/local-stack/stack";
import { SEED } from "../test/sandbox";

const port = (name: string, fallback: number) => Number(process.env[name] ?? fallback);

const stack = await startLocalStack({
  httpPort: port("HTTP_PORT", 3000),
  lambdaPort: port("LAMBDA_PORT", 3002),
  sandboxPort: port("SANDBOX_PORT", 4010),
  awsPort: port("AWS_PORT", 4566),
  log: process.env.VERBOSE ? (line) => console.log(`[offline] ${line}`) : undefined,
});

const { httpUrl } = stack;
console.log(`
Zoho contact status is running locally.

  HTTP API               ${httpUrl}
  Zoho Books sandbox     ${stack.sandbox.url}   (inspect: ${stack.sandbox.url}/__sandbox/stats)
  local AWS              ${stack.aws.url}   (Secrets Manager, SQS, DynamoDB, EventBridge; inspect: ${stack.aws.url}/__local/stats, events: ${stack.aws.url}/__local/events)
  secret                 ${stack.secretId}
  ledger table           ${stack.ledgerTable}   (inspect: ${stack.aws.url}/__local/tables/${stack.ledgerTable}/items)
  activation queue       ${stack.queueUrl}
  its dead-letter queue  ${stack.dlqUrl}
  bulk queue             ${stack.bulkQueueUrl}
  its dead-letter queue  ${stack.bulkDlqUrl}

Try it:

  curl -s -X POST ${httpUrl}/contacts/${SEED.inactiveId}/active
  curl -s -X POST ${httpUrl}/contacts/${SEED.activeId}/inactive
  curl -s -X POST ${httpUrl}/activations -H 'content-type: application/json' \\
    -d '{"items":[{"contact_id":"${SEED.inactiveIds[1]}"},{"email":"${SEED.inactiveEmail}"},{"contact_id":"${SEED.unknownId}"},{"contact_id":"not-an-id"}]}'

Queued jobs are carried out by the worker within a second or two; then:

  curl -s ${stack.sandbox.url}/__sandbox/contacts/${SEED.inactiveIds[1]}
  curl -s ${stack.aws.url}/__local/queues/activation-dlq/messages

Ctrl-C stops everything.
`);

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, async () => {
    if (stopping) return;
    stopping = true;
    console.log("\nStopping…");
    await stack.stop();
    process.exit(0);
  });
}
