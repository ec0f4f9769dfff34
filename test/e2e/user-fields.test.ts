import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ok } from '../support/client.js';
import { team } from '../support/projects.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createUser, firstAdmin, type TestUser } from '../support/users.js';

/** Governance and security fields of a user are theirs and admins'; colleagues see who they are. */
const FIELDS = 'id username name email deviationScore blockedReason blockedAt lastLoginAt lastActivityAt totpEnabled';
const PRIVATE = {
  deviationScore: null,
  blockedReason: null,
  blockedAt: null,
  lastLoginAt: null,
  lastActivityAt: null,
  totpEnabled: null,
};

let s: TestServer;
let admin: TestUser;
beforeAll(async () => {
  s = await startTestServer();
  admin = await firstAdmin(s);
});
afterAll(() => s?.close());

const view = async (viewer: TestUser, id: string) =>
  (await ok(s.url, `query($id: ID!) { user(id: $id) { ${FIELDS} } }`, { id }, viewer.token)).user;

describe('field-level rules on User', () => {
  it('colleagues see name, username and (sharing a project) e-mail; strangers not the e-mail; nobody else the governance and security fields', async () => {
    const { owner, project, members } = await team(s, admin, ['CONTRIBUTOR']);
    const [colleague] = members;
    const stranger = await createUser(s, admin);
    // Something to hide: a login time, a deviation score and a block reason.
    await s.sql(
      `UPDATE users SET deviation_score = 42.5, blocked_reason = 'suspicious prompts', last_activity_at = now(), last_login_at = now() WHERE id = $1`,
      [owner.id],
    );

    const byColleague = await view(colleague!, owner.id);
    expect(byColleague).toEqual({
      id: owner.id,
      username: owner.username,
      name: expect.any(String),
      email: owner.email,
      ...PRIVATE,
    });
    const byStranger = await view(stranger, owner.id);
    expect(byStranger).toEqual({
      id: owner.id,
      username: owner.username,
      name: expect.any(String),
      email: null,
      ...PRIVATE,
    });

    // The same through a nested path.
    const members_ = await ok(
      s.url,
      `query($id: ID!) { project(id: $id) { members { user { id email deviationScore lastLoginAt } } } }`,
      { id: project.id },
      colleague!.token,
    );
    const ownerRow = members_.project.members.find((m: { user: { id: string } }) => m.user.id === owner.id).user;
    expect(ownerRow).toEqual({ id: owner.id, email: owner.email, deviationScore: null, lastLoginAt: null });

    // Themself and admins see everything.
    for (const who of [owner, admin]) {
      const all = await view(who, owner.id);
      expect(all).toMatchObject({
        email: owner.email,
        deviationScore: 42.5,
        blockedReason: 'suspicious prompts',
        totpEnabled: false,
      });
      expect(all.lastLoginAt).toBeTruthy();
      expect(all.lastActivityAt).toBeTruthy();
    }
    const me = (await ok(s.url, `{ me { ${FIELDS} } }`, {}, owner.token)).me;
    expect(me).toMatchObject({ email: owner.email, deviationScore: 42.5, totpEnabled: false });
  });
});
