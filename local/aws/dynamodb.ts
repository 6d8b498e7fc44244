import { once } from "node:events";
import type { IncomingMessage, ServerResponse } from "node:http";
import {
  type AttributeValue,
  DynamoDBClient,
  ResourceNotFoundException,
  ScanCommand,
} from "@aws-sdk/client-dynamodb";
import dynalite from "dynalite";

/** The `X-Amz-Target` prefix of every DynamoDB call (AWS JSON 1.0). */
export const DYNAMODB_TARGET = "DynamoDB_20120810.";

/**
 * DynamoDB, in memory, by dynalite: the real item, condition and update expression semantics
 * (ConditionalCheckFailedException, ValidationException with AWS's messages). Tables are
 * ACTIVE at once. Known gaps, all harmless here: dynalite never deletes items past their TTL
 * attribute and has no UpdateTimeToLive (AWS deletes expired items only eventually too, so
 * readers check `expires_at` themselves); no streams, transactions or PartiQL.
 */
export class DynamoDb {
  #listener = DynamoDb.#start();
  readonly #inspection: DynamoDBClient;

  /** `inspectionEndpoint`: where this endpoint's own client reaches it, for items() */
  constructor(inspectionEndpoint: string) {
    this.#inspection = new DynamoDBClient({
      endpoint: inspectionEndpoint,
      region: "us-east-1",
      credentials: { accessKeyId: "local", secretAccessKey: "local" },
    });
  }

  static #start(): (req: IncomingMessage, res: ServerResponse) => void {
    // dynalite is an http.Server we never listen with: only its request listener is used, so
    // DynamoDB shares the one loopback endpoint with Secrets Manager and SQS.
    const [listener] = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 }).listeners(
      "request",
    ) as ((req: IncomingMessage, res: ServerResponse) => void)[];
    if (!listener) throw new Error("dynalite has no request listener");
    return listener;
  }

  /** Answers one DynamoDB request (its body not yet read); settles once the answer is sent. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const closed = once(res, "close");
    this.#listener(req, res);
    await closed;
  }

  /** A table's items, every page of a Scan; undefined for an unknown table. */
  async items(tableName: string): Promise<Record<string, AttributeValue>[] | undefined> {
    const items: Record<string, AttributeValue>[] = [];
    let ExclusiveStartKey: Record<string, AttributeValue> | undefined;
    try {
      do {
        const page = await this.#inspection.send(
          new ScanCommand({ TableName: tableName, ExclusiveStartKey }),
        );
        items.push(...(page.Items ?? []));
        ExclusiveStartKey = page.LastEvaluatedKey;
      } while (ExclusiveStartKey);
    } catch (error) {
      // an unknown table, or a name no table can have
      if (error instanceof ResourceNotFoundException) return undefined;
      if (error instanceof Error && error.name === "ValidationException") return undefined;
      throw error;
    }
    return items;
  }

  /** Stops it: the in-memory store holds no handle, only the inspection client has sockets. */
  close(): void {
    this.#inspection.destroy();
  }

  /** Forgets every table: a new in-memory store (the old one is left to the garbage collector). */
  reset(): void {
    this.#listener = DynamoDb.#start();
  }
}
