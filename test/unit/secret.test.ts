import { describe, expect, it } from "vitest";
import {
  accountsUrl,
  DATA_CENTERS,
  defaultApiDomain,
  parseSecret,
} from "../../lib/credentials/secret";

// Zoho's data centers as the Zoho facts page lists them: the accounts server and the API domain
// must be the same data center, or Zoho answers invalid_client or 57.
const ZOHO_DATA_CENTERS = {
  com: ["https://accounts.zoho.com", "https://www.zohoapis.com"],
  eu: ["https://accounts.zoho.eu", "https://www.zohoapis.eu"],
  in: ["https://accounts.zoho.in", "https://www.zohoapis.in"],
  "com.au": ["https://accounts.zoho.com.au", "https://www.zohoapis.com.au"],
  jp: ["https://accounts.zoho.jp", "https://www.zohoapis.jp"],
  ca: ["https://accounts.zohocloud.ca", "https://www.zohoapis.ca"],
  sa: ["https://accounts.zoho.sa", "https://www.zohoapis.sa"],
  uk: ["https://accounts.zoho.uk", "https://www.zohoapis.uk"],
  "com.cn": ["https://accounts.zoho.com.cn", "https://www.zohoapis.com.cn"],
} as const;

const secret = (fields: Record<string, unknown>) =>
  parseSecret(
    JSON.stringify({ client_id: "1000.X", client_secret: "s", refresh_token: "r", ...fields }),
    "zoho/books",
  );

describe("data centers", () => {
  it("are exactly Zoho's, each accounts server paired with its API domain", () => {
    expect(
      Object.fromEntries(Object.entries(DATA_CENTERS).map(([dc, v]) => [dc, [v.accounts, v.api]])),
    ).toEqual(ZOHO_DATA_CENTERS);
  });

  it.each(Object.entries(ZOHO_DATA_CENTERS))(
    "data_center %s picks its accounts server and API domain",
    (dataCenter, [accounts, api]) => {
      const parsed = secret({ data_center: dataCenter });
      expect(accountsUrl(parsed)).toBe(accounts);
      expect(defaultApiDomain(parsed)).toBe(api);
    },
  );

  it("takes the UK data center (uk), and still refuses an unknown one naming the choices", () => {
    expect(secret({ data_center: "uk" }).data_center).toBe("uk");
    expect(() => secret({ data_center: "co.uk" })).toThrow(/data_center: must be one of .*\buk\b/);
  });
});
