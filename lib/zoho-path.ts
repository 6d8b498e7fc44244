/**
 * What the HTTP API needs only on the routes that call Zoho or read the Zoho secret
 * (`POST /contacts/{contact_id}/active|inactive`, `GET /contacts/{contact_id}/history`, Zoho CRM's
 * notifications), in one module: `functions/http-api.ts` loads it with `import()` on the first such
 * request, so the token store, the budget, the Books client and `p-retry` are a chunk that a
 * container answering only the other routes never parses (docs/performance.md, "Cold start").
 */
export { changeContactStatus } from "./activation";
export { organizationFor } from "./credentials/secret";
export { withZoho } from "./dependencies";
