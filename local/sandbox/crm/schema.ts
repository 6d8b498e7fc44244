/** The field types the sandbox's CRM modules use, named as Zoho's fields metadata names them. */
export type CrmDataType =
  | "bigint"
  | "text"
  | "email"
  | "picklist"
  | "multiselectpicklist"
  | "datetime"
  | "lookup";

/** One field of a module, as `GET /crm/v8/settings/fields` describes it (the parts the sandbox uses). */
export interface CrmField {
  api_name: string;
  field_label: string;
  data_type: CrmDataType;
  /** Zoho's custom fields are the organization's own, not standard ones */
  custom_field: boolean;
  /** id and the system times: the control API cannot set them */
  read_only: boolean;
  /** the allowed values of a picklist or multi-select picklist */
  pick_list_values?: readonly string[];
  /** the module a lookup field points at */
  lookup?: CrmModuleName;
}

export type CrmModuleName = "Accounts" | "Contacts";

export interface CrmModule {
  api_name: CrmModuleName;
  /** Zoho's module id, stable within an organization */
  id: string;
  /** the field whose value is a lookup's `name` */
  nameField: string;
  fields: readonly CrmField[];
}

/** Account types: an organization's own picklist (Zoho ships a default list; organizations edit it). */
export const ACCOUNT_TYPES = [
  "Customer",
  "Former Customer",
  "Prospect",
  "Partner",
  "Other",
] as const;
/** The multi-select picklist the sandbox seeds, for tests of multi-valued fields. */
export const SEGMENTS = ["Retail", "Wholesale", "Online", "Export"] as const;

const system = (api_name: string, field_label: string, data_type: CrmDataType): CrmField => ({
  api_name,
  field_label,
  data_type,
  custom_field: false,
  read_only: true,
});
const standard = (
  api_name: string,
  field_label: string,
  data_type: CrmDataType,
  more: Partial<CrmField> = {},
): CrmField => ({
  api_name,
  field_label,
  data_type,
  custom_field: false,
  read_only: false,
  ...more,
});
const custom = (
  api_name: string,
  field_label: string,
  data_type: CrmDataType,
  more: Partial<CrmField> = {},
): CrmField => ({
  api_name,
  field_label,
  data_type,
  custom_field: true,
  read_only: false,
  ...more,
});

/** The two modules the sandbox serves, by API name (Zoho's module names are case-sensitive). */
export const CRM_MODULES: Readonly<Record<CrmModuleName, CrmModule>> = {
  Accounts: {
    api_name: "Accounts",
    id: "4150868000000002175",
    nameField: "Account_Name",
    fields: [
      system("id", "Record Id", "bigint"),
      standard("Account_Name", "Account Name", "text"),
      standard("Account_Type", "Account Type", "picklist", { pick_list_values: ACCOUNT_TYPES }),
      standard("Last_Activity_Time", "Last Activity Time", "datetime"),
      system("Created_Time", "Created Time", "datetime"),
      system("Modified_Time", "Modified Time", "datetime"),
      custom("Books_Contact_Id", "Books Contact Id", "text"),
      custom("Segments", "Segments", "multiselectpicklist", { pick_list_values: SEGMENTS }),
    ],
  },
  Contacts: {
    api_name: "Contacts",
    id: "4150868000000002179",
    nameField: "Full_Name",
    fields: [
      system("id", "Record Id", "bigint"),
      standard("First_Name", "First Name", "text"),
      standard("Last_Name", "Last Name", "text"),
      standard("Full_Name", "Contact Name", "text"),
      standard("Email", "Email", "email"),
      standard("Account_Name", "Account Name", "lookup", { lookup: "Accounts" }),
      standard("Last_Activity_Time", "Last Activity Time", "datetime"),
      system("Created_Time", "Created Time", "datetime"),
      system("Modified_Time", "Modified Time", "datetime"),
    ],
  },
};

/** The module by API name, or undefined (module names are case-sensitive, as Zoho's are). */
export function crmModule(name: string): CrmModule | undefined {
  return Object.hasOwn(CRM_MODULES, name) ? CRM_MODULES[name as CrmModuleName] : undefined;
}

/** A field of a module by API name (case-sensitive), or undefined. */
export function crmField(module: CrmModule, name: string): CrmField | undefined {
  return module.fields.find((f) => f.api_name === name);
}

/** Zoho CRM's datetime form, with the offset's colon: 2026-01-01T00:00:00+00:00 */
export function crmTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "+00:00");
}
