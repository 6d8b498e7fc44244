import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { SQSClient } from "@aws-sdk/client-sqs";
import { lazySqsClient } from "./aws/lazy-sqs";
import { type Config, readConfig } from "./config";
import { JobRecords } from "./jobs/records";

/** What every handler needs, none of it the Zoho path: the configuration, the AWS clients, the job records. */
export interface BaseDependencies {
  config: Config;
  sqs: SQSClient;
  dynamo: DynamoDBClient;
  records: JobRecords;
}

/**
 * Builds the dependencies that call no Zoho API: the HTTP API's routes that only read the ledger
 * or queue (`GET /activations/{job_id}`, `POST /activations`, webhooks, `GET /health`) need no
 * more, so its bundle keeps the token store, budget and Books client in a chunk of their own
 * (lib/zoho-path.ts; docs/performance.md, "Cold start"). The AWS SDK clients read their own
 * variables (`AWS_REGION`, `AWS_ENDPOINT_URL…`), which is how the service runs locally.
 */
export function createBaseDependencies(config: Config = readConfig()): BaseDependencies {
  const dynamo = new DynamoDBClient({});
  return {
    config,
    sqs: lazySqsClient(),
    dynamo,
    records: new JobRecords({
      dynamo,
      table: config.ZOHO_LEDGER_TABLE,
      retentionDays: config.JOB_RETENTION_DAYS,
    }),
  };
}
