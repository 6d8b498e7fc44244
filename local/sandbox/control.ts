import { crmModule } from "./crm/schema";
import { settingsProblem } from "./settings";
import type { Sandbox } from "./types";

export interface ControlAnswer {
  status: number;
  body: unknown;
}

const CONTACT_PATH = /^\/__sandbox\/contacts\/([^/]+)$/;
/** /__sandbox/crm/{Module} and /__sandbox/crm/{Module}/{id} */
const CRM_RECORD_PATH = /^\/__sandbox\/crm\/([A-Za-z]+)(?:\/([^/]+))?$/;

/**
 * The control API, for tests, e2e runs and benchmarks in another process: over HTTP, what the
 * Sandbox object does in process (and nothing more, since it goes through that object).
 * Not rate-limited, not counted in the stats.
 *
 *   GET    /__sandbox/state              {settings, clock, contacts, dailyQuota}
 *   PATCH  /__sandbox/settings           a JSON merge into the settings (400 when invalid)
 *   POST   /__sandbox/reset
 *   POST   /__sandbox/clock/advance      {"seconds": n}
 *   POST   /__sandbox/tokens/issue       {access_token, expires_in}, not a grant
 *   POST   /__sandbox/tokens/revoke
 *   GET    /__sandbox/stats
 *   GET    /__sandbox/requests           (DELETE clears the requests and the stats)
 *   GET    /__sandbox/contacts/{id}
 *   PUT    /__sandbox/contacts/{id}      {"status": "active" | "inactive"}
 *   GET    /__sandbox/contacts/{id}/amounts
 *   PATCH  /__sandbox/contacts/{id}/amounts  {"outstanding_receivable_amount": 12.5, …}
 *   GET    /__sandbox/crm/stats          {stats, credits}
 *   GET    /__sandbox/crm/channels       live notification channels
 *   GET    /__sandbox/crm/deliveries     notification delivery attempts
 *   GET    /__sandbox/crm/{Module}       records; POST creates one ({field: value}), notifying
 *   GET    /__sandbox/crm/{Module}/{id}  PATCH edits it (Modified_Time bumped), DELETE deletes it
 */
export async function controlAnswer(
  sandbox: Sandbox,
  method: string,
  path: string,
  readJson: () => Promise<unknown>,
): Promise<ControlAnswer> {
  const ok = (body: unknown): ControlAnswer => ({ status: 200, body });
  const invalid = (error: string): ControlAnswer => ({ status: 400, body: { error } });
  const clock = () => new Date(sandbox.now()).toISOString();

  switch (`${method} ${path}`) {
    case "GET /__sandbox/state":
      return ok({
        settings: sandbox.settings,
        clock: clock(),
        contacts: sandbox.contacts().length,
        dailyQuota: sandbox.dailyQuota(),
      });
    case "PATCH /__sandbox/settings": {
      const patch = await readJson();
      const problem = settingsProblem(patch);
      if (problem) return invalid(problem);
      Object.assign(sandbox.settings, patch);
      return ok(sandbox.settings);
    }
    case "POST /__sandbox/reset":
      sandbox.reset();
      return ok({ reset: true });
    case "POST /__sandbox/clock/advance": {
      const seconds = field(await readJson(), "seconds");
      if (typeof seconds !== "number" || !Number.isFinite(seconds))
        return invalid("seconds must be a number");
      sandbox.advanceClock(seconds);
      return ok({ clock: clock() });
    }
    case "POST /__sandbox/tokens/issue":
      return ok(sandbox.issueToken());
    case "POST /__sandbox/tokens/revoke":
      sandbox.revokeAccessTokens();
      return ok({ revoked: true });
    case "GET /__sandbox/stats":
      return ok(sandbox.stats());
    case "GET /__sandbox/requests":
      return ok(sandbox.requests());
    case "DELETE /__sandbox/requests":
      sandbox.clearRequests();
      return ok({ cleared: true });
    case "GET /__sandbox/crm/stats":
      return ok({ stats: sandbox.crm.stats(), credits: sandbox.crm.credits() });
    case "GET /__sandbox/crm/channels":
      return ok(sandbox.crm.channels());
    case "GET /__sandbox/crm/deliveries":
      return ok(sandbox.crm.deliveries());
  }

  const amountsOf = /^\/__sandbox\/contacts\/([^/]+)\/amounts$/.exec(path)?.[1];
  if (amountsOf !== undefined && (method === "GET" || method === "PATCH")) {
    if (!sandbox.contactAmounts(amountsOf))
      return { status: 404, body: { error: `no contact ${amountsOf}` } };
    if (method === "PATCH") {
      const amounts = await readJson();
      if (typeof amounts !== "object" || amounts === null || Array.isArray(amounts))
        return invalid("amounts must be a JSON object");
      try {
        sandbox.setContactAmounts(amountsOf, amounts as Record<string, number>);
      } catch (error) {
        return invalid((error as Error).message);
      }
    }
    return ok(sandbox.contactAmounts(amountsOf));
  }

  const crmPath = CRM_RECORD_PATH.exec(path);
  const module = crmPath && crmModule(crmPath[1] as string);
  if (crmPath && module) {
    const recordId = crmPath[2];
    try {
      if (recordId === undefined && method === "GET")
        return ok(sandbox.crm.records(module.api_name));
      if (recordId === undefined && method === "POST") {
        const fields = await readJson();
        if (typeof fields !== "object" || fields === null || Array.isArray(fields))
          return invalid("the record must be a JSON object");
        return ok(
          await sandbox.crm.createRecord(module.api_name, fields as Record<string, unknown>),
        );
      }
      if (recordId !== undefined) {
        if (!sandbox.crm.record(module.api_name, recordId))
          return { status: 404, body: { error: `no ${module.api_name} record ${recordId}` } };
        if (method === "GET") return ok(sandbox.crm.record(module.api_name, recordId));
        if (method === "PATCH") {
          const fields = await readJson();
          if (typeof fields !== "object" || fields === null || Array.isArray(fields))
            return invalid("the fields must be a JSON object");
          return ok(
            await sandbox.crm.updateRecord(
              module.api_name,
              recordId,
              fields as Record<string, unknown>,
            ),
          );
        }
        if (method === "DELETE") {
          await sandbox.crm.deleteRecord(module.api_name, recordId);
          return ok({ deleted: recordId });
        }
      }
    } catch (error) {
      return invalid((error as Error).message);
    }
  }

  const id = CONTACT_PATH.exec(path)?.[1];
  const contact = id === undefined ? undefined : sandbox.contact(id);
  if (id !== undefined && (method === "GET" || method === "PUT")) {
    if (!contact) return { status: 404, body: { error: `no contact ${id}` } };
    if (method === "GET") return ok(contact);
    const status = field(await readJson(), "status");
    if (status !== "active" && status !== "inactive")
      return invalid('status must be "active" or "inactive"');
    sandbox.setContactStatus(id, status);
    return ok(sandbox.contact(id));
  }
  return { status: 404, body: { error: `no control endpoint ${method} ${path}` } };
}

function field(body: unknown, name: string): unknown {
  return typeof body === "object" && body !== null
    ? (body as Record<string, unknown>)[name]
    : undefined;
}
