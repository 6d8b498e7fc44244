import { type DynamoDBClient, PutItemCommand, type WriteRequest } from "@aws-sdk/client-dynamodb";
import type { Hold } from "../activation";
import {
  batchWriteLedger,
  getLedgerItem,
  ledgerError,
  ledgerPrefixPages,
  str,
} from "../ledger/dynamo";
import { ledgerKeys, ledgerPrefixes } from "../ledger/keys";

/** What the last successful run of an organization's sync left for the next one. */
export interface SyncState {
  /** when that run started listing Books: the next run asks for contacts modified since */
  listedAt: Date;
  /** the digest of its desired state and options: the same digest means the same wishes */
  digest: string;
}

/** The sync's items in the ledger (lib/ledger/keys.ts): its watermark and the pending jobs. */
export interface SyncLedger {
  state(organizationId: string): Promise<SyncState | undefined>;
  saveState(organizationId: string, state: SyncState): Promise<void>;
  /** contact ids with a sync job queued and not ended (nor expired) */
  /** the contacts with a sync job waiting, or held lately (with what held it) */
  pendingContacts(organizationId: string): Promise<Map<string, PendingJob>>;
  markPending(
    organizationId: string,
    jobs: ReadonlyArray<{ contact_id: string; job_id: string; action: string }>,
  ): Promise<void>;
  /** deletes the pending items of contacts whose jobs could not be queued after all */
  unmarkPending(organizationId: string, contactIds: ReadonlyArray<string>): Promise<void>;
}

/** A contact's pending item: a job waiting, or (`held`) one the guard held lately. */
export interface PendingJob {
  held?: Hold;
}

/**
 * A pending item outlives its job by at most this long: the bulk queue keeps a message 4 days. A
 * job that never ended (its message expired) stops holding its contact back then; one that waits
 * longer for the quota may be queued twice, which is harmless (jobs are idempotent).
 */
export const PENDING_TTL_SECONDS = 4 * 86_400;

/**
 * The sync's ledger items. Pending jobs are one item per contact in the organization's own
 * partition (`ledgerKeys.pendingJob`), so a run reads them all with one Query (a page per ~1 MB,
 * thousands of items) instead of a read per planned change or a scan of the job records (one
 * partition each, which no query can gather by contact).
 */
export class DynamoSyncLedger implements SyncLedger {
  readonly #dynamo: DynamoDBClient;
  readonly #table: string;
  readonly #now: () => Date;

  constructor(options: { dynamo: DynamoDBClient; table: string; now?: () => Date }) {
    this.#dynamo = options.dynamo;
    this.#table = options.table;
    this.#now = options.now ?? (() => new Date());
  }

  async state(organizationId: string): Promise<SyncState | undefined> {
    const item = await getLedgerItem(
      this.#dynamo,
      this.#table,
      ledgerKeys.syncState(organizationId),
    );
    const listedAt = str(item?.listed_at);
    const digest = str(item?.digest);
    if (listedAt === undefined || digest === undefined) return undefined;
    return { listedAt: new Date(listedAt), digest };
  }

  async saveState(organizationId: string, state: SyncState): Promise<void> {
    try {
      await this.#dynamo.send(
        new PutItemCommand({
          TableName: this.#table,
          Item: {
            ...ledgerKeys.syncState(organizationId),
            listed_at: { S: state.listedAt.toISOString() },
            digest: { S: state.digest },
            updated_at: { S: this.#now().toISOString() },
          },
        }),
      );
    } catch (error) {
      throw ledgerError(error, this.#table);
    }
  }

  async pendingContacts(organizationId: string): Promise<Map<string, PendingJob>> {
    const contacts = new Map<string, PendingJob>();
    const pages = ledgerPrefixPages(
      this.#dynamo,
      this.#table,
      ledgerPrefixes.pendingJobs(organizationId),
      { now: this.#now(), projection: "#pk, #sk, expires_at, held" },
    );
    for await (const page of pages) {
      for (const { key, item } of page) {
        const held = item.held?.S;
        contacts.set(key, held ? { held: JSON.parse(held) } : {});
      }
    }
    return contacts;
  }

  async markPending(
    organizationId: string,
    jobs: ReadonlyArray<{ contact_id: string; job_id: string; action: string }>,
  ): Promise<void> {
    const now = this.#now();
    const expires = String(Math.ceil(now.getTime() / 1000) + PENDING_TTL_SECONDS);
    const requests: WriteRequest[] = jobs.map((job) => ({
      PutRequest: {
        Item: {
          ...ledgerKeys.pendingJob(organizationId, job.contact_id),
          job_id: { S: job.job_id },
          action: { S: job.action },
          queued_at: { S: now.toISOString() },
          expires_at: { N: expires },
        },
      },
    }));
    await batchWriteLedger(this.#dynamo, this.#table, requests);
  }

  async unmarkPending(organizationId: string, contactIds: ReadonlyArray<string>): Promise<void> {
    await batchWriteLedger(
      this.#dynamo,
      this.#table,
      contactIds.map((contactId) => ({
        DeleteRequest: { Key: ledgerKeys.pendingJob(organizationId, contactId) },
      })),
    );
  }
}
