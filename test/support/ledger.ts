import type { AddressInfo } from "node:net";
import {
  type AttributeValue,
  DeleteItemCommand,
  DynamoDBClient,
  GetItemCommand,
  ScanCommand,
} from "@aws-sdk/client-dynamodb";
import type { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import dynalite from "dynalite";
import { vi } from "vitest";
import { TokenStore } from "../../lib/credentials/token-store";
import { LEDGER_KEY, ledgerKeys } from "../../lib/ledger/keys";
import { createLedgerTable, storeLedgerToken } from "../../local/stack/ledger-table";

export const LEDGER_TABLE = "zoho-contact-status-test-ledger";

/**
 * The ledger table on an in-memory DynamoDB (dynalite), reached by the unmodified SDK client.
 * `stubEnv()` points the functions at it (`ZOHO_LEDGER_TABLE`, `AWS_ENDPOINT_URL_DYNAMODB`).
 */
export async function startLedger() {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  server.keepAliveTimeout = 10 * 60_000; // as the local AWS endpoint: no idle-close race
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const dynamo = new DynamoDBClient({
    endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
  });
  await createLedgerTable(dynamo, LEDGER_TABLE);
  return {
    endpoint,
    ...ledgerOn(dynamo, LEDGER_TABLE),
    /** the environment the functions read, as the deployed stack sets it */
    stubEnv() {
      vi.stubEnv("ZOHO_LEDGER_TABLE", LEDGER_TABLE);
      vi.stubEnv("AWS_ENDPOINT_URL_DYNAMODB", endpoint);
      vi.stubEnv("AWS_REGION", "us-east-1");
      vi.stubEnv("AWS_ACCESS_KEY_ID", "local");
      vi.stubEnv("AWS_SECRET_ACCESS_KEY", "local");
    },
    async close() {
      dynamo.destroy();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections(); // the functions' clients too, kept alive
      await closed;
    },
  };
}

export type Ledger = Awaited<ReturnType<typeof startLedger>>;

/**
 * The ledger's test helpers on any DynamoDB endpoint that has the table (dynalite here, the
 * local AWS endpoint, the local stack).
 */
export function ledgerOn(dynamo: DynamoDBClient, table: string) {
  return {
    table,
    dynamo,
    /** an empty table again (items deleted: the table itself stays, as the functions know it) */
    async reset() {
      for (;;) {
        const { Items = [] } = await dynamo.send(new ScanCommand({ TableName: table }));
        if (Items.length === 0) return;
        await Promise.all(
          Items.map((item) =>
            dynamo.send(
              new DeleteItemCommand({
                TableName: table,
                Key: {
                  [LEDGER_KEY.partition]: item[LEDGER_KEY.partition] as AttributeValue,
                  [LEDGER_KEY.sort]: item[LEDGER_KEY.sort] as AttributeValue,
                },
              }),
            ),
          ),
        );
      }
    },
    /** Stores a live access token for the connection, as the refresher would have. */
    storeToken: (
      secretId: string,
      token: { access_token: string; expires_in: number },
      apiDomain: string,
    ) => storeLedgerToken(dynamo, table, secretId, token, apiDomain),
    /** The token store of a connection on this ledger, as the functions build it. */
    tokenStore: (secretsManager: unknown, secretId = "zoho/books") =>
      new TokenStore({
        secretId,
        secretsManager: secretsManager as SecretsManagerClient,
        dynamo,
        table,
        cacheTtlSeconds: 300,
      }),
    /** the connection's token item, attribute by attribute (for assertions) */
    async item(secretId: string): Promise<Record<string, string | undefined>> {
      const { Item } = await dynamo.send(
        new GetItemCommand({
          TableName: table,
          Key: ledgerKeys.token(secretId),
          ConsistentRead: true,
        }),
      );
      return Object.fromEntries(
        Object.entries(Item ?? {}).map(([name, value]) => [name, value.S ?? value.N]),
      );
    },
  };
}
