import { createHmac } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import * as OTPAuth from 'otpauth';

import type { Config } from '../../config.js';
import type { EventBus } from '../../events/bus.js';
import { conflictOnDuplicate } from '../../shared/conflict.js';
import { randomSecret, sha256, type Envelope } from '../../shared/crypto.js';
import { BadInputError, ConflictError, ForbiddenError, UnauthenticatedError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { Mailer } from '../../shared/mailer.js';
import { inTransaction, type Scope, type Viewer } from '../../shared/scope.js';
import { isHumanAdmin } from '../../shared/viewer.js';
import type { AuditService } from '../audit/index.js';
import type { AccessTokens } from './access-token.js';
import type { AuthLimits } from './auth-limits.js';
import { CREDENTIALS_REVOKED, type CredentialsRevoked } from './identity.events.js';
import { PasswordReset } from './password-reset.entity.js';
import { PasswordHasher } from './password.js';
import { Session } from './session.entity.js';
import { Role, User, UserStatus } from './user.entity.js';

export interface AuthDeps {
  config: Config;
  hasher: PasswordHasher;
  tokens: AccessTokens;
  envelope: Envelope;
  mailer: Mailer;
  bus: EventBus;
  audit: AuditService;
  logger: Logger;
  limits: AuthLimits;
}

export interface AuthResult {
  accessToken: string;
  refreshToken: string;
  user: User;
}

export interface SignUpData {
  email: string;
  username: string;
  password: string;
  name?: string | null;
  invitationCode?: string | null;
}

const TOTP_PERIOD = 30;
/** The associated data a TOTP secret is sealed with (also used by `keys:rotate`). */
export const totpContext = (userId: string) => `totp|user:${userId}`;
const normalise = (s: string) => s.trim().toLowerCase();

/** Accounts that may not sign in or act, whatever their credentials. */
export function assertActive(user: Pick<User, 'status' | 'isBlocked'>): void {
  if (user.isBlocked) throw new ForbiddenError('This account is blocked');
  if (user.status !== UserStatus.ACTIVE) throw new ForbiddenError(`This account is ${user.status.toLowerCase()}`);
}

/**
 * Sign-up, sign-in, sessions and second factors. Secrets are
 * stored only as hashes; failures that reveal nothing look the same whatever failed.
 */
export class AuthService {
  constructor(private readonly deps: AuthDeps) {}

  // ---------- sign-up ----------

  /** The first user ever becomes ADMIN; later ones need an invitation unless OPEN_SIGNUP. */
  async signUp(scope: Scope, data: SignUpData): Promise<AuthResult> {
    const email = normalise(data.email);
    const username = normalise(data.username);
    await this.deps.limits.take('signUp', scope.meta.ip, email);
    const passwordHash = await this.deps.hasher.hash(data.password);
    return conflictOnDuplicate(
      () =>
        inTransaction(scope, async (tx) => {
          // Serialises sign-ups just long enough that two "first users" cannot both become admin.
          await tx.em.execute(`SELECT pg_advisory_xact_lock(hashtext('steward:signup'))`);
          const [{ n }] = await tx.em.execute<{ n: number }[]>(`SELECT count(*)::int AS n FROM users`);
          let role = Role.USER;
          if (n === 0) role = Role.ADMIN;
          else if (data.invitationCode) role = await this.useInvitation(tx.em, data.invitationCode, email);
          else if (!this.deps.config.OPEN_SIGNUP) throw new ForbiddenError('Sign-up requires an invitation code');

          const user = tx.em.create(User, { email, username, name: data.name ?? null, passwordHash, role });
          await tx.em.flush();
          this.deps.audit.record(tx, {
            action: 'user.signUp',
            entityType: 'User',
            entityId: user.id,
            actorId: user.id,
            actorLabel: `user:${user.id}`,
            after: { email, username, role },
          });
          return this.openSession(tx, user);
        }),
      'That e-mail or username is already taken',
    );
  }

  /** Atomically takes one use of a code (two concurrent accepts of a single-use code: one wins). */
  private async useInvitation(em: EntityManager, code: string, email: string): Promise<Role> {
    const rows = await em.execute<{ role: Role }[]>(
      `UPDATE invitations SET uses = uses + 1
        WHERE code_hash = ? AND uses < max_uses AND expires_at > now() AND revoked_at IS NULL AND (email IS NULL OR email = ?)
        RETURNING role`,
      [sha256(code), email],
    );
    if (!rows[0])
      throw BadInputError.field('invitationCode', 'is invalid, used up, expired or meant for another e-mail');
    return rows[0].role;
  }

  // ---------- sign-in ----------

  /**
   * Email or username + password (+ TOTP when enabled). Unknown account, wrong password,
   * locked account and throttled address answer the same.
   *
   * Two layers, the narrow one first (see AuthLimits): LOGIN_IP_MAX_FAILURES failures on an
   * account from one address refuse that address for that account; LOGIN_MAX_FAILURES in a
   * row from anywhere lock the account for LOGIN_LOCK_SECONDS. Each attempt is charged to
   * the account *before* its password is checked (one conditional UPDATE that also refuses
   * a locked account), so the lock holds however attempts arrive: one after another, as
   * aliases in one request, or all at once. A success gives the attempt back by resetting
   * the count.
   *
   * A lock cannot be turned against its owner: the right password AND a right TOTP code
   * from a device that signed in to the account before (same address and user agent as
   * one of its sessions) still sign in while the account is locked. Without TOTP a lock
   * holds for everyone: a password alone is what an attacker guesses.
   */
  async login(scope: Scope, login: string, password: string, totpCode?: string | null): Promise<AuthResult> {
    const key = normalise(login);
    const ip = scope.meta.ip;
    await this.deps.limits.take('login', ip);
    const user = await scope.em.findOne(User, { $or: [{ email: key }, { username: key }] }, { refresh: true });
    const refuse = async (
      reason: string,
      attempt?: { failedAttempts: number; lockedUntil: Date | null },
      error = UnauthenticatedError.invalidCredentials(),
    ) => {
      await this.deps.limits.loginFailed(key, ip);
      await this.auditFailure(scope, user?.id ?? null, reason, attempt);
      return error;
    };
    if (await this.deps.limits.loginThrottled(key, ip)) {
      await this.deps.hasher.verifyDummy(password);
      await this.auditFailure(scope, user?.id ?? null, 'address throttled');
      throw UnauthenticatedError.invalidCredentials();
    }
    if (!user) {
      await this.deps.hasher.verifyDummy(password);
      throw await refuse('unknown account');
    }
    const attempt = await this.takeAttempt(scope.em, user.id);
    const ownerDespiteLock = !attempt && user.totpEnabled && !!totpCode && (await this.signedInBefore(scope, user.id));
    if (!attempt && !ownerDespiteLock) {
      await this.deps.hasher.verifyDummy(password);
      throw await refuse('locked');
    }
    if (!(await this.deps.hasher.verify(user.passwordHash, password)))
      throw await refuse('wrong password', attempt ?? undefined);
    if (user.totpEnabled) {
      if (!totpCode) {
        // Not a failure: the password was right and the client now asks for the code.
        await this.giveBackAttempt(scope.em, user.id);
        throw Object.assign(new UnauthenticatedError('A TOTP code is required'), { details: { totpRequired: true } });
      }
      if (!(await this.consumeTotp(scope.em, user, totpCode)))
        throw await refuse('wrong TOTP code', attempt ?? undefined, new UnauthenticatedError('Invalid TOTP code'));
    }
    try {
      assertActive(user);
    } catch (err) {
      if (attempt) await this.giveBackAttempt(scope.em, user.id);
      throw err;
    }
    await this.deps.limits.loginSucceeded(key, ip);
    const rehash = this.deps.hasher.needsRehash(user.passwordHash) ? await this.deps.hasher.hash(password) : null;
    return inTransaction(scope, async (tx) => {
      // Fresh: takeAttempt changed the counters behind the unit of work's back.
      const u = await tx.em.findOneOrFail(User, user.id, { refresh: true });
      // The owner signing in through a lock leaves it in place for everyone else.
      if (!ownerDespiteLock) {
        u.failedLoginAttempts = 0;
        u.lockedUntil = null;
      }
      u.lastLoginAt = new Date();
      u.lastActivityAt = new Date();
      if (rehash) u.passwordHash = rehash;
      this.deps.audit.record(tx, {
        action: 'auth.login',
        entityType: 'User',
        entityId: u.id,
        actorId: u.id,
        actorLabel: `user:${u.id}`,
        after: { rehashed: !!rehash, ...(ownerDespiteLock ? { throughLock: true } : {}) },
      });
      return this.openSession(tx, u);
    });
  }

  /** Whether this address and user agent opened a session of the user before (a device it signed in from). */
  private async signedInBefore(scope: Scope, userId: string): Promise<boolean> {
    if (!scope.meta.ip) return false;
    const rows = await scope.em.execute(
      `SELECT 1 FROM sessions WHERE user_id = ? AND ip = ?::inet AND user_agent IS NOT DISTINCT FROM ? LIMIT 1`,
      [userId, scope.meta.ip, scope.meta.userAgent],
    );
    return rows.length > 0;
  }

  /**
   * Charges one login attempt to the account, committed at once (no transaction around
   * it, so parallel attempts see each other). The attempt that reaches the limit locks
   * the account; a success then unlocks it. Once a lock has run out, counting starts
   * over (5 more consecutive failures lock it again). null when the account is locked.
   */
  private async takeAttempt(
    em: EntityManager,
    userId: string,
  ): Promise<{ failedAttempts: number; lockedUntil: Date | null } | null> {
    const { LOGIN_MAX_FAILURES, LOGIN_LOCK_SECONDS } = this.deps.config;
    // `locked_until IS NOT NULL` here means an expired lock (a live one fails the WHERE).
    const attempts = `CASE WHEN locked_until IS NOT NULL THEN 1 ELSE failed_login_attempts + 1 END`;
    const [row] = await em.execute<{ failed_login_attempts: number; locked_until: Date | null }[]>(
      `UPDATE users SET failed_login_attempts = ${attempts},
              locked_until = CASE WHEN ${attempts} >= ? THEN now() + make_interval(secs => ?) ELSE NULL END
        WHERE id = ? AND (locked_until IS NULL OR locked_until <= now())
        RETURNING failed_login_attempts, locked_until`,
      [LOGIN_MAX_FAILURES, LOGIN_LOCK_SECONDS, userId],
    );
    return row ? { failedAttempts: row.failed_login_attempts, lockedUntil: row.locked_until } : null;
  }

  /** Undoes `takeAttempt` for an attempt that was not a failure (right password, but a TOTP code is still needed, or the account is inactive). */
  private async giveBackAttempt(em: EntityManager, userId: string): Promise<void> {
    await em.execute(
      `UPDATE users SET failed_login_attempts = greatest(failed_login_attempts - 1, 0),
              locked_until = CASE WHEN failed_login_attempts - 1 < ? THEN NULL ELSE locked_until END
        WHERE id = ?`,
      [this.deps.config.LOGIN_MAX_FAILURES, userId],
    );
  }

  private auditFailure(
    scope: Scope,
    userId: string | null,
    reason: string,
    attempt?: { failedAttempts: number; lockedUntil: Date | null },
  ) {
    return inTransaction(scope, async (tx) => {
      this.deps.audit.record(tx, {
        action: 'auth.login',
        entityType: 'User',
        entityId: userId,
        actorId: null,
        actorLabel: 'anonymous',
        outcome: 'FAILURE',
        after: attempt
          ? { reason, failedAttempts: attempt.failedAttempts, lockedUntil: attempt.lockedUntil }
          : { reason },
      });
    });
  }

  /**
   * The refresh token that succeeds `previous` on rotation: derived from it with the
   * signing key (HMAC), so within the grace window the same successor can be answered
   * again without ever storing a refresh token (only hashes are stored).
   */
  private successorOf(previous: string): string {
    return `str_${createHmac('sha256', this.deps.config.TOKEN_SIGNING_KEY).update(`refresh-successor|${previous}`).digest('base64url')}`;
  }

  /** Creates a session (refresh token) in `familyId` or a new family, and its access token. */
  private async openSession(
    tx: Scope,
    user: User,
    familyId?: string,
    refreshToken = `str_${randomSecret(32)}`,
  ): Promise<AuthResult> {
    const session = tx.em.create(Session, {
      user: user.id,
      familyId: familyId ?? crypto.randomUUID(),
      refreshTokenHash: sha256(refreshToken),
      expiresAt: await this.sessionExpiry(tx, familyId),
      ip: tx.meta.ip,
      userAgent: tx.meta.userAgent,
      device: tx.meta.userAgent?.slice(0, 200) ?? null,
      lastUsedAt: new Date(),
    });
    await tx.em.flush();
    return { accessToken: await this.deps.tokens.sign(user.id, session.id), refreshToken, user };
  }

  /**
   * A refresh token lives REFRESH_TOKEN_TTL_SECONDS, but never past its family's
   * SESSION_MAX_LIFETIME_SECONDS from the sign-in that started it: rotation slides the
   * idle expiry, not the absolute one. A rotation past the end is refused (the caller's
   * transaction rolls back, the presented token stays as it was): sign in again.
   */
  private async sessionExpiry(tx: Scope, familyId?: string): Promise<Date> {
    const now = Date.now();
    let started = now;
    if (familyId) {
      const [row] = await tx.em.execute<{ started: Date | string | null }[]>(
        `SELECT min(created_at) AS started FROM sessions WHERE family_id = ?`,
        [familyId],
      );
      if (row?.started) started = new Date(row.started).getTime();
    }
    const end = started + this.deps.config.SESSION_MAX_LIFETIME_SECONDS * 1000;
    if (end <= now) throw new UnauthenticatedError('This session has reached its maximum lifetime; sign in again');
    return new Date(Math.min(now + this.deps.config.REFRESH_TOKEN_TTL_SECONDS * 1000, end));
  }

  // ---------- refresh, logout ----------

  /**
   * Rotates a refresh token. The old token is marked rotated by one conditional UPDATE,
   * so of two concurrent refreshes exactly one wins. Presenting an already-rotated token
   * is reuse: the whole family is revoked (strict, as OAuth 2.1 recommends) and its
   * sockets closed. Except within REFRESH_REUSE_GRACE_SECONDS of its rotation, while its
   * successor is still unused: then it answers that same successor (two tabs refreshing
   * at the same moment both stay signed in, and end up holding the same token).
   */
  async refresh(scope: Scope, refreshToken: string): Promise<AuthResult> {
    const hash = sha256(refreshToken);
    const outcome = await inTransaction(scope, async (tx) => {
      const [row] = await tx.em.execute<{ id: string; user_id: string; family_id: string }[]>(
        `UPDATE sessions SET rotated_at = now(), last_used_at = now()
          WHERE refresh_token_hash = ? AND rotated_at IS NULL AND revoked_at IS NULL AND expires_at > now()
          RETURNING id, user_id, family_id`,
        [hash],
      );
      if (!row) {
        const [old] = await tx.em.execute<{ user_id: string; family_id: string; rotated_at: Date | null }[]>(
          `SELECT user_id, family_id, rotated_at FROM sessions WHERE refresh_token_hash = ?`,
          [hash],
        );
        if (old?.rotated_at) {
          const again = await this.withinGrace(tx, old.rotated_at, refreshToken);
          if (again) return again;
          const ids = await this.revokeWhere(tx, `family_id = ?`, [old.family_id], 'refresh token reuse');
          this.deps.audit.record(tx, {
            action: 'auth.refreshReuse',
            entityType: 'Session',
            entityId: old.family_id,
            actorId: old.user_id,
            outcome: 'FAILURE',
            after: { revokedSessions: ids.length },
          });
          await this.publishRevoked(tx, { userId: old.user_id, sessionIds: ids, reason: 'refresh token reuse' });
        }
        return null;
      }
      const user = await tx.em.findOneOrFail(User, row.user_id);
      assertActive(user);
      return this.openSession(tx, user, row.family_id, this.successorOf(refreshToken));
    });
    if (!outcome) throw UnauthenticatedError.invalidToken();
    return outcome;
  }

  /** The successor of a token rotated less than the grace window ago, when it is still live and unrotated; else null (reuse). */
  private async withinGrace(tx: Scope, rotatedAt: Date, refreshToken: string): Promise<AuthResult | null> {
    const grace = this.deps.config.REFRESH_REUSE_GRACE_SECONDS;
    if (grace <= 0 || Date.now() - new Date(rotatedAt).getTime() > grace * 1000) return null;
    const successor = this.successorOf(refreshToken);
    const [next] = await tx.em.execute<{ id: string; user_id: string }[]>(
      `SELECT id, user_id FROM sessions WHERE refresh_token_hash = ? AND rotated_at IS NULL AND revoked_at IS NULL AND expires_at > now()`,
      [sha256(successor)],
    );
    if (!next) return null;
    const user = await tx.em.findOneOrFail(User, next.user_id);
    assertActive(user);
    return { accessToken: await this.deps.tokens.sign(user.id, next.id), refreshToken: successor, user };
  }

  /** Ends the caller's session family (its refresh token and access tokens). */
  async logout(scope: Scope, viewer: Viewer): Promise<boolean> {
    if (!viewer.sessionId) throw new BadInputError('logout ends a session; API tokens are revoked with revokeApiToken');
    return inTransaction(scope, async (tx) => {
      const ids = await this.revokeWhere(
        tx,
        `family_id = (SELECT family_id FROM sessions WHERE id = ?)`,
        [viewer.sessionId],
        'logout',
      );
      this.deps.audit.record(tx, { action: 'auth.logout', entityType: 'Session', entityId: viewer.sessionId });
      await this.publishRevoked(tx, { userId: viewer.userId, sessionIds: ids, reason: 'logout' });
      return true;
    });
  }

  /** Ends every session of the caller and closes the sockets opened with them; with `revokeApiTokens`, their API tokens too. */
  async logoutAll(scope: Scope, viewer: Viewer, revokeApiTokens = false): Promise<number> {
    return inTransaction(scope, async (tx) => {
      const n = await this.revokeAllSessions(tx, viewer.userId, 'logoutAll');
      const tokens = revokeApiTokens ? await this.revokeApiTokens(tx, viewer.userId, 'logoutAll') : 0;
      this.deps.audit.record(tx, {
        action: 'auth.logoutAll',
        entityType: 'User',
        entityId: viewer.userId,
        after: { revokedSessions: n, revokedApiTokens: tokens },
      });
      return n;
    });
  }

  /**
   * Revokes the user's live API tokens (`serviceOnly`: only the service tokens they created)
   * and closes the sockets opened with them; returns how many.
   */
  async revokeApiTokens(tx: Scope, userId: string, reason: string, serviceOnly = false): Promise<number> {
    const rows = await tx.em.execute<{ id: string }[]>(
      `UPDATE api_tokens SET revoked_at = now() WHERE user_id = ? AND revoked_at IS NULL${serviceOnly ? ' AND service_actor IS NOT NULL' : ''} RETURNING id`,
      [userId],
    );
    for (const r of rows) await this.publishRevoked(tx, { userId, apiTokenId: r.id, reason });
    return rows.length;
  }

  /** Ends every session of the user (optionally keeping the caller's family). */
  async revokeAllSessions(tx: Scope, userId: string, reason: string, keepSessionId?: string): Promise<number> {
    const keep = keepSessionId ? ` AND family_id <> (SELECT family_id FROM sessions WHERE id = ?)` : '';
    const ids = await this.revokeWhere(
      tx,
      `user_id = ?${keep}`,
      keepSessionId ? [userId, keepSessionId] : [userId],
      reason,
    );
    await this.publishRevoked(tx, { userId, allSessions: !keepSessionId, sessionIds: ids, reason });
    return ids.length;
  }

  /** Ends one session family: the caller's own, or (admins) anyone's; closes its sockets wherever they are. */
  async revokeSession(scope: Scope, viewer: Viewer, sessionId: string): Promise<boolean> {
    return inTransaction(scope, async (tx) => {
      const [target] = await tx.em.execute<{ user_id: string; family_id: string }[]>(
        `SELECT user_id, family_id FROM sessions WHERE id = ? AND (user_id = ? OR ?)`,
        [sessionId, viewer.userId, isHumanAdmin(viewer)],
      );
      if (!target) return false;
      const ids = await this.revokeWhere(tx, `family_id = ?`, [target.family_id], 'revoked');
      if (ids.length === 0) return false;
      this.deps.audit.record(tx, {
        action: 'session.revoke',
        entityType: 'Session',
        entityId: sessionId,
        after: { userId: target.user_id, revokedSessions: ids.length },
      });
      // The owner's sockets, not the caller's: an admin may revoke someone else's session.
      await this.publishRevoked(tx, { userId: target.user_id, sessionIds: ids, reason: 'revoked' });
      return true;
    });
  }

  private async revokeWhere(tx: Scope, where: string, params: unknown[], reason: string): Promise<string[]> {
    const rows = await tx.em.execute<{ id: string }[]>(
      `UPDATE sessions SET revoked_at = now(), revoked_reason = ? WHERE revoked_at IS NULL AND ${where} RETURNING id`,
      [reason, ...params],
    );
    return rows.map((r) => r.id);
  }

  publishRevoked(tx: Scope, payload: CredentialsRevoked): Promise<void> {
    return this.deps.bus.publish(tx.em, CREDENTIALS_REVOKED, payload);
  }

  /** Runs `fn`, which may publish a revocation of API token `apiTokenId`, and answers once it is in force here (EventBus.inForce). */
  tokenRevocationInForce<T>(apiTokenId: string, fn: () => Promise<T>, published: (r: T) => boolean): Promise<T> {
    const match = (p: unknown) => (p as CredentialsRevoked).apiTokenId === apiTokenId;
    return this.deps.bus.inForce(CREDENTIALS_REVOKED, match, fn, published);
  }

  // ---------- passwords ----------

  /** Changes the caller's password and ends its other sessions. */
  async changePassword(scope: Scope, viewer: Viewer, current: string, next: string): Promise<boolean> {
    PasswordHasher.validate(next, 'newPassword');
    const user = await scope.em.findOneOrFail(User, viewer.userId, { refresh: true });
    if (!(await this.deps.hasher.verify(user.passwordHash, current)))
      throw BadInputError.field('currentPassword', 'is wrong');
    const hash = await this.deps.hasher.hash(next);
    return inTransaction(scope, async (tx) => {
      const u = await tx.em.findOneOrFail(User, viewer.userId);
      u.passwordHash = hash;
      await this.revokeAllSessions(tx, u.id, 'password changed', viewer.sessionId);
      this.deps.audit.record(tx, { action: 'user.changePassword', entityType: 'User', entityId: u.id });
      return true;
    });
  }

  /**
   * Always answers the same, in the same time, whether or not the account exists: the
   * answer is given before anything depends on the account. The look-up, the token,
   * its audit event and the mail happen after it (on a fork of the request's
   * EntityManager), so neither the database work of a known account nor a slow or
   * unreachable mail server tells the two apart; a failure is logged, never returned.
   */
  async requestPasswordReset(scope: Scope, emailAddress: string): Promise<boolean> {
    const email = normalise(emailAddress);
    await this.deps.limits.take('requestPasswordReset', scope.meta.ip, email);
    const background: Scope = { em: scope.em.fork() as EntityManager, viewer: null, meta: scope.meta };
    setImmediate(() => {
      this.issuePasswordReset(background, email).catch((err: unknown) =>
        this.deps.logger.error(
          { err, module: 'identity', requestId: scope.meta.requestId },
          'password reset could not be issued',
        ),
      );
    });
    return true;
  }

  private async issuePasswordReset(scope: Scope, email: string): Promise<void> {
    const user = await scope.em.findOne(User, { email });
    if (!user || user.isBlocked || user.status !== UserStatus.ACTIVE) return;
    const token = `rst_${randomSecret(32)}`;
    await inTransaction(scope, async (tx) => {
      tx.em.create(PasswordReset, {
        user: user.id,
        tokenHash: sha256(token),
        expiresAt: new Date(Date.now() + this.deps.config.PASSWORD_RESET_TTL_SECONDS * 1000),
      });
      this.deps.audit.record(tx, {
        action: 'user.requestPasswordReset',
        entityType: 'User',
        entityId: user.id,
        actorId: null,
        actorLabel: 'anonymous',
      });
    });
    await this.deps.mailer.send({
      to: user.email,
      subject: 'Reset your Steward password',
      text: `Use this token to choose a new password (valid for ${Math.round(this.deps.config.PASSWORD_RESET_TTL_SECONDS / 60)} minutes):\n\n${token}\n\nIf you did not ask for it, ignore this message.`,
    });
  }

  /** A single-use, expiring token sets a new password and ends every session. */
  async resetPassword(scope: Scope, token: string, password: string, revokeApiTokens = false): Promise<boolean> {
    await this.deps.limits.take('resetPassword', scope.meta.ip);
    // The account is the token's (known before the hash is paid for); an unknown token counts only per address.
    const [owner] = await scope.em.execute<{ email: string; username: string }[]>(
      `SELECT u.email, u.username FROM password_resets r JOIN users u ON u.id = r.user_id WHERE r.token_hash = ?`,
      [sha256(token)],
    );
    if (owner) await this.deps.limits.take('resetPassword', null, owner.email);
    const hash = await this.deps.hasher.hash(password);
    const done = await inTransaction(scope, async (tx) => {
      const [row] = await tx.em.execute<{ user_id: string }[]>(
        `UPDATE password_resets SET used_at = now() WHERE token_hash = ? AND used_at IS NULL AND expires_at > now() RETURNING user_id`,
        [sha256(token)],
      );
      if (!row) throw BadInputError.field('token', 'is invalid, used or expired');
      const u = await tx.em.findOneOrFail(User, row.user_id);
      u.passwordHash = hash;
      u.failedLoginAttempts = 0;
      u.lockedUntil = null;
      await this.revokeAllSessions(tx, u.id, 'password reset');
      const tokens = revokeApiTokens ? await this.revokeApiTokens(tx, u.id, 'password reset') : 0;
      this.deps.audit.record(tx, {
        action: 'user.resetPassword',
        entityType: 'User',
        entityId: u.id,
        actorId: u.id,
        actorLabel: `user:${u.id}`,
        after: { revokedApiTokens: tokens },
      });
      return true;
    });
    // Whoever could reset the password owns the account: failures from this address no longer hold it back.
    await this.deps.limits.loginSucceeded(owner!.email, scope.meta.ip);
    await this.deps.limits.loginSucceeded(owner!.username, scope.meta.ip);
    return done;
  }

  // ---------- TOTP (RFC 6238) ----------

  private totp(user: User, secret: string) {
    return new OTPAuth.TOTP({
      issuer: 'Steward',
      label: user.email,
      algorithm: 'SHA1',
      digits: 6,
      period: TOTP_PERIOD,
      secret: OTPAuth.Secret.fromBase32(secret),
    });
  }

  private secretOf(user: User): string {
    if (!user.totpSecret) throw new BadInputError('TOTP is not enrolled');
    return this.deps.envelope.decrypt(user.totpSecret as never, totpContext(user.id));
  }

  /** Starts enrolment: a new secret, stored encrypted, returned once as an otpauth:// URI. */
  async enrollTotp(scope: Scope, viewer: Viewer): Promise<{ secret: string; uri: string }> {
    return inTransaction(scope, async (tx) => {
      const user = await tx.em.findOneOrFail(User, viewer.userId);
      if (user.totpEnabled) throw new ConflictError('TOTP is already enabled; disable it first');
      const secret = new OTPAuth.Secret({ size: 20 }).base32;
      user.totpSecret = this.deps.envelope.encrypt(secret, totpContext(user.id)) as never;
      user.totpLastStep = null;
      this.deps.audit.record(tx, { action: 'user.enrollTotp', entityType: 'User', entityId: user.id });
      return { secret, uri: this.totp(user, secret).toString() };
    });
  }

  async confirmTotp(scope: Scope, viewer: Viewer, code: string): Promise<boolean> {
    return this.withTotp(scope, viewer, code, 'user.confirmTotp', (u) => {
      if (u.totpEnabled) throw new ConflictError('TOTP is already enabled');
      u.totpEnabled = true;
    });
  }

  async disableTotp(scope: Scope, viewer: Viewer, code: string): Promise<boolean> {
    return this.withTotp(scope, viewer, code, 'user.disableTotp', (u) => {
      if (!u.totpEnabled) throw new BadInputError('TOTP is not enabled');
      u.totpEnabled = false;
      u.totpSecret = null;
      u.totpLastStep = null;
    });
  }

  private async withTotp(
    scope: Scope,
    viewer: Viewer,
    code: string,
    action: string,
    change: (u: User) => void,
  ): Promise<boolean> {
    return inTransaction(scope, async (tx) => {
      const user = await tx.em.findOneOrFail(User, viewer.userId);
      if (!(await this.consumeTotp(tx.em, user, code))) throw BadInputError.field('code', 'is not a valid TOTP code');
      await tx.em.refresh(user);
      change(user);
      this.deps.audit.record(tx, { action, entityType: 'User', entityId: user.id });
      return true;
    });
  }

  /** Valid in the current step ±1, and only once: the step is consumed atomically. */
  private async consumeTotp(em: EntityManager, user: User, code: string): Promise<boolean> {
    if (!/^\d{6}$/.test(code)) return false;
    const secret = this.secretOf(user);
    const delta = this.totp(user, secret).validate({ token: code, window: 1 });
    if (delta === null) return false;
    const step = Math.floor(Date.now() / 1000 / TOTP_PERIOD) + delta;
    const rows = await em.execute(
      `UPDATE users SET totp_last_step = ? WHERE id = ? AND (totp_last_step IS NULL OR totp_last_step < ?) RETURNING id`,
      [step, user.id, step],
    );
    return rows.length === 1;
  }
}
