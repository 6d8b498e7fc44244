import { ENV_DEFAULTS } from "../config";
import { ServiceError } from "../errors";
import { type AccessToken, parseJsonObject } from "../zoho/accounts";
import type { AccessTokenSource } from "../zoho/books-client";

/**
 * Zoho CRM API v8 as the sync reads it: COQL (`POST {api_domain}/crm/v8/coql`) over the same
 * Zoho connection as Books (same secret, same access token, same `api_domain`). CRM calls spend
 * CRM credits, not Books calls, so they take no permit of the Books budget; the client counts
 * them (`calls`) for the run's summary.
 *
 * Answers (Zoho CRM v8 OpenAPI, crm-oas `v8.0/coql.json`, `notifications.yaml`): 200
 * `{data, info: {count, more_records}}`; 204 with no body when no record matches; errors
 * `{code, details, message, status: "error"}`: 401 `INVALID_TOKEN` / `OAUTH_SCOPE_MISMATCH`,
 * 403 `NO_PERMISSION`, 429 (`RATE_LIMIT_EXCEEDED`, or `TOO_MANY_REQUESTS` as others report it:
 * decided by the HTTP status), 400 for a query COQL refuses, 5xx `INTERNAL_ERROR`.
 */

export type CrmModule = "Accounts" | "Contacts";

/** A COQL row: `id` and the selected fields. */
export type CoqlRow = { id: string } & Record<string, unknown>;

export interface ZohoCrmClientOptions {
  /** the Books connection's token store: the same grant carries the CRM scopes */
  tokens: AccessTokenSource;
  /** per-request timeout (`ZOHO_HTTP_TIMEOUT_MS`); default 10000 */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/**
 * The scopes a COQL read of `module` needs that `scope` (a grant's, space- or comma-separated)
 * does not hold, compared without regard to case; `[]` when it holds them all. Each need is met
 * by its `READ`, its `ALL`, or a wider `ALL` (`ZohoCRM.modules.ALL`).
 *
 * @example
 * missingCrmScopes("ZohoBooks.contacts.READ ZohoCRM.coql.READ", "Accounts");
 * // ["ZohoCRM.modules.Accounts.READ"]
 */
export function missingCrmScopes(scope: string, module: CrmModule): string[] {
  const granted = new Set(
    scope
      .split(/[\s,]+/)
      .filter(Boolean)
      .map((s) => s.toLowerCase()),
  );
  const needs: Array<[string, string[]]> = [
    ["ZohoCRM.coql.READ", ["ZohoCRM.coql.READ", "ZohoCRM.coql.ALL"]],
    [
      `ZohoCRM.modules.${module}.READ`,
      [`ZohoCRM.modules.${module}.READ`, `ZohoCRM.modules.${module}.ALL`, "ZohoCRM.modules.ALL"],
    ],
  ];
  return needs
    .filter(([, any]) => !any.some((name) => granted.has(name.toLowerCase())))
    .map(([named]) => named);
}

/**
 * Reads Zoho CRM records with COQL.
 *
 * @example
 * const crm = new ZohoCrmClient({ tokens });
 * await crm.checkScopes("Accounts"); // CRM_UNAUTHORIZED naming a missing scope
 * const rows = await crm.coql("select id, Account_Type from Accounts where id is not null limit 2000");
 */
export class ZohoCrmClient {
  readonly #tokens: AccessTokenSource;
  readonly #timeoutMs: number;
  readonly #fetch: typeof fetch;
  /** CRM calls made through this client (each spends CRM credits) */
  calls = 0;

  constructor(options: ZohoCrmClientOptions) {
    this.#tokens = options.tokens;
    this.#timeoutMs = options.timeoutMs ?? ENV_DEFAULTS.ZOHO_HTTP_TIMEOUT_MS;
    this.#fetch = options.fetch ?? fetch;
  }

  /**
   * Refuses, before any CRM call, a grant whose `scope` lacks what a COQL read of `module`
   * needs, naming each missing scope. A token whose grant answered no scope (or one stored
   * before the service kept it) is not refused here: the CRM's own 401 will say.
   */
  async checkScopes(module: CrmModule): Promise<void> {
    const token = await this.#tokens.getAccessToken();
    if (!token.scope) return;
    const missing = missingCrmScopes(token.scope, module);
    if (missing.length > 0) throw scopeError(module, missing, "the grant's scope lacks");
  }

  /**
   * One COQL query: its rows (`[]` for 204), and whether Zoho says more match; every refusal is
   * final (a refused token is replaced once by `request`).
   */
  async coql(
    selectQuery: string,
    module: CrmModule,
  ): Promise<{ rows: CoqlRow[]; moreRecords: boolean }> {
    const answer = await this.request("POST", "/crm/v8/coql", { select_query: selectQuery });
    if (answer.status === 204) return { rows: [], moreRecords: false };
    const body = answer.body;
    if (answer.status === 200 && body && Array.isArray(body.data)) {
      const info = (body.info ?? {}) as { more_records?: unknown };
      return { rows: body.data as CoqlRow[], moreRecords: info.more_records === true };
    }
    throw crmAnswerToError(answer.status, body, module);
  }

  /**
   * One call to the CRM API at `path` (from `{api_domain}`), counted, with the Books connection's
   * token: a refused one (`INVALID_TOKEN`) is replaced once, as the Books client does. Any HTTP
   * answer is returned; no answer in time is CRM_UNAVAILABLE.
   */
  async request(method: string, path: string, body?: unknown): Promise<CrmAnswer> {
    let token = await this.#tokens.getAccessToken();
    for (let attempt = 1; ; attempt++) {
      const answer = await this.#send(token, method, path, body);
      if (answer.status === 401 && answer.body?.code === "INVALID_TOKEN" && attempt === 1) {
        token = await this.#tokens.replaceRejectedToken(token.accessToken);
        continue;
      }
      return answer;
    }
  }

  async #send(token: AccessToken, method: string, path: string, body: unknown) {
    const url = new URL(path, token.apiDomain);
    this.calls++;
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), this.#timeoutMs);
    try {
      const response = await this.#fetch(url, {
        method,
        headers: {
          Authorization: `Zoho-oauthtoken ${token.accessToken}`,
          Accept: "application/json",
          ...(body === undefined ? {} : { "Content-Type": "application/json" }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: timeout.signal,
      });
      return { status: response.status, body: parseJsonObject(await response.text()) };
    } catch (error) {
      if (timeout.signal.aborted)
        throw new ServiceError(
          "CRM_UNAVAILABLE",
          `Zoho CRM did not answer within ${this.#timeoutMs} ms; nothing was queued.`,
          { httpStatus: 504 },
        );
      throw new ServiceError(
        "CRM_UNAVAILABLE",
        `Could not reach Zoho CRM at ${url.origin}; nothing was queued.`,
        { cause: error },
      );
    } finally {
      clearTimeout(timer);
    }
  }
}

/** An HTTP answer of the CRM API: its status and JSON body (undefined when empty or not JSON). */
export type CrmAnswer = { status: number; body: Record<string, unknown> | undefined };

function scopeError(module: CrmModule, missing: string[], why: string): ServiceError {
  return new ServiceError(
    "CRM_UNAUTHORIZED",
    `Zoho CRM: ${why} ${missing.join(", ")}; nothing was queued. Generate a new refresh token with the Books scopes and ${missing.join(",")} (one grant carries both) and store it as refresh_token in the secret.`,
    { details: { missing_scopes: missing, module } },
  );
}

/** A CRM answer that is not a success, by HTTP status first (Zoho's 429 codes vary), then by code. */
function crmAnswerToError(
  status: number,
  body: Record<string, unknown> | undefined,
  module: CrmModule,
): ServiceError {
  const code = typeof body?.code === "string" ? body.code : undefined;
  const message = typeof body?.message === "string" ? body.message : undefined;
  const said = `Zoho CRM answered HTTP ${status}${code ? ` ${code}` : ""}${message ? `: ${message}` : ""}`;
  if (status === 429)
    return new ServiceError(
      "CRM_RATE_LIMITED",
      `${said}. The CRM's credits or concurrency are used up; nothing was queued, the next scheduled run reads again.`,
    );
  if (status >= 500) return new ServiceError("CRM_UNAVAILABLE", `${said}; nothing was queued.`);
  if (code === "OAUTH_SCOPE_MISMATCH")
    // Zoho does not say which scope: name both a COQL read needs.
    return scopeError(
      module,
      [`ZohoCRM.coql.READ`, `ZohoCRM.modules.${module}.READ`],
      `${said}: the grant may lack`,
    );
  if (status === 403 || code === "NO_PERMISSION")
    return new ServiceError(
      "CRM_UNAUTHORIZED",
      `${said}: the CRM user's profile lacks API access or permission to read ${module}; nothing was queued.`,
      { details: { module, ...(body?.details ? { zoho_details: body.details } : {}) } },
    );
  if (status === 401)
    return new ServiceError(
      "CRM_UNAUTHORIZED",
      `${said}: the access token was refused even after a new one; the grant may be revoked or in another data center. Nothing was queued.`,
    );
  if (status === 400)
    // COQL refused the query: a field API name in the rules that the module does not have, or a value it does not take
    return new ServiceError(
      "INVALID_REQUEST",
      `${said}. Check the source's field API names against Zoho CRM's (Setup > Developer Hub > APIs > API Names); nothing was queued.`,
      { details: { ...(body?.details ? { zoho_details: body.details } : {}) } },
    );
  return new ServiceError(
    "CRM_UNAVAILABLE",
    `${said} (not an answer the service knows); nothing was queued.`,
  );
}
