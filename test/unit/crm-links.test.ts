import { describe, expect, it } from "vitest";
import type { CrmLink } from "../../lib/sync/crm-state";
import { reconcileLinks } from "../../lib/sync/crm-sync";

// The kept Zoho CRM links corrected by the Books rows a run read (lib/sync/crm-sync.ts).

const lookup = (...contacts: string[]): CrmLink => ({ contacts, from: "lookup" });
const field = "zcrm_account_id" as const;

describe("reconcileLinks", () => {
  it("a row that carries the link moves its contact to the account it names, and forgets the old one", () => {
    const stored = new Map([["A1", lookup("c1")]]);
    const changes = reconcileLinks(stored, [{ contact_id: "c1", zcrm_account_id: "A2" }], {
      field,
      rowsCarryLinks: true,
      everyContact: false,
    });
    expect(changes).toEqual({
      put: new Map([["A2", { contacts: ["c1"], from: "rows" }]]),
      remove: ["A1"],
    });
    expect([...stored.keys()]).toEqual(["A2"]);
  });

  it("a row that carries no link (rows carrying links) unlinks its contact", () => {
    const stored = new Map([["A1", lookup("c1", "c2")]]);
    const changes = reconcileLinks(
      stored,
      [{ contact_id: "c1" }, { contact_id: "c3", zcrm_account_id: "A3" }],
      {
        field,
        rowsCarryLinks: true,
        everyContact: false,
      },
    );
    expect(changes.put.get("A1")).toEqual({ contacts: ["c2"], from: "rows" });
    expect(changes.put.get("A3")).toEqual({ contacts: ["c3"], from: "rows" });
    expect(changes.remove).toEqual([]);
  });

  it("a full listing forgets the contacts it does not hold (deleted), even when rows carry no link", () => {
    const stored = new Map([
      ["A1", lookup("c1")],
      ["A2", lookup("gone")],
      ["A3", lookup()], // looked up, linked to none: kept until it expires
    ]);
    const changes = reconcileLinks(stored, [{ contact_id: "c1" }], {
      field,
      rowsCarryLinks: false,
      everyContact: true,
    });
    expect(changes).toEqual({ put: new Map(), remove: ["A2"] });
    expect([...stored.keys()].sort()).toEqual(["A1", "A3"]);
  });

  it("rows of a partial read that carry no link change nothing", () => {
    const stored = new Map([["A1", lookup("c1")]]);
    const changes = reconcileLinks(stored, [{ contact_id: "c9" }], {
      field,
      rowsCarryLinks: false,
      everyContact: false,
    });
    expect(changes).toEqual({ put: new Map(), remove: [] });
  });

  it("writes nothing when the rows say what is kept", () => {
    const stored = new Map([["A1", { contacts: ["c1"], from: "rows" as const }]]);
    const changes = reconcileLinks(stored, [{ contact_id: "c1", zcrm_account_id: "A1" }], {
      field,
      rowsCarryLinks: true,
      everyContact: true,
    });
    expect(changes).toEqual({ put: new Map(), remove: [] });
  });
});
