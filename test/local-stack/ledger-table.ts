import {
  CreateTableCommand,
  DescribeTableCommand,
  type DynamoDBClient,
  ResourceInUseException,
  UpdateTimeToLiveCommand,
} from "@aws-sdk/client-dynamodb";
import { LEDGER_KEY, LEDGER_TABLE_DEFINITION } from "../../lib/ledger/table";

/** The ledger table's name in the local stack (serverless.yml: `<service>-<stage>-ledger`). */
export const LOCAL_LEDGER_TABLE = "zoho-contact-status-local-ledger";

/**
 * The ledger table as serverless.yml declares it, on whatever DynamoDB endpoint `dynamodb`
 * points at (the local endpoint, LocalStack, AWS); an existing table of that name is kept.
 * Resolves once the table is ACTIVE.
 */
export async function createLedgerTable(
  dynamodb: DynamoDBClient,
  tableName = LOCAL_LEDGER_TABLE,
): Promise<string> {
  try {
    await dynamodb.send(
      new CreateTableCommand({ TableName: tableName, ...LEDGER_TABLE_DEFINITION }),
    );
  } catch (error) {
    if (!(error instanceof ResourceInUseException)) throw error;
  }
  for (let attempt = 0; ; attempt++) {
    const { Table } = await dynamodb.send(new DescribeTableCommand({ TableName: tableName }));
    if (Table?.TableStatus === "ACTIVE") break;
    if (attempt === 100) throw new Error(`table ${tableName} is still ${Table?.TableStatus}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  try {
    await dynamodb.send(
      new UpdateTimeToLiveCommand({
        TableName: tableName,
        TimeToLiveSpecification: { AttributeName: LEDGER_KEY.ttl, Enabled: true },
      }),
    );
  } catch (error) {
    // dynalite has no TTL at all; AWS refuses to enable it twice. Neither matters: readers
    // check `expires_at` themselves, since AWS deletes expired items only eventually.
    const { name, message } = error instanceof Error ? error : { name: "", message: "" };
    const already = name === "ValidationException" && /already enabled/i.test(message);
    if (name !== "UnknownOperationException" && !already) throw error;
  }
  return tableName;
}
