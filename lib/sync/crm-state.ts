import { gunzipSync, gzipSync } from "node:zlib";
import {
  type AttributeValue,
  DeleteItemCommand,
  type DynamoDBClient,
  PutItemCommand,
  type WriteRequest,
} from "@aws-sdk/client-dynamodb";
import { ZOHO_ID_PATTERN } from "../ids";
import {
  batchWriteLedger,
  getLedgerItem,
  ledgerError,
  ledgerPrefixPages,
  num,
  str,
} from "../ledger/dynamo";
import { ledgerKeys, ledgerPrefixes } from "../ledger/keys";
import type { ContactStatus } from "../zoho/books-client";

/**
 * What a CRM sync keeps in the ledger between runs so that an hourly run need not list Books:
 * every contact's status as last seen (from the daily full listing, kept current by each run's
 * read of the contacts modified since), and the Zoho CRM integration's links learned one lookup
 * at a time when Books list rows do not carry them (docs/sync.md, "What a run costs").
 */

/** Every Books contact's status as a run saw it, and the time its reading started. */
export interface BooksStatuses {
  /** contacts modified before this are as below; a run reads the ones modified since */
  asOf: Date;
  statuses: Map<string, ContactStatus>;
}

/** The Books contacts one CRM record is linked to; none: looked up and linked to no contact. */
export interface CrmLink {
  contacts: string[];
  /** where the link was learned: a list row (no expiry) or a lookup (expires, learned again) */
  from: "rows" | "lookup";
}

/** The CRM sync's ledger items (lib/ledger/keys.ts `booksStatuses`, `crmLink`). */
export interface CrmLedger {
  /** DynamoDB requests made so far (for the run's summary and the bench) */
  readonly requests: number;
  booksStatuses(organizationId: string): Promise<BooksStatuses | undefined>;
  /** false when the statuses do not fit one item: the item is deleted, runs list Books instead */
  saveBooksStatuses(organizationId: string, statuses: BooksStatuses): Promise<boolean>;
  /** the live links of `module`, by CRM record id (one Query, a page per ~1 MB) */
  links(organizationId: string, module: string): Promise<Map<string, CrmLink>>;
  saveLinks(
    organizationId: string,
    module: string,
    changes: { put: ReadonlyMap<string, CrmLink>; remove: ReadonlyArray<string> },
  ): Promise<void>;
}

/**
 * DynamoDB's item limit is 400 KB (names and values together); the statuses item keeps under
 * it. Contact ids are digits, sorted and gzip'd: 8.5 bytes a contact with random 18-digit ids
 * (about 40,000 contacts fit), 5.8 with a shared prefix as Zoho's ids have (about 60,000).
 * Beyond, runs list Books as before.
 */
export const MAX_STATUSES_BYTES = 350_000;
/** A link learned by a lookup is looked up again after this long: Books may have relinked the contact. */
export const LINK_TTL_SECONDS = 90 * 86_400;
/** A record looked up and found linked to no contact is looked up again after this long. */
export const NO_LINK_TTL_SECONDS = 7 * 86_400;

const pack = (ids: string[]) => gzipSync(Buffer.from(ids.sort().join("\n")), { level: 9 });
const unpack = (value: AttributeValue | undefined): string[] => {
  if (!value?.B) return [];
  const text = gunzipSync(value.B).toString();
  return text === "" ? [] : text.split("\n");
};

export class DynamoCrmLedger implements CrmLedger {
  readonly #dynamo: DynamoDBClient;
  readonly #table: string;
  readonly #now: () => Date;
  #requests = 0;

  constructor(options: { dynamo: DynamoDBClient; table: string; now?: () => Date }) {
    this.#dynamo = options.dynamo;
    this.#table = options.table;
    this.#now = options.now ?? (() => new Date());
  }

  get requests(): number {
    return this.#requests;
  }

  async booksStatuses(organizationId: string): Promise<BooksStatuses | undefined> {
    this.#requests++;
    const item = await getLedgerItem(
      this.#dynamo,
      this.#table,
      ledgerKeys.booksStatuses(organizationId),
    );
    const asOf = str(item?.as_of);
    if (!item || asOf === undefined) return undefined;
    const statuses = new Map<string, ContactStatus>();
    for (const id of unpack(item.active)) statuses.set(id, "active");
    for (const id of unpack(item.inactive)) statuses.set(id, "inactive");
    // An item that does not read back whole is no snapshot: the run lists Books instead.
    if (statuses.size !== num(item.contacts)) return undefined;
    return { asOf: new Date(asOf), statuses };
  }

  async saveBooksStatuses(organizationId: string, { asOf, statuses }: BooksStatuses) {
    const ids = { active: [] as string[], inactive: [] as string[] };
    for (const [id, status] of statuses) if (ZOHO_ID_PATTERN.test(id)) ids[status].push(id);
    const active = pack(ids.active);
    const inactive = pack(ids.inactive);
    const key = ledgerKeys.booksStatuses(organizationId);
    this.#requests++;
    try {
      if (active.length + inactive.length > MAX_STATUSES_BYTES) {
        // an older, smaller snapshot must not be used for a Books that has outgrown it
        await this.#dynamo.send(new DeleteItemCommand({ TableName: this.#table, Key: key }));
        return false;
      }
      await this.#dynamo.send(
        new PutItemCommand({
          TableName: this.#table,
          Item: {
            ...key,
            as_of: { S: asOf.toISOString() },
            contacts: { N: String(ids.active.length + ids.inactive.length) },
            active: { B: active },
            inactive: { B: inactive },
            updated_at: { S: this.#now().toISOString() },
          },
        }),
      );
      return true;
    } catch (error) {
      throw ledgerError(error, this.#table);
    }
  }

  async links(organizationId: string, module: string): Promise<Map<string, CrmLink>> {
    const links = new Map<string, CrmLink>();
    const pages = ledgerPrefixPages(
      this.#dynamo,
      this.#table,
      ledgerPrefixes.crmLinks(organizationId, module),
      { now: this.#now() }, // an expired link is learned again, never used
    );
    for await (const page of pages) {
      this.#requests++;
      for (const { key, item } of page) {
        const contacts = str(item.contacts) ?? "";
        links.set(key, {
          contacts: contacts === "" ? [] : contacts.split(","),
          from: str(item.learned_from) === "rows" ? "rows" : "lookup",
        });
      }
    }
    return links;
  }

  async saveLinks(
    organizationId: string,
    module: string,
    changes: { put: ReadonlyMap<string, CrmLink>; remove: ReadonlyArray<string> },
  ): Promise<void> {
    const nowSeconds = Math.ceil(this.#now().getTime() / 1000);
    const requests: WriteRequest[] = [
      ...[...changes.put].map(([crmId, link]) => ({
        PutRequest: {
          Item: {
            ...ledgerKeys.crmLink(organizationId, module, crmId),
            contacts: { S: [...link.contacts].sort().join(",") },
            learned_from: { S: link.from },
            learned_at: { S: this.#now().toISOString() },
            // a link read off the rows is read again by every full run: it needs no expiry
            ...(link.from === "lookup"
              ? {
                  expires_at: {
                    N: String(
                      nowSeconds + (link.contacts.length ? LINK_TTL_SECONDS : NO_LINK_TTL_SECONDS),
                    ),
                  },
                }
              : {}),
          },
        },
      })),
      ...changes.remove.map((crmId) => ({
        DeleteRequest: { Key: ledgerKeys.crmLink(organizationId, module, crmId) },
      })),
    ];
    this.#requests += Math.ceil(requests.length / 25);
    await batchWriteLedger(this.#dynamo, this.#table, requests);
  }
}
