/** The part of dynalite (no types of its own) the local endpoint uses. */
declare module "dynalite" {
  import type { Server } from "node:http";

  interface DynaliteOptions {
    /** how long a new table stays CREATING (default 500 ms) */
    createTableMs?: number;
    deleteTableMs?: number;
    updateTableMs?: number;
    /** a LevelDB directory; in memory when absent */
    path?: string;
  }

  /** An http.Server, not yet listening, whose "request" listener answers DynamoDB's JSON 1.0. */
  export default function dynalite(options?: DynaliteOptions): Server;
}
