import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface Mail {
  to: string[];
  /** The raw message with quoted-printable soft line breaks joined. */
  text: string;
}

export interface Mailbox {
  /** smtp://127.0.0.1:port, for the SMTP_URL setting. */
  url: string;
  received: Mail[];
  /** The next mail to `address` not yet taken (waits up to `ms`). */
  next(address: string, ms?: number): Promise<Mail>;
  close(): Promise<void>;
}

/**
 * A real SMTP server on a free loopback port that keeps every message it receives
 * (plain SMTP: no STARTTLS, no AUTH), so tests can read the mails Steward sends.
 */
export async function startMailbox(): Promise<Mailbox> {
  const received: Mail[] = [];
  const taken = new Set<Mail>();
  const waiters: (() => void)[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        received.push({
          to: session.envelope.rcptTo.map((a) => a.address.toLowerCase()),
          text: raw.replace(/=\r?\n/g, ''),
        });
        for (const w of waiters.splice(0)) w();
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.server.address() as AddressInfo;

  const find = (address: string) => received.find((m) => !taken.has(m) && m.to.includes(address.toLowerCase()));
  return {
    url: `smtp://127.0.0.1:${port}`,
    received,
    async next(address, ms = 5000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const mail = find(address);
        if (mail) {
          taken.add(mail);
          return mail;
        }
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no mail to ${address} within ${ms} ms`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
