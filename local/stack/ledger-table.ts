import {
  CreateTableCommand,
  DescribeTableCommand,
  type DynamoDBClient,
  ResourceInUseException,
  UpdateItemCommand,
  UpdateTimeToLiveCommand,
} from "@aws-sdk/client-dynamodb";
import { LEDGER_KEY, LEDGER_TABLE_DEFINITION, ledgerKeys } from "../../lib/ledger/keys";

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

/**
 * Stores an access token for a connection in the ledger, as the refresher keeps it (a negative
 * `expires_in`: one that has expired). Granted an hour ago, so a refusal of it is taken for an
 * expiry, not a missing scope.
 */
export async function storeLedgerToken(
  dynamodb: DynamoDBClient,
  table: string,
  secretId: string,
  token: { access_token: string; expires_in: number },
  apiDomain: string,
): Promise<void> {
  const now = Date.now();
  await dynamodb.send(
    new UpdateItemCommand({
      TableName: table,
      Key: ledgerKeys.token(secretId),
      UpdateExpression:
        "SET access_token = :t, api_domain = :d, token_expires_at = :e, granted_at = :g ADD token_version :one",
      ExpressionAttributeValues: {
        ":t": { S: token.access_token },
        ":d": { S: apiDomain },
        ":e": { N: String(now + token.expires_in * 1000) },
        ":g": { N: String(now - 3_600_000) },
        ":one": { N: "1" },
      },
    }),
  );
}
