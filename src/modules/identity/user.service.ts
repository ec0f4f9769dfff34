import { LockMode } from '@mikro-orm/core';
import sql, { join, type Sql } from 'sql-template-tag';

import type { SqlClient } from '../../db/sql.js';
import type { EventBus } from '../../events/bus.js';
import { conflictOnDuplicate } from '../../shared/conflict.js';
import { paginate, type Connection, type PageArgs } from '../../shared/connection.js';
import { ConflictError, ForbiddenError, NotFoundError, requireUuid } from '../../shared/errors.js';
import { and, contains, readModel } from '../../shared/read-model.js';
import { inTransaction, type Scope, type Viewer } from '../../shared/scope.js';
import type { AuditService } from '../audit/index.js';
import type { AuthService } from './auth.service.js';
import { USER_UPDATED, type UserUpdated } from './identity.events.js';
import { Role, User, UserStatus, type Tier } from './user.entity.js';

export interface UserFilter {
  role?: Role | null;
  status?: UserStatus | null;
  tier?: Tier | null;
  isBlocked?: boolean | null;
  /** Matches e-mail, username or name, case-insensitively. */
  search?: string | null;
}

export interface UserChanges {
  role?: Role | null;
  status?: UserStatus | null;
  tier?: Tier | null;
}

const isActiveAdmin = (u: User) => u.role === Role.ADMIN && u.status === UserStatus.ACTIVE && !u.isBlocked;
const snapshot = (u: User) => ({
  role: u.role,
  status: u.status,
  tier: u.tier,
  isBlocked: u.isBlocked,
  blockedReason: u.blockedReason ?? null,
});

/** Users as an administrator manages them, and each user's own profile. */
export class UserService {
  constructor(
    private readonly db: SqlClient,
    private readonly bus: EventBus,
    private readonly audit: AuditService,
    private readonly auth: AuthService,
  ) {}

  list(fields: Iterable<string>, filter: UserFilter, page: PageArgs): Promise<Connection<Record<string, unknown>>> {
    const where: (Sql | null)[] = [
      filter.role ? sql`t.role = ${filter.role}` : null,
      filter.status ? sql`t.status = ${filter.status}` : null,
      filter.tier ? sql`t.tier = ${filter.tier}` : null,
      filter.isBlocked != null ? sql`t.is_blocked = ${filter.isBlocked}` : null,
      filter.search?.trim()
        ? sql`(${join(
            ['t.email', 't.username', 't.name'].map((c) => contains(c, filter.search!.trim())),
            ' OR ',
          )})`
        : null,
    ];
    return paginate(
      this.db,
      { model: readModel(User), fields, where: and(where), sort: { property: 'id', direction: 'ASC', type: 'uuid' } },
      page,
    );
  }

  /** The administrators who can act (active, not blocked): those told of system decisions. */
  async activeAdminIds(): Promise<string[]> {
    const rows = await this.db.query<{ id: string }>(
      sql`SELECT id FROM users WHERE role = 'ADMIN' AND status = 'ACTIVE' AND NOT is_blocked`,
    );
    return rows.map((r) => r.id);
  }

  async updateMe(
    scope: Scope,
    viewer: Viewer,
    changes: { name?: string | null; username?: string | null; preferences?: Record<string, unknown> | null },
  ): Promise<User> {
    return conflictOnDuplicate(
      () =>
        inTransaction(scope, async (tx) => {
          const u = await tx.em.findOneOrFail(User, viewer.userId);
          const before = { name: u.name, username: u.username };
          if (changes.name !== undefined) u.name = changes.name;
          if (changes.username) u.username = changes.username.trim().toLowerCase();
          if (changes.preferences) u.preferences = changes.preferences;
          await tx.em.flush();
          this.audit.record(tx, {
            action: 'user.updateMe',
            entityType: 'User',
            entityId: u.id,
            before,
            after: { name: u.name, username: u.username },
          });
          await this.bus.publish(tx.em, USER_UPDATED, { id: u.id } satisfies UserUpdated);
          return u;
        }),
      'That username is already taken',
    );
  }

  /**
   * Admin: role, status, tier. Suspending or deactivating ends the user's sessions and
   * sockets. A role change closes the user's sockets too: a socket authenticates once,
   * and must not keep the old role (the sessions stay; a client reconnects with the new one).
   */
  async update(scope: Scope, id: string, changes: UserChanges): Promise<User> {
    return this.change(scope, id, 'user.update', async (tx, u) => {
      const wasActiveAdmin = isActiveAdmin(u);
      const roleChanged = !!changes.role && changes.role !== u.role;
      if (changes.role) u.role = changes.role;
      if (changes.tier) u.tier = changes.tier;
      const statusChanged = !!changes.status && changes.status !== u.status;
      if (changes.status) u.status = changes.status;
      // Judged on the outcome, whatever combination of fields the input has.
      if (wasActiveAdmin && !isActiveAdmin(u)) await this.keepOneAdmin(tx, u);
      // Service tokens act with their creator's authority: an admin no more, their tokens no more.
      if (roleChanged && changes.role !== Role.ADMIN)
        await this.auth.revokeApiTokens(tx, u.id, 'creator no longer admin', true);
      if (statusChanged && u.status !== UserStatus.ACTIVE) await this.endEverything(tx, u.id, `status ${u.status}`);
      else if (roleChanged)
        await this.auth.publishRevoked(tx, { userId: u.id, everything: true, reason: 'role changed' });
    });
  }

  async block(scope: Scope, id: string, reason: string): Promise<User> {
    return this.change(scope, id, 'user.block', async (tx, u) => {
      if (scope.viewer?.userId === u.id) throw new ForbiddenError('You cannot block yourself');
      // Two admins blocking each other at once must not leave nobody in charge.
      if (isActiveAdmin(u)) await this.keepOneAdmin(tx, u);
      u.isBlocked = true;
      u.blockedReason = reason;
      u.blockedAt = new Date();
      await this.endEverything(tx, u.id, 'blocked');
    });
  }

  /**
   * A block decided by the system (prompt governance), inside the caller's transaction:
   * audited with the system actor's name, sessions and sockets ended like an admin's block.
   */
  async blockAutomatically(tx: Scope, userId: string, reason: string, actor: string): Promise<void> {
    const u = await tx.em.findOneOrFail(User, userId, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (u.isBlocked) return;
    const before = snapshot(u);
    u.isBlocked = true;
    u.blockedReason = reason;
    u.blockedAt = new Date();
    await this.endEverything(tx, u.id, 'blocked');
    this.audit.record(tx, {
      action: 'user.autoBlock',
      entityType: 'User',
      entityId: u.id,
      actorId: null,
      actorLabel: actor,
      before,
      after: snapshot(u),
    });
    await this.bus.publish(tx.em, USER_UPDATED, { id: u.id } satisfies UserUpdated);
  }

  async unblock(scope: Scope, id: string): Promise<User> {
    return this.change(scope, id, 'user.unblock', async (_tx, u) => {
      u.isBlocked = false;
      u.blockedReason = null;
      u.blockedAt = null;
    });
  }

  private async change(
    scope: Scope,
    id: string,
    action: string,
    apply: (tx: Scope, u: User) => Promise<void>,
  ): Promise<User> {
    const userId = requireUuid(id);
    return inTransaction(scope, async (tx) => {
      const u = await tx.em.findOne(User, userId, { lockMode: LockMode.PESSIMISTIC_WRITE });
      if (!u) throw new NotFoundError('User', userId);
      const before = snapshot(u);
      await apply(tx, u);
      this.audit.record(tx, { action, entityType: 'User', entityId: u.id, before, after: snapshot(u) });
      await this.bus.publish(tx.em, USER_UPDATED, { id: u.id } satisfies UserUpdated);
      return u;
    });
  }

  /** Sessions revoked, every socket closed (API tokens too: they are refused while blocked or suspended). */
  private async endEverything(tx: Scope, userId: string, reason: string) {
    await this.auth.revokeAllSessions(tx, userId, reason);
    await this.auth.publishRevoked(tx, { userId, everything: true, reason });
  }

  /**
   * Refuses a change that would leave no active administrator. Admin changes are
   * serialised by an advisory lock, so two admins demoting each other at the same
   * moment cannot both see the other one still in office.
   */
  private async keepOneAdmin(tx: Scope, u: User) {
    await tx.em.execute(`SELECT pg_advisory_xact_lock(hashtext('steward:admins'))`);
    const [{ n }] = await tx.em.execute<{ n: number }[]>(
      `SELECT count(*)::int AS n FROM users WHERE role = 'ADMIN' AND status = 'ACTIVE' AND NOT is_blocked AND id <> ?`,
      [u.id],
    );
    if (n === 0) throw new ConflictError('Steward needs at least one active administrator');
  }
}
