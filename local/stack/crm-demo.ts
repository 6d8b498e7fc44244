/**
 * The CRM sources `npm start` prints a run of (scripts/start.ts) and the e2e test runs
 * (test/e2e/crm-local.test.ts): one definition, so the test checks what the user is shown.
 */

/** Zoho CRM accounts: customers active, former customers inactive, matched by the integration's link. */
export const DEMO_ZOHO_CRM_SOURCE = {
  type: "zoho_crm",
  module: "Accounts",
  rules: [{ field: "Account_Type", active: ["Customer"], inactive: ["Former Customer"] }],
  match: ["zcrm_link", "email"],
};

/** HubSpot companies by lifecycle stage, matched by the property holding the Books contact id. */
export const DEMO_HUBSPOT_SOURCE = {
  type: "hubspot",
  object: "companies",
  rules: [{ field: "lifecyclestage", active: ["customer"], inactive: ["other"] }],
  match: ["books_id_field:zoho_books_contact_id"],
};
