import { OBJECT_TYPES, type ObjectType } from "./seed";
import { settingsProblem } from "./settings";
import type { HubSpotSandbox, PropertyValues } from "./types";

export interface ControlAnswer {
  status: number;
  body: unknown;
}

const OBJECT_PATH = /^\/__hubspot\/objects\/([^/]+)(?:\/([^/]+))?$/;

/**
 * The control API, for tests, e2e runs and the bench in another process: over HTTP, what the
 * HubSpotSandbox object does in process (and nothing more, since it goes through that object).
 * Not authenticated, not rate-limited, not counted in the stats.
 *
 *   GET    /__hubspot/state                 {settings, clock, records: {contacts, companies}}
 *   PATCH  /__hubspot/settings              a JSON merge into the settings (400 when invalid)
 *   POST   /__hubspot/reset
 *   POST   /__hubspot/clock/advance         {"seconds": n}
 *   GET    /__hubspot/stats                 (DELETE clears them)
 *   POST   /__hubspot/objects/{type}        {"properties": {...}}  → 201 the new record
 *   GET    /__hubspot/objects/{type}/{id}   the record as read by id sees it
 *   PATCH  /__hubspot/objects/{type}/{id}   {"properties": {...}}  (bumps the modified date)
 *   DELETE /__hubspot/objects/{type}/{id}   archives it
 */
export async function controlAnswer(
  hubspot: HubSpotSandbox,
  method: string,
  path: string,
  readJson: () => Promise<unknown>,
): Promise<ControlAnswer> {
  const ok = (body: unknown, status = 200): ControlAnswer => ({ status, body });
  const invalid = (error: string): ControlAnswer => ({ status: 400, body: { error } });
  const clock = () => new Date(hubspot.now()).toISOString();

  switch (`${method} ${path}`) {
    case "GET /__hubspot/state":
      return ok({
        settings: hubspot.settings,
        clock: clock(),
        records: {
          contacts: hubspot.records("contacts").length,
          companies: hubspot.records("companies").length,
        },
      });
    case "PATCH /__hubspot/settings": {
      const patch = await readJson();
      const problem = settingsProblem(patch);
      if (problem) return invalid(problem);
      Object.assign(hubspot.settings, patch);
      return ok(hubspot.settings);
    }
    case "POST /__hubspot/reset":
      hubspot.reset();
      return ok({ reset: true });
    case "POST /__hubspot/clock/advance": {
      const seconds = field(await readJson(), "seconds");
      if (typeof seconds !== "number" || !Number.isFinite(seconds))
        return invalid("seconds must be a number");
      hubspot.advanceClock(seconds);
      return ok({ clock: clock() });
    }
    case "GET /__hubspot/stats":
      return ok(hubspot.stats());
    case "DELETE /__hubspot/stats":
      hubspot.clearStats();
      return ok({ cleared: true });
  }

  const match = OBJECT_PATH.exec(path);
  const type = match?.[1] as ObjectType | undefined;
  const id = match?.[2];
  if (!match || !type || !OBJECT_TYPES.includes(type))
    return { status: 404, body: { error: `no control endpoint ${method} ${path}` } };
  const missing = () => ({ status: 404, body: { error: `no ${type} record ${id}` } });
  try {
    if (id === undefined && method === "POST") {
      const properties = field(await readJson(), "properties");
      if (!isValues(properties)) return invalid("properties must be an object of values");
      return ok(hubspot.create(type, properties), 201);
    }
    const record = id === undefined ? undefined : hubspot.record(type, id);
    if (id !== undefined && !record) return missing();
    if (id !== undefined && method === "GET") return ok(record);
    if (id !== undefined && method === "PATCH") {
      const properties = field(await readJson(), "properties");
      if (!isValues(properties)) return invalid("properties must be an object of values");
      return ok(hubspot.update(type, id, properties));
    }
    if (id !== undefined && method === "DELETE") return ok(hubspot.archive(type, id));
  } catch (thrown) {
    return invalid(thrown instanceof Error ? thrown.message : String(thrown));
  }
  return { status: 404, body: { error: `no control endpoint ${method} ${path}` } };
}

function field(body: unknown, name: string): unknown {
  return typeof body === "object" && body !== null
    ? (body as Record<string, unknown>)[name]
    : undefined;
}

function isValues(value: unknown): value is PropertyValues {
  return (
    typeof value === "object" &&
    value !== null &&
    !Array.isArray(value) &&
    Object.values(value).every((v) => v === null || ["string", "number"].includes(typeof v))
  );
}
