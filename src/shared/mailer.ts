import nodemailer, { type Transporter } from 'nodemailer';

import type { Logger } from './logger.js';

export interface Mail {
  to: string;
  subject: string;
  text: string;
}

export interface Mailer {
  send(mail: Mail): Promise<void>;
}

/**
 * E-mail over SMTP (nodemailer) when SMTP_URL is set. Without it, development logs
 * the message (so a password reset can be completed locally) and production drops it
 * with a warning: a missing mail server must not turn into a 500.
 */
export function createMailer(opts: { smtpUrl?: string; from: string; production: boolean; logger: Logger }): Mailer {
  if (opts.smtpUrl) {
    const transport: Transporter = nodemailer.createTransport(opts.smtpUrl);
    return { send: async (m) => void (await transport.sendMail({ from: opts.from, ...m })) };
  }
  return {
    send: async (m) => {
      if (opts.production)
        opts.logger.warn({ module: 'mail', to: m.to, subject: m.subject }, 'SMTP_URL is not set: e-mail not sent');
      else
        opts.logger.info(
          { module: 'mail', to: m.to, subject: m.subject, text: m.text },
          'e-mail (not sent: SMTP_URL is not set)',
        );
    },
  };
}
