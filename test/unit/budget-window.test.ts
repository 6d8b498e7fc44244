import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type BudgetView,
  budgetView,
  DEMAND_MEMORY_MS,
  freesAt,
  KEPT_PLACE_MS,
  KEPT_PREFIX,
  laneLimit,
  laneSlots,
  MARK_BUCKET_MS,
  marksToMerge,
  turnWaitMs,
  WAITER_TTL_MS,
  WINDOW_MS,
  waitersAhead,
  windowBase,
} from "../../lib/ledger/window";

/** A view of `calls` taken at the given times (ms), one call each. */
function viewOf(times: number[], extra: Partial<BudgetView> = {}): BudgetView {
  return {
    ...budgetView(undefined),
    seq: times.length,
    marks: times.map((time, i): [number, number] => [time, i]),
    ...extra,
  };
}

/** The view after a take's merge of `merge` marks (what DynamoDB's SET and REMOVE do to the map). */
function afterMerge(view: BudgetView, merge: ReturnType<typeof marksToMerge>): BudgetView {
  if (merge === undefined) return view;
  const marks = new Map(view.marks);
  for (const time of merge.remove) marks.delete(time);
  marks.set(merge.keep[0], merge.keep[1]);
  return { ...view, marks: [...marks].sort((a, b) => a[0] - b[0]) };
}

describe("the sliding window's arithmetic", () => {
  it("counts the calls after a time from the count before the first mark after it", () => {
    const view = viewOf([1_000, 2_000, 3_000, 4_000]);
    expect(view.seq - windowBase(view, 0)).toBe(4);
    expect(view.seq - windowBase(view, 2_500)).toBe(2);
    expect(view.seq - windowBase(view, 4_000)).toBe(0);
  });

  it("never counts fewer calls from an old view than a newer one holds (a stale view refuses early, never lets one more through)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 120_000 }), { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 0, max: 60 }),
        fc.integer({ min: 0, max: 120_000 }),
        (raw, cut, since) => {
          const times = [...raw].sort((a, b) => a - b);
          const newer = viewOf(times);
          const older = viewOf(times.slice(0, Math.min(cut, times.length)));
          // a take is allowed while seq < base + limit: the older view's base is never higher
          expect(windowBase(older, since)).toBeLessThanOrEqual(windowBase(newer, since));
        },
      ),
    );
  });

  it("merges old marks into buckets without ever counting fewer calls in a window, from views however stale", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 70_000 }), { minLength: 2, maxLength: 200 }),
        fc.array(fc.integer({ min: 0, max: 200 }), { maxLength: 30 }),
        fc.integer({ min: 0, max: 70_000 }),
        (raw, staleness, since) => {
          const times = [...raw].sort((a, b) => a - b);
          const exact = viewOf(times);
          // takes at 70 s merge from views that miss the latest marks (and the merges of others)
          let merged = exact;
          for (const missing of staleness) {
            const stale = {
              ...merged,
              marks: merged.marks.slice(0, Math.max(0, merged.marks.length - missing)),
            };
            merged = afterMerge(merged, marksToMerge(stale, 70_000, 1_500, 20));
          }
          expect(windowBase(merged, since)).toBeLessThanOrEqual(windowBase(exact, since));
        },
      ),
    );
  });

  it("keeps about two marks a second past the recent ones at 960 calls a minute", () => {
    const times = Array.from({ length: 1_000 }, (_, i) => i * 62.5);
    let view = viewOf(times);
    const now = 62_500;
    for (let take = 0; take < 1_000; take++)
      view = afterMerge(view, marksToMerge(view, now, 1_500, 20));
    expect(view.marks.length).toBeLessThan(160);
    // every call still counts, at most a bucket longer (8 calls a bucket at this rate)
    for (const since of [now - WINDOW_MS, 20_000, 30_000, 45_123]) {
      const exact = 1_000 - windowBase(viewOf(times), since);
      const counted = view.seq - windowBase(view, since);
      expect(counted).toBeGreaterThanOrEqual(exact);
      expect(counted).toBeLessThanOrEqual(exact + MARK_BUCKET_MS / 62.5);
    }
    // the recent two seconds keep one mark a call, for the bulk pace
    expect(view.marks.filter(([time]) => time >= now - 2_000)).toHaveLength(32);
  });

  it("says when the calls over a limit have left the window", () => {
    const view = viewOf([1_000, 2_000, 3_000]);
    expect(freesAt(view, 10_000, 3, 5_000)).toBe(11_001); // the first call leaves
    expect(freesAt(view, 10_000, 2, 5_000)).toBe(12_001); // two must leave
    expect(freesAt(view, 10_000, 4, 5_000)).toBe(5_000); // already below
  });

  it("gives the lower lanes what the higher ones leave, less while those asked lately", () => {
    const idle = viewOf([]);
    expect(laneLimit(80, "bulk", idle, 100_000)).toBe(80);
    expect(laneLimit(80, "realtime", idle, 100_000)).toBe(76);
    expect(laneLimit(80, "interactive", idle, 100_000)).toBe(80);
    const busy = viewOf([], { seen: { interactive: 95_000, realtime: 90_000 } });
    expect(laneLimit(80, "bulk", busy, 100_000)).toBe(48);
    expect(laneLimit(80, "realtime", busy, 100_000)).toBe(68);
    expect(laneLimit(80, "bulk", busy, 106_000)).toBe(68); // real-time's demand is 16 s old
  });
});

describe("the queue for a slot", () => {
  const leases = (starts: number[]) => new Map(starts.map((s, i) => [`h${i}`, s + 15_000]));
  const options = { now: 1_000, holdMs: 200, leaseMs: 15_000 };

  it("is free at once while a slot is", () => {
    expect(turnWaitMs(viewOf([], { leases: leases([900]) }), 4, 0, options)).toBe(0);
  });

  it("waits for the call that ends first, and one more round per slot-full of waiters ahead", () => {
    const full = viewOf([], { leases: leases([900, 850, 950, 980]) }); // ends 1050, 1100, 1150, 1180
    expect(turnWaitMs(full, 4, 0, options)).toBe(50 + 20);
    expect(turnWaitMs(full, 4, 3, options)).toBe(180 + 20);
    expect(turnWaitMs(full, 4, 4, options)).toBe(250 + 20); // the first slot's second round
  });

  it("counts the waiters ahead in order, real-time ones ahead of bulk, and not those that gave up", () => {
    const waiting = {
      realtime: new Map([
        ["a", 900],
        ["b", 950],
        ["gone", 1_000 - WAITER_TTL_MS],
      ]),
      bulk: new Map([["c", 800]]),
    };
    const view = viewOf([], { waiting });
    expect(waitersAhead(view, "realtime", "a", 1_000)).toBe(0);
    expect(waitersAhead(view, "realtime", "b", 1_000)).toBe(1);
    expect(waitersAhead(view, "realtime", "new", 1_000)).toBe(2);
    expect(waitersAhead(view, "bulk", "c", 1_000)).toBe(2);
  });

  it("counts a place a release kept only while fresh: an unclaimed one does not hold the others back", () => {
    const waiting = {
      realtime: new Map<string, number>(),
      bulk: new Map([
        [`${KEPT_PREFIX}fresh`, 10_000 - KEPT_PLACE_MS + 1],
        [`${KEPT_PREFIX}unclaimed`, 10_000 - KEPT_PLACE_MS],
        ["waiting", 10_000 - KEPT_PLACE_MS],
      ]),
    };
    expect(waitersAhead(viewOf([], { waiting }), "bulk", "new", 10_000)).toBe(2);
  });

  it("gives bulk the slot it leaves to real-time calls only while none took one lately or waits", () => {
    const idle = viewOf([]);
    expect(laneSlots(5, "bulk", idle, 100_000)).toBe(4);
    expect(laneSlots(5, "realtime", idle, 100_000)).toBe(4);
    expect(laneSlots(5, "interactive", idle, 100_000)).toBe(5);
    const seen = viewOf([], { seen: { interactive: 0, realtime: 90_000 } });
    expect(laneSlots(5, "bulk", seen, 100_000)).toBe(3);
    expect(laneSlots(5, "bulk", seen, 90_000 + DEMAND_MEMORY_MS)).toBe(4);
    const waiting = { realtime: new Map([["r", 99_000]]), bulk: new Map<string, number>() };
    expect(laneSlots(5, "bulk", viewOf([], { waiting }), 100_000)).toBe(3);
    expect(laneSlots(2, "bulk", viewOf([], { waiting }), 100_000)).toBe(1);
  });
});
