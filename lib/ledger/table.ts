import type { AttributeValue, CreateTableCommandInput } from "@aws-sdk/client-dynamodb";

/**
 * The ledger: one DynamoDB table (`ZOHO_LEDGER_TABLE`) that every Zoho call of every function
 * goes through. Items are keyed so that many organizations and many Zoho connections fit in it
 * without a migration:
 *
 * | pk                      | sk                 | what                                              |
 * | ----------------------- | ------------------ | ------------------------------------------------- |
 * | `connection#<secretId>` | `token`            | the shared access token, its grant lease, back-off |
 * | `org#<organization_id>` | `minute#<epochMin>`| Zoho calls taken in that calendar minute          |
 * | `org#<organization_id>` | `daily`            | the daily quota as Zoho last reported it          |
 * | `org#<organization_id>` | `lease#<slot>`     | one call in progress (concurrency), with expiry   |
 * | `org#<organization_id>` | `sync`             | the scheduled sync's watermark and source digest  |
 * | `org#<organization_id>` | `pending#<contact>`| a sync job queued for the contact, not yet ended  |
 *
 * `expires_at` (epoch seconds) is the table's TTL attribute. DynamoDB deletes expired items
 * only eventually (often hours late), so every reader checks expiry itself and never relies on
 * an item being gone.
 */
export const LEDGER_KEY = {
  partition: "pk",
  sort: "sk",
  ttl: "expires_at",
} as const;

/** The table as `serverless.yml` declares it and the local stack creates it. */
export const LEDGER_TABLE_DEFINITION: Omit<CreateTableCommandInput, "TableName"> = {
  AttributeDefinitions: [
    { AttributeName: LEDGER_KEY.partition, AttributeType: "S" },
    { AttributeName: LEDGER_KEY.sort, AttributeType: "S" },
  ],
  KeySchema: [
    { AttributeName: LEDGER_KEY.partition, KeyType: "HASH" },
    { AttributeName: LEDGER_KEY.sort, KeyType: "RANGE" },
  ],
  BillingMode: "PAY_PER_REQUEST",
};

/** The scheduled sync's state for an organization (lib/sync/state.ts). */
export function syncStateKey(organizationId: string): Record<string, AttributeValue> {
  return {
    [LEDGER_KEY.partition]: { S: `org#${organizationId}` },
    [LEDGER_KEY.sort]: { S: "sync" },
  };
}

/** The sort key prefix of the sync's pending-job items in an organization's partition. */
export const PENDING_PREFIX = "pending#";

/** A contact's pending sync job: written when the sync queues it, deleted when the job ends. */
export function pendingJobKey(
  organizationId: string,
  contactId: string,
): Record<string, AttributeValue> {
  return {
    [LEDGER_KEY.partition]: { S: `org#${organizationId}` },
    [LEDGER_KEY.sort]: { S: `${PENDING_PREFIX}${contactId}` },
  };
}
