import type { AttributeValue, CreateTableCommandInput } from "@aws-sdk/client-dynamodb";

/**
 * The ledger's layout, owned here and nowhere else: one DynamoDB table (`ZOHO_LEDGER_TABLE`)
 * that every Zoho call of every function goes through, and the key of every kind of item in it.
 * Other modules build keys with {@link ledgerKeys} and query a partition with
 * {@link ledgerPrefixQuery}; none spells a key. Items are keyed so that many organizations and
 * many Zoho connections fit in one table without a migration:
 *
 * | pk                         | sk                    | what                                          | written by |
 * | -------------------------- | --------------------- | --------------------------------------------- | ---------- |
 * | `connection#<secretId>`    | `token`               | the shared access token, grant lease, back-off | credentials/token-store |
 * | `org#<organization_id>`    | `budget`              | Zoho's budget: the calls of the sliding minute, the calls in progress, the daily quota, the lanes' demand | ledger/budget |
 * | `org#<organization_id>`    | `sync`                | the scheduled sync's watermark and digest      | sync/state |
 * | `org#<organization_id>`    | `crm-watch`           | the Zoho CRM notification channel: its id, expiry, token digests and the source it serves | crm/watch |
 * | `org#<organization_id>`    | `pending#<contact>`   | a sync job queued for the contact, not ended   | sync/state, jobs/records |
 * | `org#<organization_id>`    | `books-statuses`      | every Books contact's status as a CRM sync last saw it (gzip'd id lists), and since when | sync/crm-state |
 * | `org#<organization_id>#zcrm` | `<module>#<crm_id>` | the Books contacts a Zoho CRM record is linked to (the integration's link), as learned | sync/crm-state |
 * | `job#<job_id>`             | `job`                 | a job's record: state, attempts, outcome       | jobs/records |
 * | `contact#<org>#<contact>`  | `change#<at>#<job_id>`| one status change of the contact (history)     | jobs/records |
 * | `webhook#<source>`         | `event#<event_id>`    | a webhook event already turned into a job      | jobs/records |
 * | `webhook#<source>`         | `signature#<sha256>#<index>` | the event at `index` of a signed delivery with no event id, until its signature's window closes | jobs/records |
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

export type LedgerKey = Record<string, AttributeValue>;

const key = (partition: string, sort: string): LedgerKey => ({
  [LEDGER_KEY.partition]: { S: partition },
  [LEDGER_KEY.sort]: { S: sort },
});
const organization = (organizationId: string) => `org#${organizationId}`;
const contactHistory = (organizationId: string, contactId: string) =>
  `contact#${organizationId}#${contactId}`;
const PENDING = "pending#";
const crmLinks = (organizationId: string) => `${organization(organizationId)}#zcrm`;
const CHANGE = "change#";

/** The key of each kind of ledger item (the table above). */
export const ledgerKeys = {
  token: (secretId: string) => key(`connection#${secretId}`, "token"),
  budget: (organizationId: string) => key(organization(organizationId), "budget"),
  syncState: (organizationId: string) => key(organization(organizationId), "sync"),
  /** the organization's Zoho CRM notification channel (one per organization) */
  crmWatch: (organizationId: string) => key(organization(organizationId), "crm-watch"),
  /** written when the sync queues a job for the contact, deleted when the job ends */
  pendingJob: (organizationId: string, contactId: string) =>
    key(organization(organizationId), `${PENDING}${contactId}`),
  /** the Books statuses a CRM sync's incremental run starts from (sync/crm-state) */
  booksStatuses: (organizationId: string) => key(organization(organizationId), "books-statuses"),
  /** the Books contacts linked to one Zoho CRM record (`module` Accounts or Contacts) */
  crmLink: (organizationId: string, module: string, crmId: string) =>
    key(crmLinks(organizationId), `${module}#${crmId}`),
  job: (jobId: string) => key(`job#${jobId}`, "job"),
  change: (organizationId: string, contactId: string, at: string, jobId: string) =>
    key(contactHistory(organizationId, contactId), `${CHANGE}${at}#${jobId}`),
  webhookEvent: (source: string, eventId: string) => key(`webhook#${source}`, `event#${eventId}`),
  /** `digest` is the SHA-256 (hex) of the signature, never the signature itself */
  webhookSignature: (source: string, digest: string, index: number) =>
    key(`webhook#${source}`, `signature#${digest}#${index}`),
};

/** The items of one partition whose sort key starts alike: what a Query reads together. */
export interface LedgerPrefix {
  partition: string;
  sortPrefix: string;
}

/** The partitions the service queries (the rest it reads by key). */
export const ledgerPrefixes = {
  pendingJobs: (organizationId: string): LedgerPrefix => ({
    partition: organization(organizationId),
    sortPrefix: PENDING,
  }),
  crmLinks: (organizationId: string, module: string): LedgerPrefix => ({
    partition: crmLinks(organizationId),
    sortPrefix: `${module}#`,
  }),
  history: (organizationId: string, contactId: string): LedgerPrefix => ({
    partition: contactHistory(organizationId, contactId),
    sortPrefix: CHANGE,
  }),
};

/** A Query's key condition for the items of `prefix`. */
export function ledgerPrefixQuery(prefix: LedgerPrefix) {
  return {
    KeyConditionExpression: "#pk = :pk AND begins_with(#sk, :prefix)",
    ExpressionAttributeNames: { "#pk": LEDGER_KEY.partition, "#sk": LEDGER_KEY.sort },
    ExpressionAttributeValues: {
      ":pk": { S: prefix.partition },
      ":prefix": { S: prefix.sortPrefix },
    } as Record<string, AttributeValue>,
  };
}

/** Whether a key read back (a page cursor) is one of `prefix`'s items; what follows the prefix. */
export function keyInPrefix(item: LedgerKey, prefix: LedgerPrefix): string | undefined {
  const sort = item[LEDGER_KEY.sort]?.S;
  if (item[LEDGER_KEY.partition]?.S !== prefix.partition || !sort?.startsWith(prefix.sortPrefix))
    return undefined;
  return sort.slice(prefix.sortPrefix.length);
}
