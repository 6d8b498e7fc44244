/**
 * `npm start`: the whole system on this machine, offline, wired as serverless.yml wires it in
 * AWS, with the local Zoho CRM (in the sandbox) and HubSpot for the sync's CRM sources. Ports come
 * from the environment (HTTP_PORT, LAMBDA_PORT, SANDBOX_PORT, AWS_PORT, HUBSPOT_PORT) or the
 * defaults below. Ctrl-C stops everything.
 */

import { SEED } from "../local/sandbox";
import { crmAccountId } from "../local/sandbox/crm/seed";
import { DEMO_HUBSPOT_SOURCE, DEMO_ZOHO_CRM_SOURCE } from "../local/stack/crm-demo";
import { type LocalStack, PortTakenError, startLocalStack } from "../local/stack/stack";

/** each port: the variable that moves it, and its default */
const PORTS = {
  httpPort: ["HTTP_PORT", 3000],
  lambdaPort: ["LAMBDA_PORT", 3002],
  sandboxPort: ["SANDBOX_PORT", 4010],
  awsPort: ["AWS_PORT", 4566],
  hubspotPort: ["HUBSPOT_PORT", 4020],
} as const;
type PortOption = keyof typeof PORTS;

const ports = {} as Record<PortOption, number>;
for (const [option, [variable, fallback]] of Object.entries(PORTS) as [
  PortOption,
  (typeof PORTS)[PortOption],
][]) {
  const value = Number(process.env[variable] ?? fallback);
  if (!Number.isInteger(value) || value < 0 || value > 65_535) {
    console.error(
      `npm start: ${variable} must be a port number (0 for any free one, up to 65535), not ${process.env[variable]}`,
    );
    process.exit(2);
  }
  ports[option] = value;
}

let stack: LocalStack;
try {
  stack = await startLocalStack({
    ...ports,
    crm: true,
    log: process.env.VERBOSE ? (line) => console.log(`[offline] ${line}`) : undefined,
  });
} catch (error) {
  // a port taken before the start (PortTakenError), or in the moment between check and use
  const { port, code } = error as { port?: number; code?: string };
  const taken =
    error instanceof PortTakenError
      ? (error.option as PortOption)
      : code === "EADDRINUSE"
        ? (Object.keys(ports) as PortOption[]).find((option) => ports[option] === port)
        : undefined;
  console.error(
    taken === undefined
      ? `npm start: ${(error as Error).message}`
      : `npm start: port ${ports[taken]} is taken (another npm start?); free it, or move it: ${PORTS[taken][0]}=<free port> npm start`,
  );
  process.exit(1);
}

const { httpUrl, lambdaUrl } = stack;
const crmRecords = `${stack.sandbox.url}/__sandbox/crm/Accounts`;
const invokeSync = `${lambdaUrl}/2015-03-31/functions/zoho-contact-status-local-scheduledSync/invocations`;
const crmInput = JSON.stringify({ mode: "full", dry_run: true, source: DEMO_ZOHO_CRM_SOURCE });
const watchInput = JSON.stringify({ mode: "watch", source: DEMO_ZOHO_CRM_SOURCE });
const hubspotInput = JSON.stringify({ mode: "full", dry_run: true, source: DEMO_HUBSPOT_SOURCE });
console.log(`
Zoho contact status is running locally.

  HTTP API               ${httpUrl}
  Zoho Books sandbox     ${stack.sandbox.url}   (inspect: ${stack.sandbox.url}/__sandbox/stats)
  its Zoho CRM           ${stack.sandbox.url}/crm/v8   (records: ${stack.sandbox.url}/__sandbox/crm/Accounts, notification channels: ${stack.sandbox.url}/__sandbox/crm/channels)
  HubSpot sandbox        ${stack.hubspot?.url}   (secret ${stack.hubspotSecretId})
  local AWS              ${stack.aws.url}   (Secrets Manager, SQS, DynamoDB, EventBridge; inspect: ${stack.aws.url}/__local/stats, events: ${stack.aws.url}/__local/events)
  secret                 ${stack.secretId}
  webhook secret         ${stack.webhookSecretId}   (source "local", token ${stack.webhookToken})
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

A CRM's webhook (Zoho CRM's form-encoded shape), then its job's status and the contact's history:

  curl -s -X POST "${httpUrl}/webhooks/local?token=${stack.webhookToken}" \\
    -H 'content-type: application/x-www-form-urlencoded' -d 'contact_id=${SEED.inactiveIds[2]}&status=active&event_id=demo-1'
  curl -s ${httpUrl}/activations/<job_id>
  curl -s ${httpUrl}/contacts/${SEED.inactiveIds[2]}/history
  curl -s ${stack.aws.url}/__local/events

The sync reading the CRM itself (docs/sync.md). CRM account 4 becomes a customer again (its Books
contact ${SEED.inactiveId} is inactive); a dry run says what a run would do and why (the rule, the
CRM record, the value); the HubSpot source reads the local HubSpot the same way:

  curl -s -X PATCH ${crmRecords}/${crmAccountId(4)} -H 'content-type: application/json' -d '{"Account_Type":"Customer"}'
  curl -s -X POST ${invokeSync} -d '${crmInput}'
  curl -s -X POST ${invokeSync} -d '${hubspotInput}'

Zoho CRM's change notifications: a watch run enables the channel; the next edit reaches the HTTP
API at once and queues a real-time job (then see the contact, as below):

  curl -s -X POST ${invokeSync} -d '${watchInput}'
  curl -s -X PATCH ${crmRecords}/${crmAccountId(8)} -H 'content-type: application/json' -d '{"Account_Type":"Customer"}'
  curl -s ${stack.sandbox.url}/__sandbox/crm/deliveries

Queued jobs are carried out by the worker within a second or two; then:

  curl -s ${stack.sandbox.url}/__sandbox/contacts/${SEED.inactiveIds[1]}
  curl -s ${stack.aws.url}/__local/queues/activation-dlq/messages

Parked jobs, and moving them back (npm run redrive -- --help):

  export ACTIVATION_QUEUE_URL=${stack.queueUrl} ACTIVATION_DLQ_URL=${stack.dlqUrl}
  export BULK_QUEUE_URL=${stack.bulkQueueUrl} BULK_DLQ_URL=${stack.bulkDlqUrl}
  npm run redrive -- list

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
