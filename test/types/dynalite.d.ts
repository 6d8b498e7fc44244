declare module "dynalite" {
  import type { Server } from "node:http";
  /** dynalite's options (https://github.com/architect/dynalite): times in ms, in-memory unless `path` */
  export default function dynalite(options?: {
    createTableMs?: number;
    deleteTableMs?: number;
    updateTableMs?: number;
    path?: string;
  }): Server;
}
