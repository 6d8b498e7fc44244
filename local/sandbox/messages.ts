/**
 * Zoho answers in the organization's language: the same `code` with "El recurso no existe." or
 * "拒绝访问" for a message (both seen in public clients). The sandbox answers in
 * `settings.language`, so that tests can prove the service never decides by message text.
 */
export type SandboxLanguage = "en" | "es" | "zh";

export const LANGUAGES: readonly SandboxLanguage[] = ["en", "es", "zh"];

export type MessageId = keyof typeof EN;

const EN = {
  invalidToken: "Invalid OAuth token.",
  notAuthorized: "You are not authorized to perform this operation",
  notMember: "You are not a member of this organization.",
  invalidOrganization: "Invalid value passed for organization_id",
  invalidContactId: "Invalid value passed for contact_id",
  doesNotExist: "Contact does not exist.",
  invalidFilter: "Invalid value passed for filter_by",
  invalidUrl: "Invalid URL Passed",
  tooManyInProgress: "Too many requests are in progress. Please try again later.",
  perMinute: "You have exceeded the maximum number of API calls per minute.",
  daily: "You have reached the maximum number of API calls for the day.",
  internal: "Internal error. Please try again after some time.",
  alreadyActive: "The contact is already active.",
  alreadyInactive: "The contact is already inactive.",
  markedActive: "The contact has been marked as active.",
  markedInactive: "The contact has been marked as inactive.",
  methodNotAllowed: "The HTTP method {method} is not allowed for the requested resource",
} as const;

export const MESSAGES: Readonly<Record<SandboxLanguage, Readonly<Record<MessageId, string>>>> = {
  en: EN,
  es: {
    invalidToken: "Token de OAuth no válido.",
    notAuthorized: "No está autorizado para realizar esta operación",
    notMember: "No es miembro de esta organización.",
    invalidOrganization: "Se ha pasado un valor no válido para organization_id",
    invalidContactId: "Se ha pasado un valor no válido para contact_id",
    doesNotExist: "El recurso no existe.",
    invalidFilter: "Se ha pasado un valor no válido para filter_by",
    invalidUrl: "Se ha pasado una URL no válida",
    tooManyInProgress: "Hay demasiadas solicitudes en curso. Inténtelo de nuevo más tarde.",
    perMinute: "Ha superado el número máximo de llamadas a la API por minuto.",
    daily: "Ha alcanzado el número máximo de llamadas a la API del día.",
    internal: "Error interno. Inténtelo de nuevo pasado un tiempo.",
    alreadyActive: "El contacto ya está activo.",
    alreadyInactive: "El contacto ya está inactivo.",
    markedActive: "El contacto se ha marcado como activo.",
    markedInactive: "El contacto se ha marcado como inactivo.",
    methodNotAllowed: "El método HTTP {method} no está permitido para el recurso solicitado",
  },
  zh: {
    invalidToken: "无效的 OAuth 令牌。",
    notAuthorized: "拒绝访问",
    notMember: "您不是该组织的成员。",
    invalidOrganization: "为 organization_id 传递的值无效",
    invalidContactId: "为 contact_id 传递的值无效",
    doesNotExist: "资源不存在。",
    invalidFilter: "为 filter_by 传递的值无效",
    invalidUrl: "传递的 URL 无效",
    tooManyInProgress: "正在处理的请求过多，请稍后再试。",
    perMinute: "您已超过每分钟的最大 API 调用次数。",
    daily: "您已达到当天的最大 API 调用次数。",
    internal: "内部错误，请稍后再试。",
    alreadyActive: "该联系人已处于活动状态。",
    alreadyInactive: "该联系人已处于非活动状态。",
    markedActive: "该联系人已标记为活动。",
    markedInactive: "该联系人已标记为非活动。",
    methodNotAllowed: "请求的资源不允许使用 HTTP 方法 {method}",
  },
};

/** A message in `language`, `{name}` placeholders filled in. */
export function message(
  language: SandboxLanguage,
  id: MessageId,
  values: Record<string, string> = {},
): string {
  return MESSAGES[language][id].replace(/\{(\w+)\}/g, (_, name: string) => values[name] ?? "");
}
