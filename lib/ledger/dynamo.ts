import { type AttributeValue, type DynamoDBClient, GetItemCommand } from "@aws-sdk/client-dynamodb";
import { ServiceError } from "../errors";

/** A conditional write that lost: someone else got there first, or the budget is used up. */
export function isConditionFailed(error: unknown): boolean {
  return (error as Error)?.name === "ConditionalCheckFailedException";
}

/** The ledger table could not be used: a configuration or availability problem, retried. */
export function ledgerError(error: unknown, table: string): ServiceError {
  if (error instanceof ServiceError) return error;
  const name = (error as Error)?.name ?? "Error";
  return new ServiceError(
    "CONFIGURATION_ERROR",
    `Could not use the ledger table ${table} in DynamoDB (${name}).`,
    { cause: error },
  );
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
