import { Logger } from "@aws-lambda-powertools/logger";

/**
 * The one structured logger of the service (Powertools: JSON lines, level from `LOG_LEVEL`,
 * cold-start flag and request ids once a handler injects the Lambda context). Nothing logged
 * through it ever carries a token or a client secret: log ids, codes and times only.
 */
export const logger = new Logger({ serviceName: "zoho-contact-status" });
