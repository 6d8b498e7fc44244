import { CreateSecretCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { SQSClient } from "@aws-sdk/client-sqs";
import { TokenStore } from "../lib/credentials/token-store";
import { HubSpotClient } from "../lib/crm/hubspot-client";
import { ZohoCrmClient } from "../lib/crm/zoho-crm-client";
import { JobRecords } from "../lib/jobs/records";
import { DynamoCrmLedger } from "../lib/sync/crm-state";
import { type CrmSyncSummary, runScheduledSync } from "../lib/sync/crm-sync";
import { DynamoSyncLedger } from "../lib/sync/state";
import { parseSyncInput } from "../lib/sync/sync";
import { ZohoBooksClient } from "../lib/zoho/books-client";
import { startHubSpotSandbox } from "../local/hubspot";
import {
  CRM_SCOPES,
  contactId,
  crmAccountId,
  DEFAULT_SETTINGS,
  ORGANIZATION_ID,
} from "../local/sandbox";
import { SECRET_ID, startStack, startWorkers, stopStack, TABLE } from "./workers";

/** What one run cost: CRM calls and Books calls. */
export interface RunCost {
  crm_calls: number;
  books_calls: number;
}

/** The `crm_sync.<source>` row of bench/results.json. */
export interface CrmSyncFigures {
  accounts: number;
  changed: number;
  /** the daily full run before the changes (every record a rule decides, every Books contact) */
  full: RunCost;
  /** the hourly run after `changed` records changed in the CRM */
  incremental: RunCost;
  /** the next hourly run, once the worker has carried out the jobs (their contacts modified) */
  incremental_after_jobs: RunCost;
  /** jobs the incremental run queued, and where each ended once the workers stopped */
  jobs: number;
  done: number;
  held: number;
  parked: number;
  waiting: number;
  lost: number;
  /** guarded deactivations the run queued (the run cannot know which the worker holds) */
  guarded: number;
  /**
   * jobs the next runs queued again (0: a held job's contact keeps its pending item, saying why,
   * for 20 h), and the contacts they reported `held` instead
   */
  requeued: { next_incremental: number; next_full: number };
  held_reported: { next_incremental: number; next_full: number };
  /** DynamoDB requests for the kept Books statuses and CRM links, per run */
  ledger_requests: { full_first: number; full: number; incremental: number };
  /** Zoho CRM only: COQL credits of each run, and a day of 24 hourly runs and one full run */
  credits?: { full: number; incremental: number; per_day: number };
  /** Zoho CRM only: list rows without the integration's link (`zcrm_link` looked up) */
  links_without_row_ids?: {
    /** a full run on a ledger that knows no link: lookups (one Books call each, the cap) */
    first_full_lookups: number;
    first_full_books_calls: number;
    /** runs a full set of links takes to learn at the cap */
    runs_to_learn_all: number;
    /** the hourly run after 500 changes once the links are known */
    incremental: RunCost & { lookups: number };
  };
  seconds: number;
}

const ALL_SCOPES = [...DEFAULT_SETTINGS.grantedScopes, ...CRM_SCOPES];

/** A fresh local stack (Books and Zoho CRM sandbox, local AWS) and a CRM sync wired on it. */
async function setup(type: "zoho_crm" | "hubspot", accounts: number, maxChanges: number) {
  const stack = await startStack({
    contacts: accounts,
    sandbox: {
      rateLimitPerMinute: 1_000_000,
      concurrencyLimit: 1_000,
      grantedScopes: ALL_SCOPES,
      booksListCrmIds: true,
    },
    token: "fresh",
    env: { ZOHO_MINUTE_SHARE: "100000", ZOHO_DAILY_QUOTA: "1000000" },
  });
  const hubspot =
    type === "hubspot"
      ? await startHubSpotSandbox({ records: accounts, settings: { searchLagMs: 0 } })
      : undefined;
  const aws = {
    endpoint: stack.aws.url,
    region: "us-east-1",
    credentials: { accessKeyId: "bench", secretAccessKey: "bench" },
  };
  const secretsManager = new SecretsManagerClient(aws);
  if (hubspot)
    await secretsManager.send(
      new CreateSecretCommand({
        Name: "bench/hubspot",
        SecretString: JSON.stringify({ access_token: hubspot.token }),
      }),
    );
  const tokens = new TokenStore({
    secretId: SECRET_ID,
    secretsManager,
    dynamo: stack.dynamo,
    table: TABLE,
  });
  // the jobs the runs queue, read off the sync's own SQS client
  const sent: Array<{ job_id: string; contact_id: string; action: string }> = [];
  const sqs = new SQSClient(aws);
  sqs.middlewareStack.add(
    (next) => async (args) => {
      const input = args.input as { Entries?: Array<{ MessageBody?: string }> };
      for (const entry of input.Entries ?? []) sent.push(JSON.parse(entry.MessageBody ?? "{}"));
      return next(args);
    },
    { step: "initialize", name: "benchQueuedJobs" },
  );
  const records = new JobRecords({ dynamo: stack.dynamo, table: TABLE, retentionDays: 400 });
  const crmLedger = new DynamoCrmLedger({ dynamo: stack.dynamo, table: TABLE });
  const crm = new ZohoCrmClient({ tokens, timeoutMs: 10_000 });
  const hs =
    hubspot &&
    new HubSpotClient({
      secretsManager,
      secretId: "bench/hubspot",
      baseUrl: hubspot.url,
      timeoutMs: 10_000,
    });
  const deps = {
    books: new ZohoBooksClient({ tokens, lane: "bulk", timeoutMs: 10_000 }),
    tokens,
    sqs,
    records,
    ledger: new DynamoSyncLedger({ dynamo: stack.dynamo, table: TABLE }),
    crmLedger,
    queueUrl: stack.queues.bulk.queueUrl,
    timeoutMs: 10_000,
    zohoCrm: () => crm,
    ...(hs ? { hubspot: () => hs } : {}),
  };
  const source =
    type === "zoho_crm"
      ? {
          type,
          module: "Accounts",
          rules: [{ field: "Account_Type", active: ["Customer"], inactive: ["Former Customer"] }],
          match: ["books_id_field:Books_Contact_Id", "zcrm_link"],
        }
      : {
          type,
          object: "companies",
          rules: [{ field: "lifecyclestage", active: ["customer"], inactive: ["other"] }],
          match: ["books_id_field:zoho_books_contact_id"],
        };
  const credits = () => stack.sandbox.crm.stats().creditsSpent;
  const run = async (mode: "full" | "incremental") => {
    const before = credits();
    const summary = (await runScheduledSync(
      deps,
      parseSyncInput({
        organization_id: ORGANIZATION_ID,
        mode,
        source,
        apply_deactivations: true,
        max_changes: maxChanges,
      }),
    )) as CrmSyncSummary;
    return { summary, credits: credits() - before };
  };
  /** `changed` records change in the CRM: 90 % to customer, the rest to former customer */
  const change = async (changed: number) => {
    // activations of inactive contacts (every 4th), then deactivations of active customers
    // (Customers in both CRMs' seeds, customers in Books)
    const activations = Math.round(changed * 0.9);
    const activate = Array.from({ length: activations }, (_, i) => 4 * (i + 1));
    const deactivate: number[] = [];
    for (let n = 1; deactivate.length < changed - activations; n++)
      if (n % 4 !== 0 && n % 3 !== 0 && n % 7 !== 0) deactivate.push(n);
    for (const [list, active] of [
      [activate, true],
      [deactivate, false],
    ] as const)
      for (const n of list) {
        if (hubspot)
          hubspot.update("companies", String(2_000_000 + n), {
            lifecyclestage: active ? "customer" : "other",
          });
        else
          await stack.sandbox.crm.updateRecord("Accounts", crmAccountId(n), {
            Account_Type: active ? "Customer" : "Former Customer",
          });
      }
    return { activate, deactivate };
  };
  return {
    stack,
    sent,
    records,
    crmLedger,
    run,
    change,
    close: async () => {
      await hubspot?.close();
      await stopStack(stack);
    },
  };
}

const cost = ({ summary }: { summary: CrmSyncSummary }): RunCost => ({
  crm_calls: summary.crm_calls ?? 0,
  books_calls: summary.zoho_calls,
});

/**
 * The scenario of issue 18 item 5, for one CRM source: `accounts` CRM accounts (Zoho CRM) or
 * companies (HubSpot) linked to as many Books contacts (every 4th inactive), a full run, then
 * `changed` records changed in the CRM: 90 % become customers again (their contacts inactive:
 * activations), 10 % former customers (their contacts active: guarded deactivations), 40 % of
 * those with an outstanding receivable in Books (the worker holds them). The incremental run's
 * jobs are carried out by worker processes on the local stack, and each job's record says how
 * it ended.
 */
export async function crmSyncCost(
  type: "zoho_crm" | "hubspot",
  options: { accounts: number; changed: number; workers: number },
): Promise<CrmSyncFigures> {
  const t0 = Date.now();
  const bench = await setup(type, options.accounts, options.changed);
  const { stack, sent, records, run } = bench;
  try {
    const fullFirst = await run("full"); // writes the links and the statuses the first time
    const full = await run("full");
    const { deactivate } = await bench.change(options.changed);
    // the first 40 % of the deactivations owe: the guard holds them
    const owing = new Set(
      deactivate.slice(0, Math.round(deactivate.length * 0.4)).map((n) => contactId(n)),
    );
    for (const id of owing)
      stack.sandbox.setContactAmounts(id, { outstanding_receivable_amount: 250 });
    sent.length = 0;
    const incremental = await run("incremental");
    const jobs = [...sent];
    const workers = await startWorkers(stack, { queue: "bulk", processes: options.workers });
    await workers.exited;
    const ended = { done: 0, held: 0, parked: 0, waiting: 0 };
    for (const job of jobs) {
      const state = (await records.get(job.job_id))?.state;
      if (state === "done" || state === "held" || state === "parked") ended[state]++;
      else if (state === "queued" || state === "waiting") ended.waiting++;
    }
    // a job also counts as lost when Books is not as it should be after it
    const wrong = jobs.filter((job) => {
      const status = stack.sandbox.contact(job.contact_id)?.status;
      const expected =
        job.action === "activate" || owing.has(job.contact_id) ? "active" : "inactive";
      return status !== expected;
    }).length;
    sent.length = 0;
    const afterJobs = await run("incremental");
    const nextFull = await run("full");
    return {
      accounts: options.accounts,
      changed: options.changed,
      full: cost(full),
      incremental: cost(incremental),
      incremental_after_jobs: cost(afterJobs),
      jobs: jobs.length,
      ...ended,
      lost: jobs.length - ended.done - ended.held - ended.parked - ended.waiting + wrong,
      guarded: incremental.summary.guarded ?? 0,
      requeued: {
        next_incremental: afterJobs.summary.jobs_queued,
        next_full: nextFull.summary.jobs_queued,
      },
      held_reported: {
        next_incremental: afterJobs.summary.held,
        next_full: nextFull.summary.held,
      },
      ledger_requests: {
        full_first: fullFirst.summary.crm_ledger_requests ?? 0,
        full: full.summary.crm_ledger_requests ?? 0,
        incremental: incremental.summary.crm_ledger_requests ?? 0,
      },
      ...(type === "zoho_crm"
        ? {
            credits: {
              full: full.credits,
              incremental: incremental.credits,
              per_day: 24 * incremental.credits + full.credits,
            },
            links_without_row_ids: await withoutRowIds(options),
          }
        : {}),
      seconds: Math.round((Date.now() - t0) / 1000),
    };
  } finally {
    await bench.close();
  }
}

/**
 * Zoho CRM, list rows without `zcrm_account_id` (`booksListCrmIds` off), on a stack of its own:
 * with the links known (a full run kept them), the hourly run after `changed` accounts changed
 * looks none up; a full run on a ledger that knows no link looks up as many as a run may.
 */
async function withoutRowIds(options: { accounts: number; changed: number }) {
  const bench = await setup("zoho_crm", options.accounts, options.changed);
  try {
    await bench.run("full"); // rows carry the links: kept
    bench.stack.sandbox.settings.booksListCrmIds = false;
    await bench.change(options.changed);
    const incremental = (await bench.run("incremental")).summary;
    const known = await bench.crmLedger.links(ORGANIZATION_ID, "Accounts");
    await bench.crmLedger.saveLinks(ORGANIZATION_ID, "Accounts", {
      put: new Map(),
      remove: [...known.keys()],
    });
    const first = (await bench.run("full")).summary;
    const needed = (first.link_lookups ?? 0) + (first.link_lookups_skipped ?? 0);
    return {
      first_full_lookups: first.link_lookups ?? 0,
      first_full_books_calls: first.zoho_calls,
      runs_to_learn_all: Math.ceil(needed / Math.max(1, first.link_lookups ?? 1)),
      incremental: {
        crm_calls: incremental.crm_calls ?? 0,
        books_calls: incremental.zoho_calls,
        lookups: incremental.link_lookups ?? 0,
      },
    };
  } finally {
    await bench.close();
  }
}
