import fc from "fast-check";
import { describe, expect, it, vi } from "vitest";
import { ServiceError } from "../../lib/errors";
import { ZOHO_ID_PATTERN } from "../../lib/ids";
import { ZohoBooksClient } from "../../lib/zoho/books-client";

const token = {
  accessToken: "1000.a.b",
  apiDomain: "https://www.zohoapis.com",
  expiresAt: Date.now() + 3600_000,
};

function client() {
  const fetch = vi.fn(async () =>
    Response.json({ code: 0, message: "The contact has been marked as active." }),
  );
  const books = new ZohoBooksClient({
    tokens: { getAccessToken: async () => token, replaceRejectedToken: async () => token },
    fetch: fetch as unknown as typeof globalThis.fetch,
  });
  return { books, fetch };
}

const notAnId = fc
  .string({ unit: "grapheme", maxLength: 40 })
  .filter((s) => !ZOHO_ID_PATTERN.test(s));
const anId = fc.stringMatching(/^\d{1,25}$/);

describe("ZohoBooksClient input checks", () => {
  it("never lets a contact id that is not 1-25 digits reach fetch", async () => {
    await fc.assert(
      fc.asyncProperty(notAnId, anId, async (contactId, organizationId) => {
        const { books, fetch } = client();
        const calls: Array<() => Promise<unknown>> = [
          () => books.markActive(contactId, organizationId),
          () => books.markInactive(contactId, organizationId),
          () => books.getContact(contactId, organizationId),
        ];
        for (const call of calls) {
          const error = await call().catch((e: unknown) => e);
          expect(error).toBeInstanceOf(ServiceError);
          expect((error as ServiceError).code).toBe("INVALID_REQUEST");
        }
        expect(fetch).not.toHaveBeenCalled();
      }),
      { numRuns: 300 },
    );
  });

  it("never lets an organization id that is not 1-25 digits reach fetch", async () => {
    await fc.assert(
      fc.asyncProperty(anId, notAnId, async (contactId, organizationId) => {
        const { books, fetch } = client();
        await expect(books.markActive(contactId, organizationId)).rejects.toMatchObject({
          code: "INVALID_REQUEST",
        });
        await expect(books.listContacts({ organizationId })).rejects.toMatchObject({
          code: "INVALID_REQUEST",
        });
        expect(fetch).not.toHaveBeenCalled();
      }),
      { numRuns: 300 },
    );
  });

  it("builds exactly the action URL from valid ids, with an empty POST body", async () => {
    await fc.assert(
      fc.asyncProperty(anId, anId, async (contactId, organizationId) => {
        const { books, fetch } = client();
        await books.markActive(contactId, organizationId);
        const [url, init] = fetch.mock.calls[0] as unknown as [URL, RequestInit];
        expect(url.href).toBe(
          `https://www.zohoapis.com/books/v3/contacts/${contactId}/active?organization_id=${organizationId}`,
        );
        expect(init.method).toBe("POST");
        expect(init.body).toBeUndefined();
        expect(new Headers(init.headers).get("authorization")).toBe("Zoho-oauthtoken 1000.a.b");
      }),
      { numRuns: 100 },
    );
  });
});

describe("a deadline", () => {
  it("starts no call whose timeout (10 s by default) no longer fits before it: OUT_OF_TIME, a wait", async () => {
    const { books, fetch } = client();
    const deadline = Date.now() + 9_000;
    const error = await books
      .markActive("460000000000004", "10234695", { deadline })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "OUT_OF_TIME", statusCode: 503, worker: "wait" });
    expect(fetch).not.toHaveBeenCalled();
  });

  it("lets a call that fits go out", async () => {
    const { books, fetch } = client();
    const deadline = Date.now() + 11_000;
    await expect(
      books.markActive("460000000000004", "10234695", { deadline }),
    ).resolves.toMatchObject({ changed: true });
    expect(fetch).toHaveBeenCalledTimes(1);
  });
});
