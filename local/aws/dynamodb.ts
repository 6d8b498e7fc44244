import { once } from "node:events";
import type { IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";
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

  /**
   * Answers one DynamoDB request; settles once the answer is sent. `body`: the request's body,
   * already read (and perhaps rewritten), instead of the request's own. `onAnswer` sees the
   * status and body of the answer and may replace the body (its length and CRC32 follow).
   */
  async handle(
    req: IncomingMessage,
    res: ServerResponse,
    body?: string,
    onAnswer?: (status: number, body: string) => string,
  ): Promise<void> {
    const closed = once(res, "close");
    const end = res.end.bind(res) as (chunk?: unknown) => ServerResponse;
    const send = (original: string, answer: string) => {
      if (answer !== original) {
        // the SDK checks the body against dynalite's x-amz-crc32
        res.setHeader("Content-Length", Buffer.byteLength(answer));
        res.setHeader("x-amz-crc32", crc32(answer));
      }
      return end(answer);
    };
    res.end = ((chunk?: unknown) => {
      if (typeof chunk !== "string") return end(chunk);
      const answer = onAnswer ? onAnswer(res.statusCode, chunk) : chunk;
      const failedKey = this.#conditionFailureToAnswer(req, res.statusCode, answer, body);
      if (!failedKey) return send(chunk, answer);
      void this.#inspection
        .send(new GetItemCommand({ ...failedKey, ConsistentRead: true }))
        .then(({ Item }) =>
          send(chunk, JSON.stringify({ ...parseJson(answer), ...(Item ? { Item } : {}) })),
        )
        .catch(() => send(chunk, answer));
      return res;
    }) as typeof res.end;
    const request =
      body === undefined
        ? req
        : // dynalite reads only these of a request, and its data and end events
          (Object.assign(Readable.from(body === "" ? [] : [Buffer.from(body)]), {
            headers: { ...req.headers, "content-length": String(Buffer.byteLength(body)) },
            method: req.method,
            url: req.url,
          }) as unknown as IncomingMessage);
    this.#listener(request, res);
    await closed;
  }

  /**
   * `ReturnValuesOnConditionCheckFailure: "ALL_OLD"` on UpdateItem and DeleteItem, which dynalite
   * lacks: a ConditionalCheckFailedException carries the item as `Item`, as DynamoDB's does
   * (API reference, UpdateItem). The item is read just after the failure, not with it: a write
   * in between is the one difference, and callers must treat the item as a view anyway. Returns
   * the table and key to read when the answer is such a failure and the request asked for it.
   */
  #conditionFailureToAnswer(req: IncomingMessage, status: number, answer: string, body?: string) {
    const target = String(req.headers["x-amz-target"] ?? "");
    if (status !== 400 || !/\.(UpdateItem|DeleteItem)$/.test(target)) return undefined;
    if (!answer.includes("ConditionalCheckFailed")) return undefined;
    const request = parseJson(body ?? "");
    if (request?.ReturnValuesOnConditionCheckFailure !== "ALL_OLD") return undefined;
    return {
      TableName: request.TableName as string,
      Key: request.Key as Record<string, AttributeValue>,
    };
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
