import pino, { type Logger } from 'pino';

/**
 * Structured JSON logs. Anything that could carry a secret or patient data is redacted by path, as a safety
 * net: the code logs UIDs, ids and sizes only, never names, birth dates or report text.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'avara-gateway' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: [
          'req.headers.authorization',
          'req.headers["webhook-signature"]',
          '*.token',
          '*.secret',
          '*.password',
          '*.plainText',
          '*.presignedUrl',
          '*.PatientName',
          '*.PatientBirthDate',
        ],
        censor: '[redacted]',
      },
    },
    destination,
  );
}

export type { Logger };
