import pLimit, { type LimitFunction } from "p-limit";
import { ServiceError } from "./errors";

export interface RateLimiterOptions {
  /** Zoho calls per organization per calendar minute that this container allows itself */
  perMinute: number;
  /** Zoho calls in progress at once (Zoho's soft limit is 5 on Free, 10 on paid plans) */
  concurrency: number;
  /** a call that would wait longer than this for the next minute fails as ZOHO_RATE_LIMITED instead */
  maxWaitSeconds?: number;
  now?: () => number;
}

/**
 * Keeps one container's Zoho calls inside a per-organization budget. Zoho counts requests per
 * organization per calendar minute and blocks the rest of the minute once past the limit, so
 * the budget is counted the same way (not as a token bucket, which could let two minutes'
 * worth through around a minute boundary). Concurrency is bounded by p-limit.
 *
 * @example
 * const limiter = new RateLimiter({ perMinute: 50, concurrency: 5 });
 * await limiter.run("123456789", () => fetch(url));
 */
export class RateLimiter {
  readonly #perMinute: number;
  readonly #maxWaitMs: number;
  readonly #now: () => number;
  readonly #slots: LimitFunction;
  readonly #used = new Map<string, { minute: number; count: number }>();

  constructor(options: RateLimiterOptions) {
    this.#perMinute = options.perMinute;
    this.#maxWaitMs = (options.maxWaitSeconds ?? 60) * 1000;
    this.#now = options.now ?? (() => Date.now());
    this.#slots = pLimit(options.concurrency);
  }

  run<T>(organizationId: string, call: () => Promise<T>): Promise<T> {
    return this.#slots(async () => {
      await this.#take(organizationId);
      return call();
    });
  }

  async #take(organizationId: string): Promise<void> {
    for (;;) {
      const now = this.#now();
      const minute = Math.floor(now / 60_000);
      const used = this.#used.get(organizationId);
      if (!used || used.minute !== minute) {
        this.#used.set(organizationId, { minute, count: 1 });
        return;
      }
      if (used.count < this.#perMinute) {
        used.count++;
        return;
      }
      const wait = (minute + 1) * 60_000 - now;
      if (wait > this.#maxWaitMs) {
        throw new ServiceError(
          "ZOHO_RATE_LIMITED",
          `This container's budget of ${this.#perMinute} Zoho calls a minute for organization ${organizationId} is used up.`,
          { retryAfterSeconds: Math.ceil(wait / 1000) },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}
