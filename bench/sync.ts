import type { SQSClient } from "@aws-sdk/client-sqs";
import type { SyncLedger, SyncState } from "../lib/sync/state";
import { runSync, type SyncInput } from "../lib/sync/sync";
import { ZohoBooksClient } from "../lib/zoho/books-client";
import { contactId, ORGANIZATION_ID, startSandbox } from "../local/sandbox";

export interface SyncFigures {
  contacts: number;
  inactive: number;
  /** the most list calls an hourly (incremental) run made, over the runs below */
  list_calls_per_run: number;
  /** every hourly run: the first (no watermark yet), a quiet hour, an hour with changes in Books */
  list_calls_hourly_runs: number[];
  /** the daily full reconciliation (Status.All), which is what every run cost before */
  baseline_list_calls_per_run: number;
}

/**
 * List calls per sync run against the sandbox: an organization of `contacts` contacts, `inactive`
 * of them inactive, whose CRM wants every contact as it is (no deactivations applied). Hourly
 * runs beside the full listing of every contact (`Status.All`), the design every run used before.
 */
export async function syncCost(contacts: number, inactive: number): Promise<SyncFigures> {
  const sandbox = await startSandbox({
    contacts,
    inactiveEvery: Math.round(contacts / inactive),
    settings: { rateLimitPerMinute: 1_000_000 },
  });
  try {
    const token = () => ({
      accessToken: sandbox.issueToken().access_token,
      apiDomain: sandbox.url,
      expiresAt: Date.now() + 3_600_000,
    });
    const books = new ZohoBooksClient({
      tokens: { getAccessToken: async () => token(), replaceRejectedToken: async () => token() },
    });
    const states = new Map<string, SyncState>();
    const ledger: SyncLedger = {
      state: async (org) => states.get(org),
      saveState: async (org, state) => void states.set(org, state),
      pendingContacts: async () => new Map(),
      markPending: async () => undefined,
      unmarkPending: async () => undefined,
    };
    const sqs = {
      send: async (command: { input: { Entries?: Array<{ Id?: string }> } }) => ({
        Successful: (command.input.Entries ?? []).map((e) => ({ Id: e.Id, MessageId: e.Id })),
      }),
    } as unknown as SQSClient;
    const every = Math.round(contacts / inactive);
    const wanted = sandbox.contacts().map((c) => ({ contact_id: c.contact_id, status: c.status }));
    const inactiveCount = wanted.filter((c) => c.status === "inactive").length;
    const run = async (mode: SyncInput["mode"]) => {
      const summary = await runSync(
        {
          books,
          tokens: { getSecret: async () => ({}) as never },
          sqs,
          records: { accepted: async () => undefined, forget: async () => undefined },
          ledger,
          queueUrl: "bulk",
          timeoutMs: 10_000,
        },
        {
          organization_id: ORGANIZATION_ID,
          mode,
          source: { type: "inline", contacts: wanted },
          apply_deactivations: false,
          max_changes: 500,
          dry_run: false,
        },
      );
      return summary.list_calls;
    };
    const hourly: number[] = [];
    hourly.push(await run("incremental")); // no watermark yet
    sandbox.advanceClock(1800);
    hourly.push(await run("incremental")); // a quiet hour
    sandbox.advanceClock(1800);
    for (const k of [1, 2, 3]) sandbox.setContactStatus(contactId(k * every + 1), "inactive");
    hourly.push(await run("incremental")); // someone deactivated 3 contacts the CRM wants active
    const baseline = await run("full");
    return {
      contacts,
      inactive: inactiveCount,
      list_calls_per_run: Math.max(...hourly),
      list_calls_hourly_runs: hourly,
      baseline_list_calls_per_run: baseline,
    };
  } finally {
    await sandbox.close();
  }
}
