import {
  type AttributeValue,
  BatchWriteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  QueryCommand,
  type WriteRequest,
} from "@aws-sdk/client-dynamodb";
import { awsError, type ServiceError } from "../errors";
import { keyInPrefix, type LedgerPrefix, ledgerPrefixQuery } from "./keys";

/** A conditional write that lost: someone else got there first, or the budget is used up. */
export function isConditionFailed(error: unknown): boolean {
  return (error as Error)?.name === "ConditionalCheckFailedException";
}

/** The ledger table could not be used: throttled or down (AWS_UNAVAILABLE), or missing or refused. */
export function ledgerError(error: unknown, table: string): ServiceError {
  return awsError(error, `use the ledger table ${table} in DynamoDB`);
}

/** A number attribute, 0 when absent. */
export function num(value: AttributeValue | undefined): number {
  return value?.N === undefined ? 0 : Number(value.N);
}

/** A string attribute, undefined when absent. */
export function str(value: AttributeValue | undefined): string | undefined {
  return value?.S;
}

/** One ledger item, read consistently (another container's write is seen at once); undefined if absent. */
export async function getLedgerItem(
  dynamo: DynamoDBClient,
  table: string,
  key: Record<string, AttributeValue>,
): Promise<Record<string, AttributeValue> | undefined> {
  try {
    const { Item } = await dynamo.send(
      new GetItemCommand({ TableName: table, Key: key, ConsistentRead: true }),
    );
    return Item;
  } catch (error) {
    throw ledgerError(error, table);
  }
}

/**
 * The live items of a ledger prefix, a Query page (up to 1 MB) at a time, each with what its sort
 * key holds after the prefix. An item past its `expires_at` is left out: TTL deletes late.
 */
export async function* ledgerPrefixPages(
  dynamo: DynamoDBClient,
  table: string,
  prefix: LedgerPrefix,
  options: { now: Date; projection?: string },
): AsyncGenerator<Array<{ key: string; item: Record<string, AttributeValue> }>> {
  const nowSeconds = options.now.getTime() / 1000;
  let start: Record<string, AttributeValue> | undefined;
  do {
    let output: { Items?: Record<string, AttributeValue>[]; LastEvaluatedKey?: typeof start };
    try {
      output = await dynamo.send(
        new QueryCommand({
          TableName: table,
          ...ledgerPrefixQuery(prefix),
          ...(options.projection ? { ProjectionExpression: options.projection } : {}),
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
    } catch (error) {
      throw ledgerError(error, table);
    }
    yield (output.Items ?? []).flatMap((item) => {
      const key = keyInPrefix(item, prefix);
      const expires = num(item.expires_at);
      return key === undefined || (expires > 0 && expires <= nowSeconds) ? [] : [{ key, item }];
    });
    start = output.LastEvaluatedKey;
  } while (start);
}

/** DynamoDB takes at most 25 writes per BatchWriteItem. */
const BATCH_WRITE_SIZE = 25;

/**
 * Puts and deletes ledger items, 25 a BatchWriteItem, sending again what DynamoDB leaves
 * unprocessed (5 rounds, backing off); what is still unprocessed then is a ledger error.
 */
export async function batchWriteLedger(
  dynamo: DynamoDBClient,
  table: string,
  requests: ReadonlyArray<WriteRequest>,
): Promise<void> {
  try {
    for (let i = 0; i < requests.length; i += BATCH_WRITE_SIZE) {
      let batch = requests.slice(i, i + BATCH_WRITE_SIZE);
      for (let round = 0; batch.length > 0; round++) {
        if (round === 5) throw new Error(`${batch.length} writes left unprocessed`);
        if (round > 0) await new Promise((resolve) => setTimeout(resolve, 50 * 2 ** round));
        const output = await dynamo.send(
          new BatchWriteItemCommand({ RequestItems: { [table]: batch } }),
        );
        batch = output.UnprocessedItems?.[table] ?? [];
      }
    }
  } catch (error) {
    throw ledgerError(error, table);
  }
}
