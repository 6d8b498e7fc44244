import { randomUUID } from "node:crypto";
import { AwsError, type Json, parseJsonObject } from "./protocol";

/** An event a bus accepted, as `LocalAws.events()` and `GET /__local/events` show it. */
export interface BusEvent {
  /** the bus's name (an entry may name it by ARN) */
  bus: string;
  source: string;
  detailType: string;
  /** the entry's Detail, parsed (always a JSON object) */
  detail: Json;
  /** the event's time, as EventBridge writes it: the entry's Time, else when it was put */
  time: string;
  /** the EventId PutEvents answered */
  id: string;
}

interface Bus {
  name: string;
  arn: string;
  description?: string;
  createdAt: number;
}

/** An error as EventBridge sends it (AWS JSON 1.1): its model names the message `message`. */
export function eventBridgeError(type: string, message: string, status = 400): AwsError {
  return new AwsError(status, { __type: type, message });
}

export const EVENTBRIDGE_TARGET = "AWSEvents";
/** PutEvents' limits: entries per request, and the request's size as EventBridge counts it */
const MAX_ENTRIES = 10;
const MAX_REQUEST_BYTES = 256 * 1024;
const bytes = (text: string) => Buffer.byteLength(text, "utf8");

/**
 * EventBridge, as much as the service uses: PutEvents onto the `default` bus or onto buses made
 * with CreateEventBus, with the checks and answers AWS gives (recorded in LocalStack's
 * AWS-validated snapshots): 1 to 10 entries and at most 256 KiB by EventBridge's own count, else
 * the whole request is refused with a ValidationException; an entry without Source, DetailType
 * or Detail, or whose Detail is not a JSON object, fails alone (ErrorCode `InvalidArgument` or
 * `MalformedDetail`) while the others are put. Like AWS, an entry for a bus that does not exist
 * is answered with an EventId and dropped: only the buses that exist record events. No rules,
 * targets, archives or permissions.
 */
export class EventBridge {
  readonly #buses = new Map<string, Bus>();
  #events: BusEvent[] = [];

  constructor(
    readonly region: string,
    readonly accountId: string,
  ) {
    this.reset();
  }

  /** Forgets every event and every bus but `default`, which always exists. */
  reset(): void {
    this.#buses.clear();
    this.#buses.set("default", this.#newBus("default"));
    this.#events = [];
  }

  /** the recorded events, oldest first; only those of one bus (by name or ARN) if given */
  events(bus?: string): BusEvent[] {
    const name = bus === undefined ? undefined : busName(bus);
    return this.#events.filter((event) => name === undefined || event.bus === name);
  }

  handle(operation: string, input: Json): Json {
    switch (operation) {
      case "PutEvents":
        return this.#putEvents(input);
      case "CreateEventBus":
        return this.#createBus(input);
      case "DescribeEventBus":
        return this.#describeBus(input);
      case "DeleteEventBus":
        return this.#deleteBus(input);
      default:
        throw eventBridgeError(
          "UnknownOperationException",
          `EventBridge operation ${operation} is not served by the local endpoint.`,
        );
    }
  }

  #putEvents(input: Json): Json {
    const entries = input.Entries;
    if (!Array.isArray(entries)) {
      throw validation("null", "entries", "Member must not be null");
    }
    if (entries.length < 1) {
      throw validation("[]", "entries", "Member must have length greater than or equal to 1");
    }
    if (entries.length > MAX_ENTRIES) {
      throw validation(
        `[${entries.map(describeEntry).join(", ")}]`,
        "entries",
        `Member must have length less than or equal to ${MAX_ENTRIES}`,
      );
    }
    const size = entries.reduce((total: number, entry) => total + entrySize(entry), 0);
    if (size > MAX_REQUEST_BYTES) {
      throw eventBridgeError(
        "ValidationException",
        "Total size of the entries in the request is over the limit.",
      );
    }
    const results = entries.map((entry: Json) => this.#put(entry));
    return {
      FailedEntryCount: results.filter((result) => result.ErrorCode !== undefined).length,
      Entries: results,
    };
  }

  /** One entry: its result, and the event recorded if its bus exists. */
  #put(entry: Json): Json {
    for (const member of ["Source", "DetailType", "Detail"]) {
      const value = entry[member];
      if (typeof value !== "string" || value === "") {
        return {
          ErrorCode: "InvalidArgument",
          ErrorMessage: `Parameter ${member} is not valid. Reason: ${member} is a required argument.`,
        };
      }
    }
    const detail = parseJsonObject(entry.Detail as string);
    if (detail === undefined) {
      return { ErrorCode: "MalformedDetail", ErrorMessage: "Detail is malformed." };
    }
    const id = randomUUID();
    const bus = this.#find(typeof entry.EventBusName === "string" ? entry.EventBusName : "default");
    if (bus !== undefined) {
      const time = typeof entry.Time === "number" ? entry.Time * 1000 : Date.now();
      this.#events.push({
        bus: bus.name,
        source: entry.Source as string,
        detailType: entry.DetailType as string,
        detail,
        time: new Date(time).toISOString().replace(/\.\d{3}Z$/, "Z"),
        id,
      });
    }
    return { EventId: id };
  }

  #createBus(input: Json): Json {
    const name = input.Name;
    if (typeof name !== "string" || !/^[/.\-_A-Za-z0-9]{1,256}$/.test(name)) {
      throw validation(
        String(name ?? "null"),
        "name",
        "Member must satisfy regular expression pattern: [/\\.\\-_A-Za-z0-9]+",
      );
    }
    if (this.#buses.has(name)) {
      throw eventBridgeError("ResourceAlreadyExistsException", `Event bus ${name} already exists.`);
    }
    const bus = this.#newBus(name);
    if (typeof input.Description === "string") bus.description = input.Description;
    this.#buses.set(name, bus);
    return {
      EventBusArn: bus.arn,
      ...(bus.description === undefined ? {} : { Description: bus.description }),
    };
  }

  /** By name or ARN; without a Name, the default bus. */
  #describeBus(input: Json): Json {
    const id = typeof input.Name === "string" ? input.Name : "default";
    const bus = this.#find(id);
    if (bus === undefined) {
      throw eventBridgeError(
        "ResourceNotFoundException",
        `Event bus ${busName(id)} does not exist.`,
      );
    }
    return {
      Name: bus.name,
      Arn: bus.arn,
      ...(bus.description === undefined ? {} : { Description: bus.description }),
      CreationTime: bus.createdAt / 1000,
      LastModifiedTime: bus.createdAt / 1000,
    };
  }

  /** The default bus cannot be deleted; deleting a bus that does not exist succeeds, as in AWS. */
  #deleteBus(input: Json): Json {
    const name = input.Name;
    if (typeof name !== "string") throw validation("null", "name", "Member must not be null");
    if (name === "default") {
      throw eventBridgeError("ValidationException", "Cannot delete event bus default.");
    }
    this.#buses.delete(name);
    return {};
  }

  #newBus(name: string): Bus {
    return {
      name,
      arn: `arn:aws:events:${this.region}:${this.accountId}:event-bus/${name}`,
      createdAt: Date.now(),
    };
  }

  /** by name, or by its ARN (in this region and account) */
  #find(nameOrArn: string): Bus | undefined {
    const bus = this.#buses.get(busName(nameOrArn));
    return bus !== undefined && (bus.name === nameOrArn || bus.arn === nameOrArn) ? bus : undefined;
  }
}

/** A bus's name from its name or ARN. */
function busName(nameOrArn: string): string {
  return /^arn:aws[\w-]*:events:[^:]*:\d*:event-bus\/(.+)$/.exec(nameOrArn)?.[1] ?? nameOrArn;
}

/** AWS's model validation error, as its services word it. */
function validation(value: string, member: string, constraint: string): AwsError {
  return eventBridgeError(
    "ValidationException",
    `1 validation error detected: Value '${value}' at '${member}' failed to satisfy constraint: ${constraint}`,
  );
}

/**
 * An entry's size as EventBridge counts it against the 256 KiB limit ("Calculating PutEvents
 * event entry size"): 14 bytes for a Time, and the UTF-8 bytes of Source, DetailType, Detail
 * and each of the Resources.
 */
export function entrySize(entry: Json): number {
  let size = entry.Time === undefined || entry.Time === null ? 0 : 14;
  for (const member of ["Source", "DetailType", "Detail"]) {
    const value = entry[member];
    if (typeof value === "string") size += bytes(value);
  }
  if (Array.isArray(entry.Resources)) {
    for (const resource of entry.Resources) {
      if (typeof resource === "string") size += bytes(resource);
    }
  }
  return size;
}

/** An entry as EventBridge's validation message shows it (Java's toString of the request). */
function describeEntry(entry: Json): string {
  const field = (value: unknown) =>
    value === undefined || value === null
      ? "null"
      : Array.isArray(value)
        ? `[${value.join(", ")}]`
        : String(value);
  return `PutEventsRequestEntry(time=${field(entry.Time)}, source=${field(entry.Source)}, resources=${field(entry.Resources)}, detailType=${field(entry.DetailType)}, detail=${field(entry.Detail)}, eventBusName=${field(entry.EventBusName)}, traceHeader=${field(entry.TraceHeader)}, kmsKeyIdentifier=null, internalMetadata=null)`;
}
