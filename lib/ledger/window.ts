import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { num } from "./dynamo";

/**
 * The sliding window of Zoho calls, and the lanes' share of it: pure arithmetic on the budget
 * item as a container last saw it (a {@link BudgetView}). `lib/ledger/budget.ts` turns it into
 * conditional writes; docs/design.md ("The minute budget") says why it is built this way.
 *
 * The item counts every call ever taken (`seq`) and keeps, per millisecond a call was taken at,
 * the count before it (a *mark*). The calls of the last W milliseconds are then
 * `seq - base(now - W)`, where base is the count before the first mark after `now - W`. A write
 * asks DynamoDB for `seq < base + limit`: the one counter is the only thing compared, so takes
 * from many containers never conflict, and a base computed from a stale view is never too high
 * (every mark the view lacks was made later, from a higher count): a stale view can only refuse
 * too early, never let one call too many through.
 */

/** Who is calling Zoho, in priority order. */
export type Lane = "interactive" | "realtime" | "bulk";

/**
 * How far apart two containers' clocks may be, each way. Lambda's clocks follow Amazon Time
 * Sync (within a millisecond); this covers a container that drifted. The window is made longer
 * by twice this, so no real 60 s holds more than the share while clocks stay within it.
 */
export const CLOCK_TOLERANCE_MS = 1_000;
/** Zoho's minute, and the window the share is counted over. */
export const WINDOW_MS = 60_000 + 2 * CLOCK_TOLERANCE_MS;
/** How long a lane's demand holds the lower lanes back after its last call or refusal. */
export const DEMAND_MEMORY_MS = 15_000;
/** Marks older than this are removed by the next take: no window needs them, a clock up to the tolerance behind included. */
export const MARK_RETENTION_MS = WINDOW_MS + 5_000;

/**
 * What the higher lanes keep from the lower ones while they have demand (fractions of the
 * share): bulk takes at most 60% while real-time and interactive calls are about, 75% with only
 * real-time ones, 85% with only interactive ones, and all of it alone. Real-time leaves 15% to
 * interactive calls while they are about, and 5% always, so a burst of HTTP calls after a burst
 * of queued jobs still finds a few units at once.
 */
const HELD_FOR = { interactive: 0.15, realtime: 0.25 } as const;
const INTERACTIVE_FLOOR = 0.05;

/** The budget item as a container last saw it (from its last write's answer or a read). */
export interface BudgetView {
  /** calls taken ever (less none: a unit not sent is not given back to the window) */
  seq: number;
  /** [time (ms), count before the call(s) taken at that time], oldest first */
  marks: Array<[number, number]>;
  /** holder → lease end (ms): the calls in progress */
  leases: Map<string, number>;
  /** holder → since when (ms): the calls waiting for a slot, per lane (interactive calls never queue) */
  waiting: { realtime: Map<string, number>; bulk: Map<string, number> };
  /** when each higher lane last asked for a call */
  seen: { interactive: number; realtime: number };
  /** Zoho said 44: nothing until then */
  closedUntil: number;
  /** the daily window: what remains, until when, and whether Zoho reported it or we guessed */
  daily: {
    remaining: number;
    resetAt: number;
    quota: number;
    reported: boolean;
    probing: boolean;
  };
  /** whether the item exists with its maps (a first take must create them) */
  ready: boolean;
}

/** Reads the budget item into a view; an absent item is an empty one. */
export function budgetView(item: Record<string, AttributeValue> | undefined): BudgetView {
  const marks = Object.entries(item?.marks?.M ?? {})
    .map(([time, count]): [number, number] => [Number(time), num(count)])
    .sort((a, b) => a[0] - b[0]);
  const numbers = (attribute: AttributeValue | undefined) =>
    new Map(Object.entries(attribute?.M ?? {}).map(([key, value]) => [key, num(value)]));
  const leases = numbers(item?.leases);
  return {
    seq: num(item?.seq),
    marks,
    leases,
    waiting: { realtime: numbers(item?.waiting_realtime), bulk: numbers(item?.waiting_bulk) },
    seen: { interactive: num(item?.seen_interactive), realtime: num(item?.seen_realtime) },
    closedUntil: num(item?.closed_until),
    daily: {
      remaining: num(item?.remaining),
      resetAt: num(item?.reset_at),
      quota: num(item?.quota),
      reported: item?.reported?.BOOL === true,
      probing: item?.probing?.BOOL === true,
    },
    ready: ["marks", "leases", "waiting_realtime", "waiting_bulk"].every(
      (name) => item?.[name]?.M !== undefined,
    ),
  };
}

/** Marks older than the bulk pace's window (and this) are merged by the takes into buckets. */
const FINE_MARKS_MS = 2_000;
/** A merged mark covers the calls of this long: each counts until the bucket's last leaves the window. */
export const MARK_BUCKET_MS = 500;

/**
 * The marks a take may merge into one, to keep the item small at high rates (about 160 marks at
 * 960 calls a minute instead of 1,000, which dynalite rewrote twice a call): those of the oldest
 * MARK_BUCKET_MS bucket past the recent ones that holds several, kept as one mark with the
 * bucket's latest time and earliest count. Safe from any view, however stale: the merged mark
 * covers every call of the marks it replaces (no later time, no larger count), so no window
 * counts fewer calls; each call counts at most a bucket longer (about 0.4% of the share). The
 * recent marks stay exact, for the bulk pace's short window.
 */
export function marksToMerge(view: BudgetView, now: number, paceWindowMs: number, max: number) {
  const before = now - Math.max(FINE_MARKS_MS, paceWindowMs + MARK_BUCKET_MS);
  const since = now - MARK_RETENTION_MS; // older ones are removed anyway
  const buckets = new Map<number, [number, number][]>();
  for (const mark of view.marks) {
    if (mark[0] < since || mark[0] >= before) continue;
    const bucket = Math.floor(mark[0] / MARK_BUCKET_MS);
    buckets.set(bucket, [...(buckets.get(bucket) ?? []), mark]);
  }
  const marks = [...buckets.values()].find((inBucket) => inBucket.length > 1)?.slice(0, max + 1);
  if (marks === undefined) return undefined;
  const latest = marks.reduce((a, b) => (b[0] > a[0] ? b : a));
  const earliestCount = Math.min(...marks.map(([, count]) => count));
  return {
    keep: [latest[0], earliestCount] as const,
    remove: marks.filter((mark) => mark !== latest).map(([time]) => time),
  };
}

/** The count before the first call taken after `since`: `seq - base` calls were taken since. */
export function windowBase(view: BudgetView, since: number): number {
  let base = view.seq;
  for (const [time, before] of view.marks) if (time > since && before < base) base = before;
  return base;
}

/**
 * The earliest time at which the calls of the last `windowMs` number fewer than `limit` again
 * (the marks holding the excess have aged out); `now` when they already do.
 */
export function freesAt(view: BudgetView, windowMs: number, limit: number, now: number): number {
  const target = view.seq - limit + 1; // the base the window must reach
  if (windowBase(view, now - windowMs) >= target) return now;
  let lastBelow = -Infinity;
  for (const [time, before] of view.marks)
    if (before < target) lastBelow = Math.max(lastBelow, time);
  return lastBelow === -Infinity ? now : lastBelow + windowMs + 1;
}

/** The calls of the window `lane` may fill, given who else has asked lately. */
export function laneLimit(share: number, lane: Lane, view: BudgetView, now: number): number {
  const busy = (higher: "interactive" | "realtime") =>
    view.seen[higher] > now - DEMAND_MEMORY_MS ? HELD_FOR[higher] : 0;
  const held =
    lane === "interactive"
      ? 0
      : lane === "realtime"
        ? Math.max(busy("interactive"), INTERACTIVE_FLOOR)
        : busy("interactive") + busy("realtime");
  return Math.max(1, Math.floor(share * (1 - held)));
}

/**
 * Concurrency slots a lane may hold: real-time leaves one to the HTTP API's interactive calls (so
 * one waits for at most one other HTTP call, never for the worker); bulk leaves one more to
 * real-time while real-time calls are about (one taken in the last DEMAND_MEMORY_MS, or one
 * waiting: `realtimeAbout`), and uses it when they are not. With `ZOHO_CONCURRENCY` 1 or 2 the
 * lanes share.
 */
export function laneSlots(concurrency: number, lane: Lane, view: BudgetView, now: number): number {
  return slotLimits(concurrency)[lane === "bulk" && realtimeAbout(view, now) ? "bulkShared" : lane];
}

/** The slots of each lane, and bulk's while real-time calls are about. */
export function slotLimits(concurrency: number) {
  const below = (n: number) => Math.max(1, concurrency - n);
  return { interactive: concurrency, realtime: below(1), bulk: below(1), bulkShared: below(2) };
}

/** Real-time calls took a slot in the last DEMAND_MEMORY_MS, or one waits for a slot. */
export function realtimeAbout(view: BudgetView, now: number): boolean {
  return (
    view.seen.realtime > now - DEMAND_MEMORY_MS ||
    [...view.waiting.realtime].some(([holder, since]) => waiterLive(holder, since, now))
  );
}

/**
 * Bulk calls are spread over the window, a few at a time: at most `pace.calls` in any
 * `pace.windowMs`, about the share's own rate (a fortieth of it every fortieth of the window,
 * 3% faster so that the window, not a late wake-up compounding at each step, sets it). A full
 * window then frees a few units every 1.6 s, not all at once a minute later, so a real-time job
 * or an HTTP call that arrives finds one soon; and a window bulk fills from empty is full only
 * as its first units free.
 */
export function bulkPace(share: number): { calls: number; windowMs: number } {
  const calls = Math.max(1, Math.ceil(share / 40));
  return { calls, windowMs: Math.floor(((calls * WINDOW_MS) / share) * 0.97) };
}

/** A waiting call not served or gone by then has given up or died: it no longer counts. */
export const WAITER_TTL_MS = 6_000;
/**
 * A place a release kept in the queue for its container's next call (a holder named `kept:…`)
 * counts only this long: a container's next call asks at once or not at all (its batch ended),
 * and a place no call claims must not hold the others back for WAITER_TTL_MS.
 */
export const KEPT_PLACE_MS = 1_000;
export const KEPT_PREFIX = "kept:";

/** Whether a waiter still counts: not given up, and a kept place only while fresh. */
export function waiterLive(holder: string, since: number, now: number): boolean {
  return since > now - (holder.startsWith(KEPT_PREFIX) ? KEPT_PLACE_MS : WAITER_TTL_MS);
}

/** The calls waiting for a slot ahead of `holder` (all of them when it is not waiting yet). */
export function waitersAhead(
  view: BudgetView,
  lane: "realtime" | "bulk",
  holder: string,
  now: number,
): number {
  const live = (waiting: Map<string, number>) =>
    [...waiting].filter(([holder, since]) => waiterLive(holder, since, now));
  const mine = view.waiting[lane].get(holder);
  const before = ([other, since]: [string, number]) =>
    mine === undefined || since < mine || (since === mine && other < holder);
  const sameLane = live(view.waiting[lane]).filter((entry) => entry[0] !== holder && before(entry));
  // real-time calls wait ahead of every bulk call
  return sameLane.length + (lane === "bulk" ? live(view.waiting.realtime).length : 0);
}

/**
 * How long a call with `ahead` calls waiting before it should wait for its slot: the calls in
 * progress end about `holdMs` after they began (their lease's end less `leaseMs`), each slot then
 * serves the waiters in turn. 0 when a slot is free for it now.
 */
export function turnWaitMs(
  view: BudgetView,
  slots: number,
  ahead: number,
  options: { now: number; holdMs: number; leaseMs: number },
): number {
  const { now, holdMs, leaseMs } = options;
  const ends = [...view.leases.values()].map((until) => Math.max(now, until - leaseMs + holdMs));
  while (ends.length < slots) ends.push(now); // a free slot: as a call that ends now
  ends.sort((a, b) => a - b);
  // the ends it needs: enough to bring the calls in progress below its slots, and one per waiter ahead
  const needed = ends.length - slots + ahead;
  const turn = (ends[needed % ends.length] as number) + holdMs * Math.floor(needed / ends.length);
  // a little after the call is likely to end, so that its release is written first
  return turn <= now ? 0 : turn - now + Math.ceil(holdMs * 0.1);
}
