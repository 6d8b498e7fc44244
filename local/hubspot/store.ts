import {
  FIRST_ID,
  iso,
  LAST_MODIFIED,
  OBJECT_TYPES,
  type ObjectType,
  PROPERTIES,
  type SeedOptions,
  type SeedRecord,
  seedRecords,
} from "./seed";
import type { PropertyValues } from "./types";

interface Stored {
  /** what read by id sees: every write at once */
  current: SeedRecord;
  /** what search sees; undefined until a new record's first write reaches it */
  indexed?: SeedRecord;
  /** writes on their way to search, oldest first */
  pending: { at: number; record: SeedRecord }[];
}

/**
 * The portal's records, with search's lagging view of them: a write is seen at once by read by
 * id, and by search `lagMs` after it was made (each write in turn), as HubSpot's search index is
 * eventually consistent.
 */
export class RecordStore {
  private readonly byType: Record<ObjectType, Map<string, Stored>>;
  private readonly nextId: Record<ObjectType, number>;

  constructor(options: SeedOptions) {
    this.byType = { contacts: new Map(), companies: new Map() };
    this.nextId = { ...FIRST_ID };
    for (const type of OBJECT_TYPES) {
      for (const record of seedRecords(type, options)) {
        this.byType[type].set(record.id, { current: record, indexed: record, pending: [] });
        this.nextId[type] = Math.max(this.nextId[type], Number(record.id));
      }
    }
  }

  get(type: ObjectType, id: string): SeedRecord | undefined {
    return this.byType[type].get(id)?.current;
  }

  all(type: ObjectType): SeedRecord[] {
    return [...this.byType[type].values()].map((s) => s.current);
  }

  /** The record whose unique property `name` holds `value` (email compared case-insensitively). */
  findBy(type: ObjectType, name: string, value: string): SeedRecord | undefined {
    if (name === "hs_object_id") return this.get(type, value);
    const wanted = name === "email" ? value.toLowerCase() : value;
    for (const { current } of this.byType[type].values()) {
      const stored = current.properties[name];
      if (stored !== undefined && (name === "email" ? stored.toLowerCase() : stored) === wanted)
        return current;
    }
    return undefined;
  }

  /** What search sees at `now`: the writes made `lagMs` or longer ago. */
  searchable(type: ObjectType, now: number): SeedRecord[] {
    const visible: SeedRecord[] = [];
    for (const stored of this.byType[type].values()) {
      while (stored.pending[0] && stored.pending[0].at <= now) {
        stored.indexed = stored.pending.shift()?.record;
      }
      if (stored.indexed) visible.push(stored.indexed);
    }
    return visible;
  }

  create(type: ObjectType, values: PropertyValues, now: number, lagMs: number): SeedRecord {
    const properties = this.checked(type, values, undefined);
    const id = String(++this.nextId[type]);
    Object.assign(properties, {
      hs_object_id: id,
      createdate: iso(now),
      [LAST_MODIFIED[type]]: iso(now),
    });
    const record: SeedRecord = { id, properties, createdAt: now, updatedAt: now, archived: false };
    this.byType[type].set(id, { current: record, pending: [] });
    this.queue(type, record, now, lagMs);
    return structuredClone(record);
  }

  update(
    type: ObjectType,
    id: string,
    values: PropertyValues,
    now: number,
    lagMs: number,
  ): SeedRecord {
    const stored = this.byType[type].get(id);
    if (!stored) throw new Error(`The HubSpot sandbox has no ${type} record ${id}`);
    const properties = this.checked(type, values, stored.current);
    properties[LAST_MODIFIED[type]] = iso(now);
    const record: SeedRecord = { ...stored.current, properties, updatedAt: now };
    stored.current = record;
    this.queue(type, record, now, lagMs);
    return structuredClone(record);
  }

  archive(type: ObjectType, id: string, now: number, lagMs: number): SeedRecord {
    const stored = this.byType[type].get(id);
    if (!stored) throw new Error(`The HubSpot sandbox has no ${type} record ${id}`);
    const properties = { ...stored.current.properties, [LAST_MODIFIED[type]]: iso(now) };
    stored.current = { ...stored.current, properties, updatedAt: now, archived: true };
    this.queue(type, stored.current, now, lagMs);
    return structuredClone(stored.current);
  }

  private queue(type: ObjectType, record: SeedRecord, now: number, lagMs: number): void {
    this.byType[type].get(record.id)?.pending.push({ at: now + lagMs, record });
  }

  /**
   * The record's properties after a write of `values`, checked as HubSpot checks a write: known,
   * writable properties; enumeration values among the options (case-sensitive); datetimes as
   * epoch ms or ISO; unique values unique. null or "" clears a property.
   */
  private checked(
    type: ObjectType,
    values: PropertyValues,
    existing: SeedRecord | undefined,
  ): Record<string, string> {
    const properties = { ...existing?.properties };
    for (const [name, value] of Object.entries(values)) {
      const definition = PROPERTIES[type][name];
      if (!definition) throw new Error(`Property "${name}" does not exist`);
      if (definition.readOnly) throw new Error(`Property "${name}" is read-only`);
      if (value === null || value === "") {
        delete properties[name];
        continue;
      }
      let text = String(value);
      if (definition.type === "datetime") {
        const ms = /^-?\d+$/.test(text) ? Number(text) : Date.parse(text);
        if (!Number.isFinite(ms)) throw new Error(`${name} must be epoch milliseconds or ISO 8601`);
        text = iso(ms);
      } else if (definition.type === "number" && !Number.isFinite(Number(text))) {
        throw new Error(`${name} must be a number`);
      } else if (definition.type === "enumeration") {
        const chosen = definition.multiple ? text.split(";") : [text];
        const bad = chosen.find((v) => !definition.options?.includes(v));
        if (bad !== undefined)
          throw new Error(`${JSON.stringify(bad)} is not an option of ${name}`);
      }
      if (definition.unique) {
        const holder = this.findBy(type, name, text);
        if (holder && holder.id !== existing?.id)
          throw new Error(`${name} ${JSON.stringify(text)} already belongs to record ${holder.id}`);
      }
      properties[name] = text;
    }
    return properties;
  }
}
