import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import type { Config } from "../config";
import type { TokenStore } from "../credentials/token-store";
import { HubSpotClient } from "../crm/hubspot-client";
import { ZohoCrmClient } from "../crm/zoho-crm-client";
import { lazy } from "../lazy";
import { DynamoCrmLedger } from "./crm-state";
import type { CrmSyncDependencies, CrmSyncInput } from "./crm-sync";
import { runCrmSync } from "./crm-sync";

// `{"mode": "watch"}` runs (the Zoho CRM notification channel) load with the CRM half: one more
// import() target would split the function's eager bundle further (lib/intake.ts says why).
export { runScheduledWatch } from "../crm/watch-run";

/**
 * The scheduled sync's CRM half, loaded by `functions/scheduled-sync.ts` on the first run with a
 * `zoho_crm` or `hubspot` source (so a document source's cold start does not carry it): the CRM
 * clients, created once per container.
 */
let clients: Pick<CrmSyncDependencies, "zohoCrm" | "hubspot"> | undefined;

function crmClients(tokens: TokenStore, config: Config) {
  clients ??= {
    // `zoho_crm` sources: COQL with the Books connection's token (the same grant)
    zohoCrm: lazy(() => new ZohoCrmClient({ tokens, timeoutMs: config.ZOHO_HTTP_TIMEOUT_MS })),
    // `hubspot` sources: only when the operator set HUBSPOT_SECRET_ID
    ...(config.HUBSPOT_SECRET_ID
      ? {
          hubspot: lazy(
            () =>
              new HubSpotClient({
                secretsManager: new SecretsManagerClient({}),
                secretId: config.HUBSPOT_SECRET_ID as string,
                baseUrl: config.HUBSPOT_API_URL,
                cacheTtlSeconds: config.SECRET_CACHE_TTL_SECONDS,
                timeoutMs: config.ZOHO_HTTP_TIMEOUT_MS,
              }),
          ),
        }
      : {}),
  };
  return clients;
}

/**
 * One run over a CRM source, with the container's CRM clients and the ledger's CRM items (Books
 * statuses, learned links: lib/sync/crm-state.ts, loaded here rather than with the function).
 */
export function runCrmSource(
  deps: Omit<CrmSyncDependencies, "zohoCrm" | "hubspot" | "tokens" | "crmLedger"> & {
    config: Config;
    tokens: TokenStore;
    dynamo: DynamoDBClient;
  },
  input: CrmSyncInput,
) {
  const crmLedger = new DynamoCrmLedger({
    dynamo: deps.dynamo,
    table: deps.config.ZOHO_LEDGER_TABLE,
    ...(deps.now ? { now: deps.now } : {}),
  });
  return runCrmSync({ ...deps, ...crmClients(deps.tokens, deps.config), crmLedger }, input);
}
