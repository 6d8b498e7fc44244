import { randomUUID } from "node:crypto";
import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  UpdateItemCommand,
  type UpdateItemCommandInput,
} from "@aws-sdk/client-dynamodb";
import pRetry from "p-retry";
import { isServiceError, ServiceError } from "../errors";
import { logger, recordBudget, recordDailyRemaining } from "../observability";
import { isConditionFailed, ledgerError } from "./dynamo";
import { ledgerKeys } from "./keys";
import {
  type BudgetView,
  budgetView,
  bulkPace,
  CLOCK_TOLERANCE_MS,
  DEMAND_MEMORY_MS,
  freesAt,
  KEPT_PLACE_MS,
  KEPT_PREFIX,
  type Lane,
  laneLimit,
  laneSlots,
  MARK_RETENTION_MS,
  marksToMerge,
  slotLimits,
  turnWaitMs,
  WINDOW_MS,
  waiterLive,
  waitersAhead,
  windowBase,
} from "./window";

export type { Lane } from "./window";

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
   * `report`: Zoho's answer; `"not sent"`: the request never left the container (no
   * connection), so Zoho counted nothing and the day's unit is given back (the minute's stays
   * counted until it leaves the window: taking it back could let a later call through early)
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
/** Daily windows one call opens at most (another container's may open between its reads). */
const MAX_DAY_OPENINGS = 3;
/** A wait for a concurrency slot longer than this is not waited here. */
const MAX_SLOT_WAIT_MS = 5_000;
/** Old marks a take removes at most (keeps its expression small; takes are many). */
const MARKS_REMOVED_PER_TAKE = 20;
/** The budget item outlives two days of silence (DynamoDB's TTL); any call renews it. */
const ITEM_TTL_SECONDS = 2 * 86_400;

/** One acquire()'s state while it waits for its permit. */
interface Call {
  organizationId: string;
  lane: Lane;
  /** its lease's (and its place in a queue's) key in the item */
  holder: string;
  /** how long it may wait for the minute (the caller's maxWaitMs) */
  deadline: number;
  /** how long it may wait for a slot (real time) */
  slotWaitEnds: number;
  /** the budget item as it last saw it, and whether this call read or wrote it (else it may be old) */
  view: BudgetView;
  fresh: boolean;
  /** whether it is in its lane's queue for a slot */
  queued: boolean;
  /** refusals so far (slots taken, or other writers in between): each try waits a little longer */
  early: number;
  /** it slept until its turn: the next pass tries, whatever its (old) view says */
  due: boolean;
  /** a higher lane refused a unit has written its demand once */
  demandShown: boolean;
  /** times it found no daily window and opened one */
  openings: number;
}

/** What keeps a lane from taking a call now, as a view shows it. */
type Obstacle =
  | { kind: "no day" } // no daily window yet, or it has ended: open the next
  | { kind: "day used up"; resetAt: number; probing: boolean }
  | { kind: "closed"; until: number } // Zoho said 44
  | { kind: "minute"; until: number }; // the lane's part of the window (or bulk's pace) is full

/**
 * The Zoho budget of every organization, shared by every container through one ledger item
 * per organization: the calls of the last minute (a sliding window, split in lanes that use
 * what higher lanes leave), the calls in progress (leases with expiry), and the daily quota as
 * Zoho reports it in its `X-Rate-Limit-*` headers. A Zoho call takes a permit with one
 * conditional write and releases it with another, and Zoho's answer. See lib/ledger/window.ts
 * and docs/design.md.
 *
 * @example
 * const budget = new ZohoBudget({ dynamo, table, minuteShare: 80, concurrency: 5, dailyQuota: 1000, leaseSeconds: 15 });
 * const permit = await budget.acquire("123456789", "realtime", { maxWaitMs: 30_000 });
 * try { response = await fetch(…) } finally { await permit.release({ zohoCode, headers: response?.headers }) }
 */
export class ZohoBudget {
  readonly #options: Required<BudgetOptions>;
  /** per organization: the daily quota is known to be used up until then (saves a write per job) */
  readonly #exhaustedUntil = new Map<string, number>();
  /** per organization: the budget item as this container last saw it */
  readonly #views = new Map<string, BudgetView>();
  /** per organization: the places in a slot queue this container's releases kept for its next calls */
  readonly #kept = new Map<string, { lane: Lane; holder: string; at: number }[]>();
  /** how long this container's calls hold their slot (a moving average), to time a wait for one */
  #holdMs = 250;

  constructor(options: BudgetOptions) {
    this.#options = {
      now: () => Date.now(),
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
      ...options,
    };
  }

  /**
   * Takes one call's worth of budget for `organizationId` in `lane`: a unit of the sliding
   * minute (waiting for one to free if that fits in `maxWaitMs`), a unit of the daily quota,
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

  /** The daily window as the ledger has it (for reports and tests). */
  async dailyWindow(organizationId: string) {
    const view = await this.#read(organizationId);
    return view.daily.resetAt > 0
      ? { remaining: view.daily.remaining, resetAt: view.daily.resetAt }
      : undefined;
  }

  async #acquire(organizationId: string, lane: Lane, options: AcquireOptions): Promise<CallPermit> {
    this.#checkKnownExhausted(organizationId);
    const call = await this.#startCall(organizationId, lane, options);
    try {
      for (;;) {
        const now = this.#options.now();
        const obstacle = this.#obstacle(call.view, lane, now);
        if (obstacle) await this.#overcome(call, obstacle, now);
        else if (!(await this.#awaitTurn(call, now))) {
          const taken = await this.#take(call, now);
          if (taken) return this.#permit(call, taken.daily.probing, now);
          await this.#afterRefusal(call, now);
        }
      }
    } catch (error) {
      await this.#leaveQueue(call);
      throw error;
    }
  }

  async #startCall(organizationId: string, lane: Lane, options: AcquireOptions): Promise<Call> {
    const kept = this.#claimKeptPlace(organizationId, lane);
    const seen = this.#views.get(organizationId);
    return {
      organizationId,
      lane,
      holder: kept ?? randomUUID(),
      deadline: this.#options.now() + options.maxWaitMs,
      slotWaitEnds: Date.now() + MAX_SLOT_WAIT_MS, // real time: ends under a frozen test clock too
      view: seen ?? (await this.#read(organizationId)),
      fresh: seen === undefined,
      queued: kept !== undefined,
      early: 0,
      due: false,
      demandShown: false,
      openings: 0,
    };
  }

  /** A fresh place a release of this container kept in the lane's queue, now this call's (each serves one call). */
  #claimKeptPlace(organizationId: string, lane: Lane): string | undefined {
    const now = this.#options.now();
    const fresh = (this.#kept.get(organizationId) ?? []).filter((k) => now - k.at < KEPT_PLACE_MS);
    const mine = fresh.findIndex((k) => k.lane === lane);
    const [claimed] = mine < 0 ? [] : fresh.splice(mine, 1);
    this.#kept.set(organizationId, fresh);
    return claimed?.holder;
  }

  /** Opens the day, or waits out the minute; throws when the limit outlasts the call's wait. */
  async #overcome(call: Call, obstacle: Obstacle, now: number): Promise<void> {
    const { organizationId, lane } = call;
    if (obstacle.kind === "no day") {
      // Opened by this write or another's; an item that still has no day after a few tries is
      // not one the budget can use (never a loop without end).
      if (++call.openings > MAX_DAY_OPENINGS) throw this.#busy(organizationId);
      await this.#openDay(organizationId, call.view, now);
      this.#refresh(call, await this.#read(organizationId));
      return;
    }
    if (obstacle.kind === "day used up") {
      // an old view: the day may have opened since
      if (!call.fresh) return this.#refresh(call, await this.#read(organizationId));
      // a probe's hour is not remembered here: the probe may open the day in a moment
      if (!obstacle.probing) this.#exhaustedUntil.set(organizationId, obstacle.resetAt);
      throw this.#dailyLimit(obstacle.resetAt);
    }
    // the minute: a higher lane makes its demand seen, so the lower lanes leave it the units that free
    if (!call.demandShown && lane !== "bulk") {
      call.demandShown = true;
      await this.#showDemand(organizationId, lane, now);
    }
    if (obstacle.until > call.deadline) throw this.#minuteUsed(organizationId, lane, obstacle, now);
    // a little after the unit frees, spread so that waiting containers do not all arrive at once
    await this.#options.sleep(obstacle.until - now + Math.floor(Math.random() * 10));
    call.view = this.#views.get(organizationId) ?? call.view;
  }

  /**
   * The slots, for real-time and bulk calls: joins the queue when they are all taken or others
   * wait, then sleeps until its turn. True when it did either (look again), false to try now.
   */
  async #awaitTurn(call: Call, now: number): Promise<boolean> {
    const { organizationId, lane, holder } = call;
    if (lane === "interactive" || call.due) {
      call.due = false;
      return false;
    }
    const turn = this.#turnWaitMs(call.view, lane, holder, now);
    const wait = Math.max(turn, call.early && 10 * 2 ** call.early);
    if (wait === 0) return false;
    if (!call.queued) {
      call.queued = true;
      this.#refresh(call, await this.#enqueue(organizationId, lane, holder, now));
      return true;
    }
    if (Date.now() + wait > call.slotWaitEnds) throw this.#slotsTaken(call);
    await this.#options.sleep(wait);
    call.due = true; // its turn, as far as it knows: it tries once, and learns the item either way
    return true;
  }

  /**
   * A take refused: the item as the write found it says why; the next pass acts on it. When it
   * shows nothing in the way, other containers wrote in between (a slot freed since): it tries
   * again after a moment, a little longer each time, for as long as it may wait for a slot.
   */
  async #afterRefusal(call: Call, now: number): Promise<void> {
    const { organizationId, lane, holder } = call;
    this.#refresh(call, this.#views.get(organizationId) as BudgetView);
    if (this.#obstacle(call.view, lane, now)) return; // the minute or the day
    const slots = this.#mustWaitForSlot(call.view, lane, holder, now, call.queued);
    // dead containers' leases are cleared
    if (slots && (await this.#clearExpiredLeases(organizationId, call.view, now))) return;
    if (Date.now() > call.slotWaitEnds)
      throw slots ? this.#slotsTaken(call) : this.#busy(organizationId);
    call.early = Math.min(call.early + 1, 5);
    // a real-time or bulk call's next turn waits at least this long (#awaitTurn); an HTTP call's here
    if (lane === "interactive")
      await this.#options.sleep(slots ? this.#slotWaitMs(call.view, now) : 10 * 2 ** call.early);
  }

  #refresh(call: Call, view: BudgetView): void {
    call.view = view;
    call.fresh = true;
  }

  /** What stands in the way of a take, as `view` shows it (the write's condition is the judge). */
  #obstacle(view: BudgetView, lane: Lane, now: number): Obstacle | undefined {
    const { daily } = view;
    if (!view.ready || daily.resetAt <= now) return { kind: "no day" };
    if (daily.remaining <= 0)
      return { kind: "day used up", resetAt: daily.resetAt, probing: daily.probing };
    if (view.closedUntil > now) return { kind: "closed", until: view.closedUntil };
    const share = this.#options.minuteShare;
    const frees = [freesAt(view, WINDOW_MS, laneLimit(share, lane, view, now), now)];
    if (lane === "bulk") {
      const pace = bulkPace(share);
      frees.push(freesAt(view, pace.windowMs, pace.calls, now));
    }
    const until = Math.max(...frees);
    return until > now ? { kind: "minute", until } : undefined;
  }

  /**
   * Whether a call must wait for a slot: its lane's slots are all taken, or (when it is not in the
   * queue yet) real-time or bulk calls wait ahead of it.
   */
  #mustWaitForSlot(view: BudgetView, lane: Lane, holder: string, now: number, queued: boolean) {
    if (view.leases.size >= laneSlots(this.#options.concurrency, lane, view, now)) return true;
    return !queued && lane !== "interactive" && waitersAhead(view, lane, holder, now) > 0;
  }

  /** How long a real-time or bulk call waits for its turn at a slot; 0: a slot is free for it now. */
  #turnWaitMs(view: BudgetView, lane: "realtime" | "bulk", holder: string, now: number): number {
    return turnWaitMs(
      view,
      laneSlots(this.#options.concurrency, lane, view, now),
      waitersAhead(view, lane, holder, now),
      { now, holdMs: this.#holdMs, leaseMs: this.#options.leaseSeconds * 1000 },
    );
  }

  /** Joins the lane's queue for a slot: the calls waiting ahead are served first, so a turn can be timed. */
  async #enqueue(organizationId: string, lane: "realtime" | "bulk", holder: string, now: number) {
    const view = await this.#write(organizationId, {
      UpdateExpression: `SET waiting_${lane}.#holder = :now`,
      ConditionExpression: `attribute_exists(waiting_${lane})`,
      ExpressionAttributeNames: { "#holder": holder },
      ExpressionAttributeValues: { ":now": { N: String(now) } },
    });
    return view ?? (this.#views.get(organizationId) as BudgetView);
  }

  /**
   * A queued call that gives up leaves the queue, so the calls behind it do not wait for it
   * (if this write fails too, its place expires after WAITER_TTL_MS).
   */
  async #leaveQueue({ organizationId, lane, holder, queued }: Call) {
    if (!queued || lane === "interactive") return;
    await this.#write(organizationId, {
      UpdateExpression: `REMOVE waiting_${lane}.#holder`,
      ConditionExpression: `attribute_exists(waiting_${lane})`,
      ExpressionAttributeNames: { "#holder": holder },
    }).catch(() => undefined);
  }

  /**
   * The one write that takes a call: a unit of the window (its count below the lane's limit,
   * from the view's base), a slot, a unit of the day; and it marks the time, records the lane's
   * demand and drops marks too old to matter. Returns the item after it, or undefined when the
   * condition failed (the fresh item is then this container's view).
   */
  async #take(call: Call, now: number): Promise<BudgetView | undefined> {
    const { organizationId, lane, holder, view } = call;
    const share = this.#options.minuteShare;
    const names: Record<string, string> = { "#at": String(now), "#holder": holder };
    const values: Record<string, AttributeValue> = {
      ":one": { N: "1" },
      ":minusOne": { N: "-1" },
      ":zero": { N: "0" },
      ":now": { N: String(now) },
      ":limit": {
        N: String(windowBase(view, now - WINDOW_MS) + laneLimit(share, lane, view, now)),
      },
      // the lane's slots; bulk's one fewer while real-time calls are about is a condition below
      ":slots": { N: String(slotLimits(this.#options.concurrency)[lane]) },
      ":leaseEnd": { N: String(now + this.#options.leaseSeconds * 1000) },
      ":ttl": { N: String(Math.ceil(now / 1000) + ITEM_TTL_SECONDS) },
    };
    const conditions = [
      "seq < :limit",
      "size(leases) < :slots",
      "remaining > :zero",
      "reset_at > :now",
      "(attribute_not_exists(closed_until) OR closed_until <= :now)",
    ];
    if (lane === "bulk") {
      const pace = bulkPace(share);
      conditions.push("seq < :paced");
      values[":paced"] = { N: String(windowBase(view, now - pace.windowMs) + pace.calls) };
      // the slot bulk leaves to real-time calls while they are about, decided by the item, not the view
      conditions.push(
        "(size(leases) < :sharedSlots OR (size(waiting_realtime) = :zero AND (attribute_not_exists(seen_realtime) OR seen_realtime <= :demandSince)))",
      );
      values[":sharedSlots"] = { N: String(slotLimits(this.#options.concurrency).bulkShared) };
      values[":demandSince"] = { N: String(now - DEMAND_MEMORY_MS) };
    }
    const set = [
      "seq = seq + :one",
      "marks.#at = if_not_exists(marks.#at, seq)",
      "leases.#holder = :leaseEnd",
      "expires_at = :ttl",
      ...(lane === "bulk" ? [] : [`seen_${lane} = :now`]),
    ];
    const remove = this.#upkeep(call, now, { names, values, set, conditions });
    return this.#write(organizationId, {
      UpdateExpression: `SET ${set.join(", ")} ADD remaining :minusOne${remove.length ? ` REMOVE ${remove.join(", ")}` : ""}`,
      ConditionExpression: conditions.join(" AND "),
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    });
  }
  /**
   * What a take also does to the item: removes what it need not keep (its own place in the queue,
   * marks past the window, calls that gave up waiting), merges old marks, and lets a call that
   * did not queue go only where no one still waiting is ahead of it. Returns the paths to remove.
   */
  #upkeep(
    { lane, holder, view, queued }: Call,
    now: number,
    update: {
      names: Record<string, string>;
      values: Record<string, AttributeValue>;
      set: string[];
      conditions: string[];
    },
  ): string[] {
    const { names, values, set, conditions } = update;
    const remove = queued && lane !== "interactive" ? [`waiting_${lane}.#holder`] : [];
    view.marks
      .filter(([time]) => time < now - MARK_RETENTION_MS)
      .slice(0, MARKS_REMOVED_PER_TAKE)
      .forEach(([time], i) => {
        names[`#old${i}`] = String(time);
        remove.push(`marks.#old${i}`);
      });
    const merge = marksToMerge(
      view,
      now,
      bulkPace(this.#options.minuteShare).windowMs,
      MARKS_REMOVED_PER_TAKE,
    );
    if (merge) {
      names["#keep"] = String(merge.keep[0]);
      values[":keepCount"] = { N: String(merge.keep[1]) };
      set.push("marks.#keep = :keepCount");
      merge.remove.forEach((time, i) => {
        names[`#merged${i}`] = String(time);
        remove.push(`marks.#merged${i}`);
      });
    }
    for (const waiting of ["realtime", "bulk"] as const) {
      const gone = [...view.waiting[waiting]]
        .filter(([other, since]) => other !== holder && !waiterLive(other, since, now))
        .slice(0, MARKS_REMOVED_PER_TAKE);
      gone.forEach(([other], i) => {
        names[`#gone_${waiting}${i}`] = other;
        remove.push(`waiting_${waiting}.#gone_${waiting}${i}`);
      });
      // a call that did not queue goes only where no one waits for a slot ahead of it (real-time
      // calls wait ahead of bulk ones); the calls that gave up waiting do not count
      if (!queued && (waiting === "realtime" ? lane !== "interactive" : lane === "bulk")) {
        conditions.push(`size(waiting_${waiting}) <= :gone_${waiting}`);
        values[`:gone_${waiting}`] = { N: String(gone.length) };
      }
    }
    return remove;
  }

  #permit({ organizationId, lane, holder }: Call, probe: boolean, takenAt: number): CallPermit {
    let released = false;
    return {
      release: async (report) => {
        if (released) return;
        released = true;
        this.#holdMs = 0.8 * this.#holdMs + 0.2 * Math.max(1, this.#options.now() - takenAt);
        await Promise.all([
          this.#releaseRetrying(organizationId, lane, holder, report === "not sent"),
          // the next answer reports the quota again
          report &&
            report !== "not sent" &&
            this.#record(organizationId, report, probe).catch(() => undefined),
        ]);
      },
    };
  }

  /**
   * Frees the slot (and gives the day's unit back for a call never sent), trying again (4
   * tries in about 0.4 s) when DynamoDB throttles or fails for a moment: a slot left held
   * blocks the organization's next call until its lease expires. What still fails is logged,
   * and the lease frees the slot then.
   */
  async #releaseRetrying(organizationId: string, lane: Lane, holder: string, notSent: boolean) {
    // Others wait for a slot: a container that releases one while others wait usually asks again at
    // once (a worker's next record), so the release keeps it a place in the queue, one write less.
    const now = this.#options.now();
    const view = this.#views.get(organizationId);
    const keep =
      lane !== "interactive" &&
      view !== undefined &&
      this.#mustWaitForSlot(view, lane, holder, now, false);
    const next = keep ? `${KEPT_PREFIX}${randomUUID()}` : undefined;
    const values: Record<string, AttributeValue> = {
      ...(notSent ? { ":one": { N: "1" } } : {}),
      ...(next ? { ":now": { N: String(now) } } : {}),
    };
    const release = () =>
      this.#write(organizationId, {
        UpdateExpression: `REMOVE leases.#holder${notSent ? " ADD remaining :one" : ""}${next ? ` SET waiting_${lane}.#next = :now` : ""}`,
        ConditionExpression: "attribute_exists(leases)",
        ExpressionAttributeNames: { "#holder": holder, ...(next ? { "#next": next } : {}) },
        ...(notSent || next ? { ExpressionAttributeValues: values } : {}),
      });
    if (next)
      this.#kept.set(organizationId, [
        ...(this.#kept.get(organizationId) ?? []),
        { lane, holder: next, at: now },
      ]);
    await pRetry(release, {
      retries: 3,
      minTimeout: 50,
      factor: 2,
      randomize: true,
      shouldRetry: ({ error }) => isServiceError(error) && error.code === "AWS_UNAVAILABLE",
    }).catch((error: unknown) =>
      logger.warn("Could not release a concurrency slot; it frees when its lease expires", {
        organization_id: organizationId,
        lease_seconds: this.#options.leaseSeconds,
        error: (error as Error).name,
      }),
    );
  }

  /** How long to wait for a slot: until one of the calls in progress is likely to end, picked at random so waiters spread. */
  #slotWaitMs(view: BudgetView, now: number): number {
    const ends = [...view.leases.values()].map(
      (until) => until - this.#options.leaseSeconds * 1000 + this.#holdMs,
    );
    const end = ends[Math.floor(Math.random() * ends.length)] ?? now;
    return Math.min(500, Math.max(10, end - now)) + Math.floor(Math.random() * 20);
  }

  /** Leases past their end (a container died mid-call) are removed, each only if still as seen. */
  async #clearExpiredLeases(organizationId: string, view: BudgetView, now: number) {
    const expired = [...view.leases].filter(([, until]) => until < now);
    if (expired.length === 0) return false;
    const names: Record<string, string> = {};
    const values: Record<string, AttributeValue> = {};
    const conditions = expired.map(([holder, until], i) => {
      names[`#h${i}`] = holder;
      values[`:u${i}`] = { N: String(until) };
      return `leases.#h${i} = :u${i}`;
    });
    await this.#write(organizationId, {
      UpdateExpression: `REMOVE ${expired.map((_, i) => `leases.#h${i}`).join(", ")}`,
      ConditionExpression: conditions.join(" AND "),
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    });
    return true;
  }

  /** A higher lane was refused a unit: the lower lanes see it and leave it the units that free. */
  async #showDemand(organizationId: string, lane: "interactive" | "realtime", now: number) {
    await this.#write(organizationId, {
      UpdateExpression: `SET seen_${lane} = :now`,
      ConditionExpression: "attribute_exists(leases)",
      ExpressionAttributeValues: { ":now": { N: String(now) } },
    });
  }

  /** Zoho said 44: the organization is blocked for the rest of Zoho's minute, whoever used it up. */
  async #closeMinute(organizationId: string): Promise<void> {
    const until = (Math.floor(this.#options.now() / 60_000) + 1) * 60_000 + CLOCK_TOLERANCE_MS;
    await this.#write(organizationId, {
      UpdateExpression: "SET closed_until = :until",
      ConditionExpression: "attribute_exists(leases)", // no item, no budget to close
      ExpressionAttributeValues: { ":until": { N: String(until) } },
    });
  }

  #minuteUsed(organizationId: string, lane: Lane, obstacle: { until: number }, now: number) {
    return new ServiceError(
      "ZOHO_RATE_LIMITED",
      `The service's ${lane} share of ${this.#options.minuteShare} Zoho calls a minute for organization ${organizationId} is used up for now.`,
      { retryAfterSeconds: Math.max(1, Math.ceil((obstacle.until - now) / 1000)) },
    );
  }

  #slotsTaken({ organizationId, lane, view }: Call) {
    const slots = laneSlots(this.#options.concurrency, lane, view, this.#options.now());
    return new ServiceError(
      "ZOHO_RATE_LIMITED",
      `All ${slots} Zoho calls in progress allowed for organization ${organizationId} (${lane}) are taken.`,
      { retryAfterSeconds: 2 },
    );
  }

  #busy(organizationId: string) {
    return new ServiceError(
      "ZOHO_RATE_LIMITED",
      `The budget of organization ${organizationId} is being updated by other calls; try again.`,
      { retryAfterSeconds: 1 },
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

  /**
   * No daily window yet, or it has passed: opens the next (and creates the item's maps on the
   * first call). Zoho's windows repeat daily, so the next reset follows the last one Zoho
   * reported; without any, the plan's cap until UTC midnight. The next answer's headers correct
   * both. After an unreported 45 the next window is a probe: one unit, for the next hour, that
   * one take gets. Another container opening it first is as good.
   */
  async #openDay(organizationId: string, view: BudgetView, now: number): Promise<void> {
    const { daily } = view;
    const nextReset = daily.probing
      ? now + PROBE_INTERVAL_MS
      : daily.resetAt > 0 && daily.reported
        ? daily.resetAt + Math.ceil((now - daily.resetAt + 1) / 86_400_000) * 86_400_000
        : nextUtcMidnight(now);
    await this.#write(organizationId, {
      UpdateExpression:
        "SET remaining = :remaining, quota = :quota, reset_at = :reset, reported = :false, seq = if_not_exists(seq, :zero), marks = if_not_exists(marks, :empty), leases = if_not_exists(leases, :empty), waiting_realtime = if_not_exists(waiting_realtime, :empty), waiting_bulk = if_not_exists(waiting_bulk, :empty), expires_at = :ttl",
      // a day past, or an item without its maps (a report written after the item was deleted)
      ConditionExpression:
        "attribute_not_exists(reset_at) OR reset_at <= :now OR attribute_not_exists(leases)",
      ExpressionAttributeValues: {
        ":remaining": { N: String(daily.probing ? 1 : this.#options.dailyQuota) },
        ":quota": { N: String(this.#options.dailyQuota) },
        ":reset": { N: String(nextReset) },
        ":false": { BOOL: false },
        ":zero": { N: "0" },
        ":empty": { M: {} },
        ":now": { N: String(now) },
        ":ttl": { N: String(Math.ceil(now / 1000) + ITEM_TTL_SECONDS) },
      },
    });
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
   * taken from it; a late answer from an earlier window changes nothing. An answer that would
   * lower it by less than the calls that may be in flight is not written, until the day's last
   * units: those are counted exactly.
   */
  async #reportWindow(
    organizationId: string,
    reported: { quota: number | undefined; remaining: number; resetAt: number },
  ): Promise<void> {
    // Zoho's count does not yet hold the calls still in flight beside this one (at most
    // ZOHO_CONCURRENCY - 1): keep them out of what remains, so the last calls of the day never
    // meet a 45.
    const inFlight = this.#options.concurrency - 1;
    const usable = Math.max(0, reported.remaining - inFlight);
    const seen = this.#views.get(organizationId)?.daily;
    const sameWindow =
      seen?.reported === true && Math.abs(seen.resetAt - reported.resetAt) <= SAME_WINDOW_MS;
    if (sameWindow && seen.remaining > 2 * (inFlight + 1) && usable >= seen.remaining - inFlight)
      return;
    const remaining: AttributeValue = { N: String(usable) };
    const low: AttributeValue = { N: String(reported.resetAt - SAME_WINDOW_MS) };
    const high: AttributeValue = { N: String(reported.resetAt + SAME_WINDOW_MS) };
    const newWindow = await this.#write(organizationId, {
      UpdateExpression:
        "SET remaining = :remaining, quota = :quota, reset_at = :reset, reported = :true, probing = :false",
      ConditionExpression: "attribute_not_exists(reset_at) OR reported = :false OR reset_at < :low",
      ExpressionAttributeValues: {
        ":remaining": remaining,
        ":reset": { N: String(reported.resetAt) },
        ":low": low,
        ":true": { BOOL: true },
        ":false": { BOOL: false },
        ":quota": { N: String(reported.quota ?? this.#options.dailyQuota) },
      },
    });
    const lowered =
      newWindow ??
      (await this.#write(organizationId, {
        UpdateExpression: "SET remaining = :remaining",
        ConditionExpression: "reset_at BETWEEN :low AND :high AND remaining > :remaining",
        ExpressionAttributeValues: { ":remaining": remaining, ":low": low, ":high": high },
      }));
    if (newWindow) this.#exhaustedUntil.delete(organizationId);
    if (lowered && usable <= 0) this.#exhaustedUntil.set(organizationId, reported.resetAt);
  }

  /**
   * A 45 without headers: nothing more until the reset Zoho reported for this window, if it
   * did; else until the next probe, an hour on (Zoho's reset is unknown: no guess of it holds).
   */
  async #closeDay(organizationId: string): Promise<void> {
    const now = this.#options.now();
    const { daily } = await this.#read(organizationId);
    const known = daily.reported && daily.resetAt > now;
    const resetAt = known ? daily.resetAt : now + PROBE_INTERVAL_MS;
    await this.#write(organizationId, {
      UpdateExpression:
        "SET remaining = :zero, reset_at = :reset, quota = if_not_exists(quota, :quota), reported = if_not_exists(reported, :false), probing = :probing",
      ExpressionAttributeValues: {
        ":zero": { N: "0" },
        ":reset": { N: String(resetAt) },
        ":quota": { N: String(this.#options.dailyQuota) },
        ":false": { BOOL: false },
        ":probing": { BOOL: !known },
      },
    });
    this.#exhaustedUntil.set(organizationId, resetAt);
  }

  /** The probe went through without a 45: Zoho's day has turned, the plan's quota is open again. */
  async #endProbe(organizationId: string): Promise<void> {
    const resetAt = this.#options.now() + DAY_AFTER_PROBE_MS;
    // a reported window that came first stands (the condition fails)
    await this.#write(organizationId, {
      UpdateExpression: "SET remaining = :remaining, reset_at = :reset, probing = :false",
      ConditionExpression: "probing = :true",
      ExpressionAttributeValues: {
        ":remaining": { N: String(this.#options.dailyQuota - 1) },
        ":reset": { N: String(resetAt) },
        ":true": { BOOL: true },
        ":false": { BOOL: false },
      },
    });
    this.#exhaustedUntil.delete(organizationId);
  }

  // --- plumbing ---------------------------------------------------------------------------

  /** The organization's budget item, read consistently; it becomes this container's view. */
  async #read(organizationId: string): Promise<BudgetView> {
    try {
      const { Item } = await this.#options.dynamo.send(
        new GetItemCommand({
          TableName: this.#options.table,
          Key: ledgerKeys.budget(organizationId),
          ConsistentRead: true,
        }),
      );
      return this.#see(organizationId, Item);
    } catch (error) {
      throw ledgerError(error, this.#options.table);
    }
  }

  #see(organizationId: string, item: Record<string, AttributeValue> | undefined): BudgetView {
    const view = budgetView(item);
    this.#views.set(organizationId, view);
    return view;
  }

  /**
   * One conditional write to the organization's budget item. Returns the item after it (now
   * this container's view), or undefined when its condition failed; the item as it then was
   * becomes the view (DynamoDB returns it with the failure; a read where it does not).
   */
  async #write(
    organizationId: string,
    input: Pick<
      UpdateItemCommandInput,
      | "UpdateExpression"
      | "ConditionExpression"
      | "ExpressionAttributeNames"
      | "ExpressionAttributeValues"
    >,
  ): Promise<BudgetView | undefined> {
    try {
      const { Attributes } = await this.#options.dynamo.send(
        new UpdateItemCommand({
          TableName: this.#options.table,
          Key: ledgerKeys.budget(organizationId),
          ReturnValues: "ALL_NEW",
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
          ...input,
        }),
      );
      return this.#see(organizationId, Attributes);
    } catch (error) {
      if (!isConditionFailed(error)) throw ledgerError(error, this.#options.table);
      const item = (error as { Item?: Record<string, AttributeValue> }).Item;
      if (item) this.#see(organizationId, item);
      else await this.#read(organizationId);
      return undefined;
    }
  }
}

function nextUtcMidnight(now: number): number {
  return (Math.floor(now / 86_400_000) + 1) * 86_400_000;
}
