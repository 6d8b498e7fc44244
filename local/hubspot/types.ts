import type { ObjectType, SeedOptions, SeedRecord } from "./seed";
import type { HubSpotSettings } from "./settings";

export interface HubSpotSandboxOptions extends SeedOptions {
  /** 0 or absent: a free port */
  port?: number;
  /** over DEFAULT_SETTINGS; `reset()` comes back to these. Invalid ones make the start throw. */
  settings?: Partial<HubSpotSettings>;
}

/** What a request is counted as. */
export type HubSpotEndpoint = "search" | "read" | "batchRead" | "unknown";

/** Counts of API requests (control requests are not counted), for tests and the bench. */
export interface HubSpotStats {
  /** search requests, whatever their answer */
  searchCalls: number;
  /** every other API request (read by id, batch read, unknown paths) */
  otherCalls: number;
  /** HTTP 429 answers, by policy */
  throttled: { SECONDLY: number; TEN_SECONDLY_ROLLING: number; DAILY: number };
  calls: Partial<Record<HubSpotEndpoint, number>>;
  /** by HTTP status */
  byStatus: Record<string, number>;
}

/** A record as the sandbox keeps it; `properties` holds strings only, an absent key is no value. */
export type HubSpotRecord = SeedRecord;

/** Property values for a write: a string, a number, or null/"" to clear. Datetimes as ISO or epoch ms. */
export type PropertyValues = Record<string, string | number | null>;

export interface HubSpotSandbox {
  /** e.g. http://127.0.0.1:41234: the API root (`/crm/v3/…`) and the control API (`/__hubspot/…`) */
  url: string;
  /** the private-app token to send as `Authorization: Bearer …` */
  token: string;
  /** live and mutable: read on every request */
  settings: HubSpotSettings;
  /** Stops at once: open connections are destroyed, not awaited. */
  close(): Promise<void>;
  /** Reseeds; clears stats, rate windows and the clock offset; restores the start settings. */
  reset(): void;
  /** Moves the sandbox clock (rate windows, the daily reset, search lag, modified dates). */
  advanceClock(seconds: number): void;
  /** the sandbox clock, in ms since the epoch */
  now(): number;
  /** Creates a record now (search sees it after `searchLagMs`); throws on an invalid property. */
  create(type: ObjectType, properties: PropertyValues): HubSpotRecord;
  /** Changes a record's properties and bumps its last-modified date; throws for an unknown id. */
  update(type: ObjectType, id: string, properties: PropertyValues): HubSpotRecord;
  /** Archives a record (HubSpot's delete): gone from search, 404 by id unless `archived=true`. */
  archive(type: ObjectType, id: string): HubSpotRecord;
  /** a record as read by id sees it now (archived ones included) */
  record(type: ObjectType, id: string): HubSpotRecord | undefined;
  /** every record of the type, as read by id sees them now, by id */
  records(type: ObjectType): HubSpotRecord[];
  stats(): HubSpotStats;
  /** Forgets the stats. */
  clearStats(): void;
}
