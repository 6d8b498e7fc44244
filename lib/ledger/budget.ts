import { randomUUID } from "node:crypto";
import {
  type AttributeValue,
  DeleteItemCommand,
  type DynamoDBClient,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import pRetry from "p-retry";
import { isAwsTransient, isServiceError, ServiceError } from "../errors";
import { logger, recordBudget, recordDailyRemaining } from "../observability";
import { getLedgerItem, isConditionFailed, ledgerError, num } from "./dynamo";
import { type LedgerKey, ledgerKeys } from "./keys";

/**
 * Who is calling Zoho, in priority order. Each lane has a ceiling on the one per-minute budget,
 * nested so that a lower lane never takes the last units of a higher one.
 */
export type Lane = "interactive" | "realtime" | "bulk";

/** Share of `ZOHO_MINUTE_SHARE` each lane may fill a minute up to (one place for the split). */
export const LANE_CEILING_FRACTION: Record<Lane, number> = {
  interactive: 1,
  realtime: 0.85,
  bulk: 0.6,
};

/** The calls a minute each lane may take, from the service's share of Zoho's limit. */
export function laneCeilings(minuteShare: number): Record<Lane, number> {
  return {
    interactive: minuteShare,
    realtime: Math.max(1, Math.floor(minuteShare * LANE_CEILING_FRACTION.realtime)),
    bulk: Math.max(1, Math.floor(minuteShare * LANE_CEILING_FRACTION.bulk)),
  };
}

/**
 * Concurrency slots a lane may hold, the low-numbered ones: realtime leaves the top slot to the
 * HTTP API's interactive calls (so one waits for at most one other HTTP call, never for the
 * worker), bulk leaves one more to realtime. With `ZOHO_CONCURRENCY` 1 or 2 the lanes share.
 */
export function laneSlots(concurrency: number, lane: Lane): number {
  const below = { interactive: 0, realtime: 1, bulk: 2 }[lane];
  return Math.max(1, concurrency - below);
}

export interface BudgetOptions {
  dynamo: DynamoDBClient;
  /** `ZOHO_LEDGER_TABLE` */
  table: string;
  /** calls a minute per organization the service allows itself (`ZOHO_MINUTE_SHARE`, default 80 of Zoho's 100) */
  minuteShare: number;
  /** Zoho calls in progress at once per organization (`ZOHO_CONCURRENCY`: 5 on Free, 10 on paid plans) */
  concurrency: number;
  /** the plan's daily calls, used only until Zoho reports its own (`ZOHO_DAILY_QUOTA`) */
  dailyQuota: number;
  /** a lease not released by then (a container died mid-call) frees its slot; longer than a call's timeout */
  leaseSeconds: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export interface AcquireOptions {
  /** how long this call may wait here for the budget; past that it fails with the wait it needs */
  maxWaitMs: number;
}

/** What Zoho's answer said about the quota. */
export interface QuotaReport {
  /** Zoho's `code` */
  zohoCode: number | undefined;
  /** `X-Rate-Limit-Limit`, `-Remaining`, `-Reset` (seconds until the daily quota resets) */
  headers: { get(name: string): string | null } | undefined;
}

/** One Zoho call's share of the budget; release it once Zoho has answered (or not). */
export interface CallPermit {
  /**
   * `report`: Zoho's answer; `"not sent"`: the request never left the container (no connection),
   * so Zoho counted nothing and the minute's and the day's units are given back
   */
  release(report?: QuotaReport | "not sent"): Promise<void>;
}

/** Two readings of Zoho's reset closer than this are the same daily window (whole seconds, latency). */
const SAME_WINDOW_MS = 3_000;
/**
 * After a 45 that reported no window (no `X-Rate-Limit-*` headers), Zoho's reset is unknown: one
 * call an hour, from one container, asks whether the day has turned, instead of a guessed reset.
 */
const PROBE_INTERVAL_MS = 3_600_000;
/** After a probe Zoho took, the next unreported day is guessed to end a day later, less the hour the probe may have been late. */
const DAY_AFTER_PROBE_MS = 86_400_000 - PROBE_INTERVAL_MS;
/** How often a caller looks again for a free concurrency slot. */
const SLOT_POLL_MS = 100;
/** A wait for a concurrency slot longer than this is not waited here. */
const MAX_SLOT_WAIT_MS = 5_000;

interface DailyWindow {
  remaining: number;
  resetAt: number;
}

/**
 * The Zoho budget of every organization, shared by every container through the ledger table:
 * the calls of the current calendar minute (split in lanes), the daily quota as Zoho reports it
 * in its `X-Rate-Limit-*` headers, and the calls in progress (leases with expiry). Each Zoho
 * call takes a permit first and releases it with Zoho's answer.
 *
 * @example
 * const budget = new ZohoBudget({ dynamo, table, minuteShare: 80, concurrency: 5, dailyQuota: 1000, leaseSeconds: 15 });
 * const permit = await budget.acquire("123456789", "realtime", { maxWaitMs: 30_000 });
 * try { response = await fetch(…) } finally { await permit.release({ zohoCode, headers: response?.headers }) }
 */
export class ZohoBudget {
  readonly #options: Required<BudgetOptions>;
  readonly #ceilings: Record<Lane, number>;
  /** per organization: the daily quota is known to be used up until then (saves a read per job) */
  readonly #exhaustedUntil = new Map<string, number>();

  constructor(options: BudgetOptions) {
    this.#options = {
      now: () => Date.now(),
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
      ...options,
    };
    this.#ceilings = laneCeilings(options.minuteShare);
  }

  /**
   * Takes one call's worth of budget for `organizationId` in `lane`: a unit of the current
   * minute (waiting for the next minute if that fits in `maxWaitMs`), a unit of the daily quota,
   * and a concurrency slot. Throws `ZOHO_RATE_LIMITED` or `ZOHO_DAILY_LIMIT` with the wait it
   * needs when it cannot have them in time.
   */
  async acquire(organizationId: string, lane: Lane, options: AcquireOptions): Promise<CallPermit> {
    try {
      const permit = await this.#acquire(organizationId, lane, options);
      recordBudget("granted", lane);
      return permit;
    } catch (error) {
      const code = isServiceError(error) ? error.code : undefined;
      if (code === "ZOHO_RATE_LIMITED" || code === "ZOHO_DAILY_LIMIT")
        recordBudget("refused", lane);
      throw error;
    }
  }

  async #acquire(organizationId: string, lane: Lane, options: AcquireOptions): Promise<CallPermit> {
    const deadline = this.#options.now() + options.maxWaitMs;
    this.#checkKnownExhausted(organizationId);
    const minute = await this.#takeMinute(organizationId, lane, deadline);
    let probe: boolean;
    try {
      probe = await this.#takeDaily(organizationId);
    } catch (error) {
      await this.#giveBackMinute(organizationId, minute);
      throw error;
    }
    let holder: { slot: number; holder: string };
    try {
      holder = await this.#takeSlot(organizationId, lane);
    } catch (error) {
      await Promise.all([
        this.#giveBackMinute(organizationId, minute),
        this.#giveBackDaily(organizationId),
      ]);
      throw error;
    }
    let released = false;
    return {
      release: async (report) => {
        if (released) return;
        released = true;
        await Promise.all([
          this.#releaseSlotRetrying(organizationId, holder),
          report === "not sent"
            ? Promise.all([
                this.#giveBackMinute(organizationId, minute),
                this.#giveBackDaily(organizationId),
              ])
            : // the next answer reports the quota again
              report && this.#record(organizationId, report, probe).catch(() => undefined),
        ]);
      },
    };
  }

  /** The daily window as the ledger has it (for reports and tests). */
  async dailyWindow(organizationId: string): Promise<DailyWindow | undefined> {
    const item = await this.#get(ledgerKeys.daily(organizationId));
    if (!item) return undefined;
    return { remaining: num(item.remaining), resetAt: num(item.reset_at) };
  }

  // --- the minute -------------------------------------------------------------------------

  async #takeMinute(organizationId: string, lane: Lane, deadline: number): Promise<number> {
    for (;;) {
      const now = this.#options.now();
      const minute = Math.floor(now / 60_000);
      try {
        await this.#send(
          new UpdateItemCommand({
            TableName: this.#options.table,
            Key: ledgerKeys.minute(organizationId, minute),
            UpdateExpression: "ADD calls :one SET expires_at = :ttl",
            ConditionExpression: "attribute_not_exists(calls) OR calls < :ceiling",
            ExpressionAttributeValues: {
              ":one": { N: "1" },
              ":ceiling": { N: String(this.#ceilings[lane]) },
              ":ttl": { N: String((minute + 60) * 60) },
            },
          }),
        );
        return minute;
      } catch (error) {
        if (!isConditionFailed(error)) throw ledgerError(error, this.#options.table);
      }
      const nextMinute = (minute + 1) * 60_000;
      if (nextMinute > deadline) {
        throw new ServiceError(
          "ZOHO_RATE_LIMITED",
          `The service's ${lane} budget of ${this.#ceilings[lane]} Zoho calls a minute for organization ${organizationId} is used up until the next minute.`,
          { retryAfterSeconds: Math.max(1, Math.ceil((nextMinute - now) / 1000)) },
        );
      }
      // A little after the minute turns, spread so that waiting containers do not all arrive at once.
      await this.#options.sleep(nextMinute - now + Math.floor(Math.random() * 250));
    }
  }

  async #giveBackMinute(organizationId: string, minute: number): Promise<void> {
    await this.#send(
      new UpdateItemCommand({
        TableName: this.#options.table,
        Key: ledgerKeys.minute(organizationId, minute),
        UpdateExpression: "ADD calls :minusOne",
        ExpressionAttributeValues: { ":minusOne": { N: "-1" } },
      }),
    ).catch(() => undefined);
  }

  /** Zoho said 44: the organization is blocked for the rest of the minute, whoever used it up. */
  async #closeMinute(organizationId: string): Promise<void> {
    const minute = Math.floor(this.#options.now() / 60_000);
    await this.#send(
      new UpdateItemCommand({
        TableName: this.#options.table,
        Key: ledgerKeys.minute(organizationId, minute),
        UpdateExpression: "SET calls = :full, expires_at = :ttl",
        ExpressionAttributeValues: {
          ":full": { N: String(this.#ceilings.interactive) },
          ":ttl": { N: String((minute + 60) * 60) },
        },
      }),
    );
  }

  // --- the day ----------------------------------------------------------------------------

  #checkKnownExhausted(organizationId: string): void {
    const until = this.#exhaustedUntil.get(organizationId);
    if (until !== undefined && until > this.#options.now()) throw this.#dailyLimit(until);
  }

  #dailyLimit(resetAt: number): ServiceError {
    return new ServiceError(
      "ZOHO_DAILY_LIMIT",
      `The organization's daily Zoho Books API quota is used up until ${new Date(resetAt).toISOString()} (Zoho's reset).`,
      { retryAfterSeconds: Math.max(1, Math.ceil((resetAt - this.#options.now()) / 1000)) },
    );
  }

  /** Takes a unit of the day; true when this call is the day's probe (see PROBE_INTERVAL_MS). */
  async #takeDaily(organizationId: string): Promise<boolean> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const now = this.#options.now();
      try {
        await this.#send(
          new UpdateItemCommand({
            TableName: this.#options.table,
            Key: ledgerKeys.daily(organizationId),
            UpdateExpression: "ADD remaining :minusOne",
            ConditionExpression: "remaining > :zero AND reset_at > :now",
            ExpressionAttributeValues: {
              ":minusOne": { N: "-1" },
              ":zero": { N: "0" },
              ":now": { N: String(now) },
            },
          }),
        );
        return false;
      } catch (error) {
        if (!isConditionFailed(error)) throw ledgerError(error, this.#options.table);
      }
      const item = await this.#get(ledgerKeys.daily(organizationId));
      const resetAt = item ? num(item.reset_at) : 0;
      if (resetAt > now) {
        if (num(item?.remaining) > 0) continue; // opened by another call since our try
        // a probe's hour is not remembered here: the probe may open the day in a moment
        if (item?.probing?.BOOL !== true) this.#exhaustedUntil.set(organizationId, resetAt);
        throw this.#dailyLimit(resetAt);
      }
      // No window yet, or it has passed: open the next one with this call as its first. Zoho's
      // windows repeat daily, so the next reset follows the last one Zoho reported; without
      // any, the plan's cap until UTC midnight. The next answer's headers correct both.
      // After an unreported 45 the next window is a probe: this one call, for the next hour.
      const probe = item?.probing?.BOOL === true;
      const nextReset = probe
        ? now + PROBE_INTERVAL_MS
        : resetAt > 0 && item?.reported?.BOOL
          ? resetAt + Math.ceil((now - resetAt + 1) / 86_400_000) * 86_400_000
          : nextUtcMidnight(now);
      const opened = await this.#send(
        new UpdateItemCommand({
          TableName: this.#options.table,
          Key: ledgerKeys.daily(organizationId),
          UpdateExpression:
            "SET remaining = :remaining, quota = :quota, reset_at = :reset, reported = :false, expires_at = :ttl",
          ConditionExpression: "attribute_not_exists(reset_at) OR reset_at <= :now",
          ExpressionAttributeValues: {
            ":remaining": { N: String(probe ? 0 : this.#options.dailyQuota - 1) },
            ":quota": { N: String(this.#options.dailyQuota) },
            ":reset": { N: String(nextReset) },
            ":false": { BOOL: false },
            ":now": { N: String(now) },
            ":ttl": { N: String(Math.ceil(nextReset / 1000) + 86_400) },
          },
        }),
      ).then(
        () => true,
        (error: unknown) => {
          if (isConditionFailed(error)) return false; // another container opened it first
          throw ledgerError(error, this.#options.table);
        },
      );
      if (opened) return probe;
    }
    throw new ServiceError(
      "ZOHO_RATE_LIMITED",
      `The daily quota of organization ${organizationId} is being updated by other calls; try again.`,
      { retryAfterSeconds: 1 },
    );
  }

  async #giveBackDaily(organizationId: string): Promise<void> {
    await this.#send(
      new UpdateItemCommand({
        TableName: this.#options.table,
        Key: ledgerKeys.daily(organizationId),
        UpdateExpression: "ADD remaining :one",
        ConditionExpression: "attribute_exists(remaining)",
        ExpressionAttributeValues: { ":one": { N: "1" } },
      }),
    ).catch(() => undefined);
  }

  /** Zoho's answer: its daily quota headers, a 45 (used up) or a 44 (the minute is closed). */
  async #record(organizationId: string, report: QuotaReport, probe: boolean): Promise<void> {
    const now = this.#options.now();
    const header = (name: string) => {
      const value = report.headers?.get(name);
      return value != null && /^\d+$/.test(value.trim()) ? Number(value) : undefined;
    };
    const quota = header("x-rate-limit-limit");
    let remaining = header("x-rate-limit-remaining");
    const resetIn = header("x-rate-limit-reset");
    const work: Array<Promise<unknown>> = [];
    if (report.zohoCode === 44) work.push(this.#closeMinute(organizationId));
    if (report.zohoCode === 45) remaining = 0; // whatever the headers say: nothing more today
    if (resetIn !== undefined && remaining !== undefined) {
      recordDailyRemaining(remaining);
      work.push(
        this.#reportWindow(organizationId, { quota, remaining, resetAt: now + resetIn * 1000 }),
      );
    } else if (report.zohoCode === 45) {
      work.push(this.#closeDay(organizationId));
    } else if (probe) {
      work.push(this.#endProbe(organizationId));
    }
    await Promise.all(work);
  }

  /**
   * A window Zoho reported. A reset later than the stored one (or a stored guess) starts a new
   * window; the same window only ever lowers what remains, since calls in flight were already
   * taken from it; a late answer from an earlier window changes nothing.
   */
  async #reportWindow(
    organizationId: string,
    reported: { quota: number | undefined; remaining: number; resetAt: number },
  ): Promise<void> {
    // Zoho's count does not yet hold the calls still in flight beside this one (at most
    // ZOHO_CONCURRENCY - 1): keep them out of what remains, so the last calls of the day never
    // meet a 45.
    const usable = Math.max(0, reported.remaining - (this.#options.concurrency - 1));
    const remaining: AttributeValue = { N: String(usable) };
    const low: AttributeValue = { N: String(reported.resetAt - SAME_WINDOW_MS) };
    const high: AttributeValue = { N: String(reported.resetAt + SAME_WINDOW_MS) };
    const conditional = (command: UpdateItemCommand) =>
      this.#send(command).then(
        () => true,
        (error: unknown) => {
          if (isConditionFailed(error)) return false;
          throw error;
        },
      );
    const newWindow = await conditional(
      new UpdateItemCommand({
        TableName: this.#options.table,
        Key: ledgerKeys.daily(organizationId),
        UpdateExpression:
          "SET remaining = :remaining, quota = :quota, reset_at = :reset, reported = :true, probing = :false, expires_at = :ttl",
        ConditionExpression:
          "attribute_not_exists(reset_at) OR reported = :false OR reset_at < :low",
        ExpressionAttributeValues: {
          ":remaining": remaining,
          ":reset": { N: String(reported.resetAt) },
          ":low": low,
          ":true": { BOOL: true },
          ":false": { BOOL: false },
          ":quota": { N: String(reported.quota ?? this.#options.dailyQuota) },
          ":ttl": { N: String(Math.ceil(reported.resetAt / 1000) + 86_400) },
        },
      }),
    );
    const lowered =
      newWindow ||
      (await conditional(
        new UpdateItemCommand({
          TableName: this.#options.table,
          Key: ledgerKeys.daily(organizationId),
          UpdateExpression: "SET remaining = :remaining",
          ConditionExpression: "reset_at BETWEEN :low AND :high AND remaining > :remaining",
          ExpressionAttributeValues: { ":remaining": remaining, ":low": low, ":high": high },
        }),
      ));
    if (newWindow) this.#exhaustedUntil.delete(organizationId);
    if (lowered && usable <= 0) this.#exhaustedUntil.set(organizationId, reported.resetAt);
  }

  /**
   * A 45 without headers: nothing more until the reset Zoho reported for this window, if it
   * did; else until the next probe, an hour on (Zoho's reset is unknown: no guess of it holds).
   */
  async #closeDay(organizationId: string): Promise<void> {
    const now = this.#options.now();
    const item = await this.#get(ledgerKeys.daily(organizationId));
    const stored = item ? num(item.reset_at) : 0;
    const known = item?.reported?.BOOL === true && stored > now;
    const resetAt = known ? stored : now + PROBE_INTERVAL_MS;
    await this.#send(
      new UpdateItemCommand({
        TableName: this.#options.table,
        Key: ledgerKeys.daily(organizationId),
        UpdateExpression:
          "SET remaining = :zero, reset_at = :reset, quota = if_not_exists(quota, :quota), reported = if_not_exists(reported, :false), probing = :probing, expires_at = :ttl",
        ExpressionAttributeValues: {
          ":zero": { N: "0" },
          ":reset": { N: String(resetAt) },
          ":quota": { N: String(this.#options.dailyQuota) },
          ":false": { BOOL: false },
          ":probing": { BOOL: !known },
          ":ttl": { N: String(Math.ceil(resetAt / 1000) + 86_400) },
        },
      }),
    );
    this.#exhaustedUntil.set(organizationId, resetAt);
  }

  /** The probe went through without a 45: Zoho's day has turned, the plan's quota is open again. */
  async #endProbe(organizationId: string): Promise<void> {
    const now = this.#options.now();
    const resetAt = now + DAY_AFTER_PROBE_MS;
    await this.#send(
      new UpdateItemCommand({
        TableName: this.#options.table,
        Key: ledgerKeys.daily(organizationId),
        UpdateExpression:
          "SET remaining = :remaining, reset_at = :reset, probing = :false, expires_at = :ttl",
        ConditionExpression: "probing = :true",
        ExpressionAttributeValues: {
          ":remaining": { N: String(this.#options.dailyQuota - 1) },
          ":reset": { N: String(resetAt) },
          ":true": { BOOL: true },
          ":false": { BOOL: false },
          ":ttl": { N: String(Math.ceil(resetAt / 1000) + 86_400) },
        },
      }),
    ).catch((error: unknown) => {
      if (!isConditionFailed(error)) throw error; // a reported window came first: it stands
    });
    this.#exhaustedUntil.delete(organizationId);
  }

  // --- calls in progress ------------------------------------------------------------------

  /** A slot frees as soon as a call ends, so a short wait for one is always worth it. */
  async #takeSlot(organizationId: string, lane: Lane): Promise<{ slot: number; holder: string }> {
    const slots = laneSlots(this.#options.concurrency, lane);
    const holder = randomUUID();
    const started = Date.now(); // real time: the wait must end even under a test's frozen clock
    for (;;) {
      const now = this.#options.now();
      for (const slot of slotOrder(slots, lane)) {
        const until = now + this.#options.leaseSeconds * 1000;
        try {
          await this.#send(
            new UpdateItemCommand({
              TableName: this.#options.table,
              Key: ledgerKeys.lease(organizationId, slot),
              UpdateExpression: "SET holder = :holder, lease_until = :until, expires_at = :ttl",
              ConditionExpression: "attribute_not_exists(lease_until) OR lease_until < :now",
              ExpressionAttributeValues: {
                ":holder": { S: holder },
                ":until": { N: String(until) },
                ":now": { N: String(now) },
                ":ttl": { N: String(Math.ceil(until / 1000) + 3600) },
              },
            }),
          );
          return { slot, holder };
        } catch (error) {
          if (!isConditionFailed(error)) throw ledgerError(error, this.#options.table);
        }
      }
      if (Date.now() - started + SLOT_POLL_MS > MAX_SLOT_WAIT_MS) {
        throw new ServiceError(
          "ZOHO_RATE_LIMITED",
          `All ${slots} Zoho calls in progress allowed for organization ${organizationId} (${lane}) are taken.`,
          { retryAfterSeconds: 2 },
        );
      }
      await this.#options.sleep(SLOT_POLL_MS + Math.floor(Math.random() * SLOT_POLL_MS));
    }
  }

  /**
   * Frees the slot, trying again (4 tries in about 0.4 s) when DynamoDB throttles or fails for
   * a moment: a slot left held blocks the organization's next call until its lease expires. What
   * still fails is logged, and the lease frees the slot then.
   */
  async #releaseSlotRetrying(organizationId: string, lease: { slot: number; holder: string }) {
    await pRetry(() => this.#releaseSlot(organizationId, lease), {
      retries: 3,
      minTimeout: 50,
      factor: 2,
      randomize: true,
      shouldRetry: ({ error }) => isAwsTransient(error),
    }).catch((error: unknown) =>
      logger.warn("Could not release a concurrency slot; it frees when its lease expires", {
        organization_id: organizationId,
        slot: lease.slot,
        lease_seconds: this.#options.leaseSeconds,
        error: (error as Error).name,
      }),
    );
  }

  async #releaseSlot(organizationId: string, lease: { slot: number; holder: string }) {
    await this.#send(
      new DeleteItemCommand({
        TableName: this.#options.table,
        Key: ledgerKeys.lease(organizationId, lease.slot),
        ConditionExpression: "holder = :holder",
        ExpressionAttributeValues: { ":holder": { S: lease.holder } },
      }),
    ).catch((error: unknown) => {
      if (!isConditionFailed(error)) throw error; // expired and taken over: not ours to free
    });
  }

  // --- plumbing ---------------------------------------------------------------------------

  #get(key: LedgerKey) {
    return getLedgerItem(this.#options.dynamo, this.#options.table, key);
  }

  #send(command: UpdateItemCommand | DeleteItemCommand) {
    // biome-ignore lint/suspicious/noExplicitAny: one client, two command types
    return this.#options.dynamo.send(command as any);
  }
}

/**
 * The order a caller tries its lane's slots in: the slot only its lane may take first (the
 * interactive lane's top slot is free whenever no other HTTP call holds it), the rest from a
 * random start so that callers spread over them.
 */
function slotOrder(slots: number, lane: Lane): number[] {
  const start = Math.floor(Math.random() * slots);
  const order = Array.from({ length: slots }, (_, i) => (start + i) % slots);
  if (lane !== "interactive") return order;
  return [slots - 1, ...order.filter((slot) => slot !== slots - 1)];
}

function nextUtcMidnight(now: number): number {
  return (Math.floor(now / 86_400_000) + 1) * 86_400_000;
}
