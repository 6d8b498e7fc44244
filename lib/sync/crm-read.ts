import { buildCoqlQuery, COQL_LIMITS } from "../crm/coql";
import type { HubSpotClient } from "../crm/hubspot-client";
import { buildHubSpotSearch } from "../crm/hubspot-query";
import type { CrmRecord } from "../crm/match";
import { type CrmSource, type HubSpotSource, readFields, type ZohoCrmSource } from "../crm/source";
import type { ZohoCrmClient } from "../crm/zoho-crm-client";
import { ServiceError } from "../errors";

/** The CRM clients a run may use, each created on its first use. */
export interface CrmClients {
  zohoCrm?: () => ZohoCrmClient;
  hubspot?: () => HubSpotClient;
}

/** What a run read of the CRM. */
export interface CrmRead {
  /** each record once, by id */
  records: CrmRecord[];
  /** CRM calls of this read */
  calls: number;
}

/**
 * Reads every record of the source that some rule can decide (the builders push the rules into
 * the query), modified since `since` when given, page by page by id (COQL `id > last`, HubSpot
 * `hs_object_id GT last`: each page a new query, so HubSpot's 10,000-results cap never applies).
 * Reads everything before the run plans anything: a CRM failure on any page fails the run with
 * nothing queued.
 */
export async function readCrm(
  clients: CrmClients,
  source: CrmSource,
  options: { since: Date | undefined; now: Date },
): Promise<CrmRead> {
  if (source.type === "zoho_crm") {
    if (!clients.zohoCrm) throw missingClient("Zoho CRM");
    return readZohoCrm(clients.zohoCrm(), source, options);
  }
  if (!clients.hubspot)
    throw new ServiceError(
      "CONFIGURATION_ERROR",
      "A hubspot source needs HUBSPOT_SECRET_ID (the private-app token's secret) in the function's environment.",
    );
  return readHubSpot(clients.hubspot(), source, options);
}

const missingClient = (what: string) =>
  new ServiceError("CONFIGURATION_ERROR", `The sync has no ${what} client.`);

async function readZohoCrm(
  crm: ZohoCrmClient,
  source: ZohoCrmSource,
  options: { since: Date | undefined; now: Date },
): Promise<CrmRead> {
  const before = crm.calls;
  await crm.checkScopes(source.module);
  const records = new Map<string, CrmRecord>();
  let afterId: string | undefined;
  for (;;) {
    const query = buildCoqlQuery({
      module: source.module,
      rules: source.rules,
      fields: readFields(source),
      now: options.now,
      ...(options.since ? { modifiedSince: options.since } : {}),
      ...(afterId === undefined ? {} : { afterId }),
    });
    const { rows, moreRecords } = await crm.coql(query.select_query, source.module);
    for (const row of rows) records.set(String(row.id), { ...row, id: String(row.id) });
    const last = rows.at(-1);
    if (!last || !moreRecords || rows.length < COQL_LIMITS.maxLimit) break;
    afterId = String(last.id);
  }
  return { records: [...records.values()], calls: crm.calls - before };
}

async function readHubSpot(
  hubspot: HubSpotClient,
  source: HubSpotSource,
  options: { since: Date | undefined; now: Date },
): Promise<CrmRead> {
  const before = hubspot.calls;
  const records = new Map<string, CrmRecord>();
  let afterId: string | undefined;
  for (;;) {
    const body = buildHubSpotSearch({
      object: source.object,
      rules: source.rules,
      properties: readFields(source),
      now: options.now,
      ...(options.since ? { modifiedSince: options.since } : {}),
      ...(afterId === undefined ? {} : { afterId }),
    });
    const { results } = await hubspot.search(source.object, body);
    for (const result of results)
      records.set(result.id, { ...result.properties, id: String(result.id) });
    const last = results.at(-1);
    if (!last || results.length < body.limit) break;
    afterId = String(last.id);
  }
  return { records: [...records.values()], calls: hubspot.calls - before };
}
