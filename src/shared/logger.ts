import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Structured JSON logs. Secrets are redacted by path so that a careless
 * `log.info({ input })` cannot leak a password, a token or an API key.
 */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'steward' },
    redact: {
      paths: [
        'req.headers.authorization',
        '*.password',
        '*.newPassword',
        '*.currentPassword',
        '*.token',
        '*.refreshToken',
        '*.accessToken',
        'apiKey',
        '*.apiKey',
        '*.*.apiKey',
        // Provider keys as stored (sealed) and as entities carry them.
        '*.platformKey',
        '*.sealed',
        '*.userKey',
        '*.authorization',
        'variables.*.password',
        'variables.*.apiKey',
      ],
      censor: '[redacted]',
    },
  });
}
