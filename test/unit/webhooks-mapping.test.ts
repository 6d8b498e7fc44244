import { describe, expect, it } from "vitest";
import { ServiceError } from "../../lib/errors";
import type { NamedWebhookSource } from "../../lib/webhooks/config";
import { mapWebhookPayload } from "../../lib/webhooks/mapping";

const TOKENS = { tokens: ["tok-current-0123456789abcdef"] };
const zohoCrm: NamedWebhookSource = { name: "zoho-crm", preset: "zoho-crm", ...TOKENS };
const hubspot: NamedWebhookSource = { name: "hubspot", preset: "hubspot", ...TOKENS };

function refused(source: NamedWebhookSource, payload: unknown): string {
  try {
    mapWebhookPayload(source, payload);
  } catch (error) {
    expect(error).toBeInstanceOf(ServiceError);
    expect((error as ServiceError).code).toBe("INVALID_REQUEST");
    expect((error as ServiceError).statusCode).toBe(400);
    return (error as ServiceError).message;
  }
  throw new Error("not refused");
}

describe("mapWebhookPayload: Zoho CRM workflow webhooks", () => {
  it("maps a form payload by email to one job with the source and the event id", () => {
    const { jobs, rejected } = mapWebhookPayload(zohoCrm, {
      email: " Ann@Example.com ",
      status: "Inactive",
      event_id: "5000000012-1795600000",
    });
    expect(rejected).toEqual([]);
    expect(jobs).toEqual([
      {
        index: 0,
        job: {
          email: "Ann@Example.com",
          action: "deactivate",
          source: "zoho-crm",
          event_id: "5000000012-1795600000",
        },
      },
    ]);
  });

  it("maps a JSON payload by contact_id, with the organization it names", () => {
    const { jobs } = mapWebhookPayload(zohoCrm, {
      contact_id: "460000000000004",
      status: "active",
      organization_id: "10234695",
    });
    expect(jobs[0]?.job).toEqual({
      contact_id: "460000000000004",
      organization_id: "10234695",
      action: "activate",
      source: "zoho-crm",
    });
  });

  it("prefers contact_id when both are sent, and uses the source's organization by default", () => {
    const { jobs } = mapWebhookPayload(
      { ...zohoCrm, organization_id: "777" },
      { contact_id: "1", email: "a@b.co", status: "active" },
    );
    expect(jobs[0]?.job).toEqual({
      contact_id: "1",
      organization_id: "777",
      action: "activate",
      source: "zoho-crm",
    });
  });

  it("follows the operator's parameter names, dotted form keys and nested paths alike", () => {
    const source: NamedWebhookSource = {
      ...zohoCrm,
      mapping: {
        email: "Contacts.Email",
        action: "record.books.state",
        event_id: "meta.id",
        actions: { Customer: "activate", Churned: "deactivate" },
      },
    };
    const { jobs } = mapWebhookPayload(source, {
      "Contacts.Email": "ann@example.com",
      record: { books: { state: "churned" } },
      meta: { id: 42 },
    });
    expect(jobs[0]?.job).toEqual({
      email: "ann@example.com",
      action: "deactivate",
      source: "zoho-crm",
      event_id: "42",
    });
  });

  it.each([
    [
      { status: "active" },
      'Found no contact: nothing at "contact_id" (contact_id) or "email" (email).',
    ],
    [{ email: "ann@example.com" }, 'Found no status at "status".'],
    [
      { email: "ann@example.com", status: "paused" },
      "is not one of active, activate, inactive, deactivate",
    ],
    [{ email: "ann@example.com", status: "constructor" }, "is not one of"],
    [{ contact_id: "12a", status: "active" }, "contact_id must be 1 to 25 decimal digits"],
    [{ email: "not-an-email", status: "active" }, "email is not an email address"],
    [
      { email: "a@b.co", status: "active", organization_id: "org" },
      "organization_id must be 1 to 25",
    ],
    [{ contact_id: { id: 1 }, status: "active" }, "Found no contact"],
    ["email=a@b.co", "Found no contact"],
    [null, "Found no contact"],
  ])("refuses %j, saying what was missing", (payload, message) => {
    expect(refused(zohoCrm, payload)).toContain(message);
  });

  it("reads no inherited property as a field", () => {
    expect(
      refused({ ...zohoCrm, mapping: { email: "constructor.name" } }, { status: "active" }),
    ).toContain("Found no contact");
  });
});

describe("mapWebhookPayload: HubSpot webhooks", () => {
  const event = (overrides: Record<string, unknown>) => ({
    eventId: 100,
    subscriptionId: 2345,
    portalId: 62515,
    appId: 54321,
    occurredAt: 1795600000000,
    subscriptionType: "contact.propertyChange",
    attemptNumber: 0,
    objectId: 123,
    changeSource: "CRM",
    propertyName: "zoho_books_deactivate",
    propertyValue: "460000000000001",
    ...overrides,
  });

  it("maps each event of the array to a job: the property's name is the action, its value the contact", () => {
    const { jobs, skipped, rejected } = mapWebhookPayload(hubspot, [
      event({}),
      event({
        eventId: 101,
        propertyName: "zoho_books_activate",
        propertyValue: "460000000000004",
      }),
      event({ eventId: 102, subscriptionType: "contact.creation", propertyName: undefined }),
      event({ eventId: 103, propertyName: "firstname", propertyValue: "Ann" }),
    ]);
    expect(jobs).toEqual([
      {
        index: 0,
        job: {
          contact_id: "460000000000001",
          action: "deactivate",
          source: "hubspot",
          event_id: "100",
        },
      },
      {
        index: 1,
        job: {
          contact_id: "460000000000004",
          action: "activate",
          source: "hubspot",
          event_id: "101",
        },
      },
    ]);
    expect(skipped).toBe(2);
    expect(rejected).toEqual([]);
  });

  it("never takes HubSpot's own objectId for a Books contact", () => {
    expect(refused(hubspot, [event({ propertyValue: "" })])).toBe(
      'Event 0: Found no contact: nothing at "propertyValue" (contact_id) or (not mapped) (email).',
    );
  });

  it("reports the events it cannot map beside the jobs it can", () => {
    const { jobs, rejected } = mapWebhookPayload(hubspot, [
      event({ propertyValue: "not-an-id" }),
      event({ eventId: 101 }),
    ]);
    expect(jobs.map((j) => j.index)).toEqual([1]);
    expect(rejected[0]?.index).toBe(0);
    expect(rejected[0]?.error.message).toContain("contact_id must be 1 to 25 decimal digits");
  });

  it.each([
    [[], "The payload holds no events."],
    [[event({ propertyName: "firstname" })], "No event of the payload is one this source handles"],
    [{ not: "an array" }, "No event of the payload is one this source handles"],
  ])("refuses %j", (payload, message) => {
    expect(refused(hubspot, payload)).toContain(message);
  });

  it("finds the events under the path the operator names", () => {
    const source = { ...hubspot, mapping: { events: "data" } };
    expect(mapWebhookPayload(source, { data: [event({})] }).jobs).toHaveLength(1);
    expect(refused(source, { data: "x" })).toBe("The payload has no list of events at data.");
  });
});
