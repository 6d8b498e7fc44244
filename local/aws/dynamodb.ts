import { once } from "node:events";
import type { IncomingMessage, ServerResponse } from "node:http";
import { crc32 } from "node:zlib";
import {
  type AttributeValue,
  DynamoDBClient,
  GetItemCommand,
  ResourceNotFoundException,
  ScanCommand,
} from "@aws-sdk/client-dynamodb";
import dynalite from "dynalite";

function parseJson(text: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

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
    this.#returnItemOnConditionFailure(req, res);
    this.#listener(req, res);
    await closed;
  }

  /**
   * `ReturnValuesOnConditionCheckFailure: "ALL_OLD"` on UpdateItem and DeleteItem, which dynalite
   * lacks: a ConditionalCheckFailedException carries the item as `Item`, as DynamoDB's does
   * (API reference, UpdateItem). The item is read just after the failure, not with it: a write
   * in between is the one difference, and callers must treat the item as a view anyway.
   */
  #returnItemOnConditionFailure(req: IncomingMessage, res: ServerResponse): void {
    const target = String(req.headers["x-amz-target"] ?? "");
    if (!/\.(UpdateItem|DeleteItem)$/.test(target)) return;
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk)); // beside dynalite's own reader
    const end = res.end.bind(res) as (body?: string) => ServerResponse;
    res.end = ((body?: string) => {
      const request = parseJson(Buffer.concat(chunks).toString("utf8"));
      const failed = res.statusCode === 400 && String(body).includes("ConditionalCheckFailed");
      if (!failed || request?.ReturnValuesOnConditionCheckFailure !== "ALL_OLD") return end(body);
      void this.#inspection
        .send(
          new GetItemCommand({
            TableName: request.TableName as string,
            Key: request.Key as Record<string, AttributeValue>,
            ConsistentRead: true,
          }),
        )
        .then(({ Item }) => {
          const answer = JSON.stringify({ ...parseJson(String(body)), ...(Item ? { Item } : {}) });
          res.setHeader("x-amz-crc32", crc32(answer));
          res.setHeader("Content-Length", Buffer.byteLength(answer));
          end(answer);
        })
        .catch(() => end(body));
      return res;
    }) as typeof res.end;
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
