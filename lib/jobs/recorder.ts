import { type EventBridgeClient, PutEventsCommand } from "@aws-sdk/client-eventbridge";
import pRetry from "p-retry";
import { isServiceError, type ServiceError } from "../errors";
import { logger } from "../observability";
import type { ActivationJob } from "./job";
import type { JobRecord, JobRecords, JobUpdate } from "./records";

/** The events' `source`, for EventBridge rules. */
export const EVENT_SOURCE = "zoho-contact-status";

export const DETAIL_TYPES = {
  done: "Contact status changed",
  /** a guarded deactivation the contact's outstanding balance stopped */
  held: "Activation held",
  parked: "Activation parked",
} as const;

export interface JobRecorderOptions {
  records: JobRecords;
  eventBridge: EventBridgeClient;
  /** `EVENT_BUS_NAME`: the default bus, or one the operator names */
  eventBusName: string;
}

/**
 * What the worker writes as a job goes: its record (and the contact's history when it changed
 * something), and for a job that ends, an EventBridge event with the record as its detail. A
 * record write DynamoDB throttles is tried again (3 tries in about 0.3 s). A `done` outcome that
 * still cannot be written is thrown, so the worker keeps the message and the job runs again
 * (its action is idempotent) rather than losing the record, the event and the pending mark; so
 * is a `held` one (the guard reads the contact again and holds it again); a waiting or parked word that cannot be written is logged (the message, or the DLQ entry with
 * its reason, still holds the job).
 *
 * @example
 * await recorder.write(jobId, job, { state: "parked", error });
 */
export class JobRecorder {
  readonly #options: JobRecorderOptions;

  constructor(options: JobRecorderOptions) {
    this.#options = options;
  }

  async write(
    jobId: string,
    job: ActivationJob | undefined,
    update: JobUpdate,
  ): Promise<JobRecord | undefined> {
    let record: JobRecord;
    try {
      record = await pRetry(() => this.#options.records.update(jobId, job, update), {
        retries: 2,
        minTimeout: 100,
        shouldRetry: ({ error }) => isServiceError(error) && error.code === "AWS_UNAVAILABLE",
      });
    } catch (error) {
      logger.error("Could not write the job record", {
        job_id: jobId,
        state: update.state,
        error: (error as ServiceError).message,
      });
      if (update.state === "done" || update.state === "held") throw error;
      return undefined;
    }
    if (update.state === "done" || update.state === "held" || update.state === "parked") {
      await this.#publish(record, DETAIL_TYPES[update.state]);
      await this.#clearPending(record);
    }
    return record;
  }

  /**
   * A sync job that ended done or parked frees its contact for the next sync run; a held one
   * keeps it, saying why, for a while (lib/sync/state.ts).
   */
  async #clearPending(record: JobRecord): Promise<void> {
    const organizationId = record.request.organization_id ?? record.organization_id;
    const contactId = record.request.contact_id ?? record.contact_id;
    if (record.source !== "sync" || !organizationId || !contactId) return;
    const records = this.#options.records;
    await (record.held
      ? records.holdPending(organizationId, contactId, record.job_id, record.held)
      : records.clearPending(organizationId, contactId, record.job_id)
    ).catch((error: unknown) =>
      logger.error("Could not clear the contact's pending sync job", {
        job_id: record.job_id,
        error: (error as Error).message,
      }),
    );
  }

  async #publish(record: JobRecord, detailType: string): Promise<void> {
    try {
      const output = await this.#options.eventBridge.send(
        new PutEventsCommand({
          Entries: [
            {
              EventBusName: this.#options.eventBusName,
              Source: EVENT_SOURCE,
              DetailType: detailType,
              Detail: JSON.stringify(record),
              Resources: [],
            },
          ],
        }),
      );
      if ((output.FailedEntryCount ?? 0) > 0) {
        const [entry] = output.Entries ?? [];
        throw Object.assign(new Error(entry?.ErrorMessage ?? "refused"), {
          name: entry?.ErrorCode ?? "PutEventsFailed",
        });
      }
    } catch (error) {
      logger.error("Could not put the job's outcome event on EventBridge", {
        job_id: record.job_id,
        bus: this.#options.eventBusName,
        error: (error as Error).name,
      });
    }
  }
}
