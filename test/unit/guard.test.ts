import { describe, expect, it } from "vitest";
import { outstandingBalance } from "../../lib/activation";
import { JobReasonSchema, parseJob } from "../../lib/jobs/job";
import type { BooksContactDetail } from "../../lib/zoho/books-client";

const detail = (fields: Partial<BooksContactDetail>): BooksContactDetail => ({
  contact_id: "460000000026049",
  status: "active",
  contact_persons: [],
  outstanding_receivable_amount: 0,
  unused_credits_receivable_amount: 0,
  outstanding_payable_amount: 0,
  ...fields,
});

describe("outstandingBalance: what keeps a contact active", () => {
  it("holds a customer with an outstanding receivable or unused credits, naming the amounts", () => {
    const held = outstandingBalance(
      detail({
        contact_type: "customer",
        outstanding_receivable_amount: 250,
        currency_code: "USD",
      }),
    );
    expect(held).toEqual({
      code: "OUTSTANDING_BALANCE",
      message:
        "Not deactivated: the customer has an outstanding balance (outstanding_receivable_amount 250 USD).",
      contact_type: "customer",
      amounts: { outstanding_receivable_amount: 250, unused_credits_receivable_amount: 0 },
      currency_code: "USD",
    });
    expect(
      outstandingBalance(
        detail({ contact_type: "customer", unused_credits_receivable_amount: 0.01 }),
      )?.amounts,
    ).toEqual({ outstanding_receivable_amount: 0, unused_credits_receivable_amount: 0.01 });
  });

  it("holds a vendor with an outstanding payable, and reads only a vendor's amount for a vendor", () => {
    expect(
      outstandingBalance(detail({ contact_type: "vendor", outstanding_payable_amount: 12 }))
        ?.amounts,
    ).toEqual({ outstanding_payable_amount: 12 });
    expect(
      outstandingBalance(detail({ contact_type: "vendor", outstanding_receivable_amount: 12 })),
    ).toBeUndefined();
    expect(
      outstandingBalance(detail({ contact_type: "customer", outstanding_payable_amount: 12 })),
    ).toBeUndefined();
  });

  it("lets a contact with nothing outstanding (or a credit balance below zero) go", () => {
    expect(outstandingBalance(detail({ contact_type: "customer" }))).toBeUndefined();
    expect(
      outstandingBalance(detail({ contact_type: "customer", outstanding_receivable_amount: -5 })),
    ).toBeUndefined();
  });

  it("reads every amount of a contact of another type", () => {
    expect(
      outstandingBalance(detail({ contact_type: "both", outstanding_payable_amount: 3 }))?.amounts,
    ).toEqual({
      outstanding_receivable_amount: 0,
      unused_credits_receivable_amount: 0,
      outstanding_payable_amount: 3,
    });
  });

  it("reads a numeric string as its number", () => {
    expect(
      outstandingBalance(
        detail({
          contact_type: "customer",
          outstanding_receivable_amount: "1.50" as unknown as number,
        }),
      )?.amounts.outstanding_receivable_amount,
    ).toBe(1.5);
  });

  it("never reads a missing amount as zero: Zoho's answer is unexpected, so nothing is deactivated", () => {
    const { outstanding_receivable_amount: _gone, ...rest } = detail({ contact_type: "customer" });
    expect(() => outstandingBalance(rest as BooksContactDetail)).toThrow(
      expect.objectContaining({ code: "ZOHO_UNEXPECTED_ANSWER" }),
    );
    expect(() =>
      outstandingBalance(
        detail({ contact_type: "vendor", outstanding_payable_amount: "n/a" as unknown as number }),
      ),
    ).toThrow(/without outstanding_payable_amount/);
  });
});

describe("a job's reason and guard", () => {
  const reason = {
    rule: " Account_Type → inactive ",
    crm_record_id: " 5725767000000649013 ",
    field: " Account_Type ",
    value: " Former Customer ",
    source: "zoho_crm",
  };

  it("trims every string of the reason and keeps the guard", () => {
    expect(
      parseJob({ contact_id: "1", action: "deactivate", reason, guard: { outstanding: true } }),
    ).toMatchObject({
      reason: {
        rule: "Account_Type → inactive",
        crm_record_id: "5725767000000649013",
        field: "Account_Type",
        value: "Former Customer",
        source: "zoho_crm",
      },
      guard: { outstanding: true },
    });
  });

  it("takes an empty value (a field with none) but not an empty rule, record id or field", () => {
    expect(JobReasonSchema.safeParse({ ...reason, value: "" }).success).toBe(true);
    for (const name of ["rule", "crm_record_id", "field"]) {
      expect(() => parseJob({ contact_id: "1", reason: { ...reason, [name]: " " } })).toThrow(
        `reason.${name} must not be empty`,
      );
    }
  });

  it("refuses each problem at once, in words that say what to fix", () => {
    expect(() =>
      parseJob({
        contact_id: "1",
        reason: { ...reason, source: "pipedrive", extra: 1 },
        guard: { outstanding: 1 },
      }),
    ).toThrow(
      'reason.source must be "zoho_crm" or "hubspot"; reason does not take extra: it is {"rule", "crm_record_id", "field", "value", "source": "zoho_crm" | "hubspot"}; guard.outstanding must be true or false.',
    );
  });

  it("measures lengths after trimming", () => {
    expect(() =>
      parseJob({ contact_id: "1", reason: { ...reason, crm_record_id: ` ${"1".repeat(64)} ` } }),
    ).not.toThrow();
    expect(() =>
      parseJob({ contact_id: "1", reason: { ...reason, crm_record_id: "1".repeat(65) } }),
    ).toThrow("reason.crm_record_id is at most 64 characters");
  });
});
