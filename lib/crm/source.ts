import * as z from "zod/mini";
import { ServiceError } from "../errors";
import { buildCoqlQuery } from "./coql";
import { buildHubSpotSearch } from "./hubspot-query";
import { MatchSchema, type MatchStrategy, matchFields, RulesSchema } from "./rules";

/**
 * The sync input's `source` when the service reads a CRM itself (contract: "CRM sources and
 * rules"), ready to join the sync's `SourceSchema` union. A source whose rules could never fit
 * one query (COQL's 25 criteria, HubSpot's 5 filter groups, on an incremental, paged run) is
 * refused here, when the schedule is parsed, not at its first run.
 */

/**
 * `{"type": "zoho_crm", "module": "Accounts" | "Contacts", "rules": […], "match": […]}`
 *
 * @example
 * ZohoCrmSourceSchema.parse({
 *   type: "zoho_crm", module: "Accounts",
 *   rules: [{ field: "Account_Type", active: ["Customer"], inactive: ["Former Customer"] }],
 *   match: ["books_id_field:Books_Contact_Id", "zcrm_link", "email"],
 * });
 */
export const ZohoCrmSourceSchema = z
  .strictObject(
    {
      type: z.literal("zoho_crm"),
      module: z.enum(["Accounts", "Contacts"], {
        error: 'source.module must be "Accounts" or "Contacts"',
      }),
      rules: RulesSchema,
      match: MatchSchema,
      /**
       * Zoho CRM change notifications (lib/crm/watch.ts): on unless `false`; off, the schedule's
       * watch runs enable no channel and the source is read by the scheduled runs only
       */
      notifications: z.optional(z.boolean({ error: "source.notifications must be true or false" })),
    },
    {
      error:
        "a zoho_crm source is {type, module, rules, match}, and notifications: false to turn its Zoho CRM notifications off",
    },
  )
  .check(
    z.refine((source) => queryProblem(source) === undefined, {
      error: (issue) => queryProblem(issue.input as CrmSource) ?? "",
    }),
  );

/**
 * `{"type": "hubspot", "object": "companies" | "contacts", "rules": […], "match": […]}`;
 * `zcrm_link` cannot match a HubSpot record and is refused.
 *
 * @example
 * HubSpotSourceSchema.parse({
 *   type: "hubspot", object: "companies",
 *   rules: [{ activity_field: "notes_last_contacted", active_within_days: 180, inactive_after_days: 365 }],
 *   match: ["books_id_field:zoho_books_contact_id"],
 * });
 */
export const HubSpotSourceSchema = z
  .strictObject(
    {
      type: z.literal("hubspot"),
      object: z.enum(["companies", "contacts"], {
        error: 'source.object must be "companies" or "contacts"',
      }),
      rules: RulesSchema,
      match: MatchSchema,
    },
    { error: "a hubspot source is {type, object, rules, match}" },
  )
  .check(
    z.refine((source) => !source.match.some((strategy) => strategy.kind === "zcrm_link"), {
      error: "zcrm_link matches Zoho CRM records only: a hubspot source cannot use it",
    }),
    z.refine((source) => queryProblem(source) === undefined, {
      error: (issue) => queryProblem(issue.input as CrmSource) ?? "",
    }),
  );

export type ZohoCrmSource = z.infer<typeof ZohoCrmSourceSchema>;
export type HubSpotSource = z.infer<typeof HubSpotSourceSchema>;
export type CrmSource = ZohoCrmSource | HubSpotSource;

/**
 * The record fields that hold an email for the `email` strategy: Zoho CRM Contacts' `Email`,
 * HubSpot contacts' `email`. Accounts and companies have no standard email field: none.
 *
 * @example
 * emailFields(HubSpotSourceSchema.parse({ type: "hubspot", object: "contacts", rules, match })); // ["email"]
 */
export function emailFields(source: CrmSource): string[] {
  if (source.type === "zoho_crm") return source.module === "Contacts" ? ["Email"] : [];
  return source.object === "contacts" ? ["email"] : [];
}

/**
 * What the builders must read besides the rules' fields: the match fields and, when `email`
 * is a strategy, the email fields.
 *
 * @example
 * readFields(ZohoCrmSourceSchema.parse({ type: "zoho_crm", module: "Contacts", rules,
 *   match: ["books_id_field:Books_Id", "email"] }));
 * // ["Books_Id", "Email"]
 */
export function readFields(source: CrmSource): string[] {
  const match: ReadonlyArray<MatchStrategy> = source.match;
  return [
    ...matchFields(match),
    ...(match.some((strategy) => strategy.kind === "email") ? emailFields(source) : []),
  ];
}

/** The builder's refusal of the largest query a run can send (incremental and paged), if any. */
function queryProblem(source: CrmSource): string | undefined {
  const worst = { now: new Date(0), modifiedSince: new Date(0), afterId: "1" };
  try {
    if (source.type === "zoho_crm")
      buildCoqlQuery({
        ...worst,
        module: source.module,
        rules: source.rules,
        fields: readFields(source),
      });
    else
      buildHubSpotSearch({
        ...worst,
        object: source.object,
        rules: source.rules,
        properties: readFields(source),
      });
    return undefined;
  } catch (error) {
    if (error instanceof ServiceError) return error.message;
    throw error;
  }
}
