import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { RequestPasswordResetDocument } from '../../generated/graphql.js';
import { gql } from '../../support/client.js';
import { startMailbox, type Mailbox } from '../../support/mailbox.js';
import { startTestServer, type TestServer } from '../../support/server.js';
import { createUser, firstAdmin, type TestUser } from '../../support/users.js';

/**
 * requestPasswordReset must not tell a known account from an unknown one by its
 * timing. Not measured in milliseconds: the answer must come before any work that
 * depends on the account. With the accounts and reset tables locked by another
 * transaction, both answers still arrive — neither path read or wrote them first —
 * and the known account's reset is issued once the lock goes.
 */
let mailbox: Mailbox;
let s: TestServer;
let admin: TestUser;
beforeAll(async () => {
  mailbox = await startMailbox();
  s = await startTestServer({ env: { SMTP_URL: mailbox.url } });
  admin = await firstAdmin(s);
});
afterAll(async () => {
  await s?.close();
  await mailbox?.close();
});

const request = (email: string) => gql(s.url, RequestPasswordResetDocument, { input: { email } });

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    p,
    new Promise<T>((_, reject) =>
      setTimeout(() => reject(new Error(`${what}: no answer while the tables were locked`)), ms),
    ),
  ]);
}

describe('password reset answer', () => {
  it('comes before any account look-up, for a known and an unknown e-mail alike', async () => {
    const u = await createUser(s, admin);
    const resetsBefore = Number((await s.sql<{ n: string }>('SELECT count(*) AS n FROM password_resets'))[0]!.n);
    const locker = new pg.Client({ connectionString: s.dbUrl });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE users, password_resets IN ACCESS EXCLUSIVE MODE');
      const [known, unknown] = await within(
        Promise.all([request(u.email), request('nobody-here@example.test')]),
        8000,
        'requestPasswordReset',
      );
      expect({ status: known.status, data: known.data, errors: known.errors }).toEqual({
        status: 200,
        data: { requestPasswordReset: true },
        errors: undefined,
      });
      expect({ status: unknown.status, data: unknown.data, errors: unknown.errors }).toEqual({
        status: 200,
        data: { requestPasswordReset: true },
        errors: undefined,
      });
      // Nothing was issued yet: the work waits for the lock.
      expect(mailbox.received.some((m) => m.to.includes(u.email))).toBe(false);
      await locker.query('COMMIT');
    } finally {
      await locker.end();
    }
    // Then the known account's reset is issued: one stored token, one mail; none for the unknown address.
    const mail = await mailbox.next(u.email);
    expect(mail.text).toMatch(/\brst_[A-Za-z0-9_-]{20,}/);
    expect(Number((await s.sql<{ n: string }>('SELECT count(*) AS n FROM password_resets'))[0]!.n)).toBe(
      resetsBefore + 1,
    );
    expect(mailbox.received.some((m) => m.to.includes('nobody-here@example.test'))).toBe(false);
  });
});
