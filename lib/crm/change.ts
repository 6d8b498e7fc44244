import type { PlannedChange } from "../sync/sync";
import type { CrmRecord } from "./match";
import type { RuleDecision } from "./rules";
import type { CrmSource } from "./source";

/**
 * The job of one change, with the rule, record and value that decided it: the scheduled sync's
 * (lib/sync/crm-sync.ts) and the Zoho CRM notifications' (lib/crm/notifications.ts). A
 * deactivation carries the guard when the input's `guard.outstanding` is on.
 *
 * @example
 * changeFor("460000000026049", { record, decision }, { source, guard: { outstanding: true } });
 * // {contact_id, action: "deactivate", reason: {rule, crm_record_id, field, value, source: "zoho_crm"}, guard: {outstanding: true}}
 */
export function changeFor(
  contactId: string,
  { record, decision }: { record: CrmRecord; decision: RuleDecision },
  input: { source: Pick<CrmSource, "type">; guard: { outstanding: boolean } },
): PlannedChange {
  const action = decision.status === "active" ? "activate" : "deactivate";
  return {
    contact_id: contactId,
    action,
    // within the job schema's bounds (lib/jobs/job.ts): a long picklist value is cut, not refused
    reason: {
      rule: decision.rule.slice(0, 200),
      crm_record_id: record.id,
      field: decision.field,
      value: decision.value.slice(0, 200),
      source: input.source.type,
    },
    ...(action === "deactivate" && input.guard.outstanding
      ? { guard: { outstanding: true as const } }
      : {}),
  };
}
