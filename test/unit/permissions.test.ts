import type { GraphQLObjectType, GraphQLResolveInfo } from 'graphql';
import { getMetadataStorage, type ResolverData } from 'type-graphql';
import { describe, expect, it } from 'vitest';

import { Role } from '../../src/modules/identity/user.entity.js';
import { buildStewardSchema } from '../../src/schema.js';
import { authChecker as checker } from '../../src/server/auth-checker.js';
import type { Context } from '../../src/server/context.js';
import type { Rule } from '../../src/shared/allow.js';
import type { Viewer } from '../../src/shared/scope.js';

/**
 * Who may run what, as declared: every Query, Mutation and Subscription with its
 * effective @Allow rules (on the method, else on its resolver class) and, through the
 * one auth checker, the callers those rules let in. The snapshot makes any change to
 * who-may-do-what show up in review; an operation without a rule fails outright.
 */
/** The checker is a function (type-graphql also accepts a class, hence the narrowing). */
const authChecker = checker as Extract<typeof checker, (...args: never[]) => unknown>;

const RULES: readonly Rule[] = ['PUBLIC', 'SIGNED_IN', 'OWN_ACCOUNT', 'ADMIN', 'SERVICE'];

const CALLERS: [string, Viewer | null][] = [
  ['anonymous', null],
  ['OBSERVER', { userId: 'o', role: Role.OBSERVER, sessionId: 's' }],
  ['USER', { userId: 'u', role: Role.USER, sessionId: 's' }],
  ['ADMIN', { userId: 'a', role: Role.ADMIN, sessionId: 's' }],
  ['service', { userId: 'a', role: Role.ADMIN, apiTokenId: 't', serviceActor: 'agent:test' }],
];

interface Declaration {
  operation: string;
  kind: 'Query' | 'Mutation' | 'Subscription';
  resolver: string;
  rules: string[];
  declaredOn: 'method' | 'class' | 'nowhere';
}

async function declarations(): Promise<Declaration[]> {
  const schema = await buildStewardSchema(); // also completes type-graphql's metadata
  const storage = getMetadataStorage();
  const ofClass = (target: Function) => {
    // A rule on a resolver class covers its subclasses too.
    for (let t: unknown = target; typeof t === 'function' && t !== Function.prototype; t = Object.getPrototypeOf(t)) {
      const found = storage.authorizedResolver.find((a) => a.target === t);
      if (found) return found.roles as string[];
    }
    return undefined;
  };
  const ofMethod = (target: Function, name: string) =>
    storage.authorizedFields.find((a) => a.target === target && a.fieldName === name)?.roles as string[] | undefined;

  const kinds = [
    ['Query', storage.queries, schema.getQueryType()],
    ['Mutation', storage.mutations, schema.getMutationType()],
    ['Subscription', storage.subscriptions, schema.getSubscriptionType()],
  ] as const;
  const out: Declaration[] = [];
  for (const [kind, handlers, type] of kinds) {
    for (const h of handlers) {
      if (!type?.getFields()[h.schemaName]) continue; // only what the built schema serves
      const own = ofMethod(h.target, h.methodName);
      const inherited = ofClass(h.target);
      out.push({
        operation: `${kind}.${h.schemaName}`,
        kind,
        resolver: h.target.name,
        rules: own ?? inherited ?? [],
        declaredOn: own ? 'method' : inherited ? 'class' : 'nowhere',
      });
    }
  }
  return out.sort((a, b) => a.operation.localeCompare(b.operation));
}

/** The callers the auth checker lets run an operation with these rules. */
async function allowedCallers(d: Declaration): Promise<string[]> {
  const allowed: string[] = [];
  for (const [name, viewer] of CALLERS) {
    const data = {
      context: { viewer } as Context,
      info: { parentType: { name: d.kind } } as GraphQLResolveInfo,
    } as ResolverData<Context>;
    try {
      if (await authChecker(data, d.rules as Rule[])) allowed.push(name);
    } catch {
      /* refused: UNAUTHENTICATED or FORBIDDEN */
    }
  }
  return allowed;
}

describe('operation permissions', () => {
  it('gives every query, mutation and subscription an explicit rule', async () => {
    const missing = (await declarations()).filter((d) => d.rules.length === 0).map((d) => d.operation);
    expect(missing).toEqual([]);
  });

  it('uses only the rules the auth checker knows', async () => {
    for (const d of await declarations()) for (const r of d.rules) expect(RULES, d.operation).toContain(r);
  });

  it('lists every operation of the schema exactly once', async () => {
    const schema = await buildStewardSchema();
    const served = [schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()].flatMap((t) =>
      t ? Object.keys(t.getFields()).map((f) => `${t.name}.${f}`) : [],
    );
    expect((await declarations()).map((d) => d.operation)).toEqual(served.sort((a, b) => a.localeCompare(b)));
  });

  it('lets no OBSERVER run a mutation other than on its own account', async () => {
    for (const d of await declarations()) {
      if (d.kind === 'Mutation' && (await allowedCallers(d)).includes('OBSERVER')) {
        expect(d.rules, d.operation).toEqual(expect.arrayContaining([expect.stringMatching(/^(OWN_ACCOUNT|PUBLIC)$/)]));
      }
    }
  });

  it('runs the auth checker around operations only, not around nested field resolvers', async () => {
    // The checker lets every nested field through; type-graphql's middleware around each
    // field resolver call only cost CPU (see Allow in src/shared/allow.ts).
    await buildStewardSchema();
    const guarded = getMetadataStorage()
      .fieldResolvers.filter((r) => r.roles !== undefined)
      .map((r) => `${r.target.name}.${r.methodName}`);
    expect(guarded).toEqual([]);
  });

  it('matches the reviewed snapshot of who may run what', async () => {
    const lines = await Promise.all(
      (await declarations()).map(async (d) => {
        const rules = `${d.rules.join(' | ')}${d.declaredOn === 'class' ? ' (class)' : ''}`;
        return `${d.operation.padEnd(40)} ${rules.padEnd(28)} -> ${(await allowedCallers(d)).join(', ')}`;
      }),
    );
    expect(`\n${lines.join('\n')}\n`).toMatchSnapshot();
  });
});

describe('field-level permissions', () => {
  it('matches the reviewed snapshot of who sees which User field', async () => {
    const { USER_FIELD_RULES, userFieldAllowed } = await import('../../src/modules/identity/user.fields.js');
    const schema = await buildStewardSchema();
    const viewers: [string, Viewer, { self: boolean; sharesProject: boolean }][] = [
      ['self', { userId: 'x', role: Role.USER }, { self: true, sharesProject: false }],
      ['colleague', { userId: 'u', role: Role.USER }, { self: false, sharesProject: true }],
      ['stranger', { userId: 'u', role: Role.USER }, { self: false, sharesProject: false }],
      ['ADMIN', { userId: 'a', role: Role.ADMIN }, { self: false, sharesProject: false }],
      ['service', { userId: 'a', role: Role.ADMIN, serviceActor: 'agent:test' }, { self: false, sharesProject: true }],
    ];
    const rules = USER_FIELD_RULES as Record<string, 'SHARED_PROJECT' | 'SELF'>;
    const lines = Object.keys((schema.getType('User') as GraphQLObjectType).getFields())
      .sort()
      .map((field) => {
        const rule = rules[field];
        const who = rule
          ? viewers.filter(([, v, rel]) => userFieldAllowed(v, rule, rel)).map(([n]) => n)
          : ['everyone signed in'];
        return `User.${field.padEnd(20)} ${(rule ?? 'EVERYONE').padEnd(16)} -> ${who.join(', ')}`;
      });
    expect(`\n${lines.join('\n')}\n`).toMatchSnapshot();
  });
});

describe('token scopes', () => {
  it('matches the reviewed snapshot of which operations each API token scope runs', async () => {
    const { SCOPE_NAMES, scopesAllow } = await import('../../src/shared/token-scopes.js');
    const ops = await declarations();
    const lines = SCOPE_NAMES.map((scope) => {
      const allowed = ops
        .filter((d) => scopesAllow([scope], d.kind, d.operation.split('.')[1]!))
        .map((d) => d.operation);
      const wholeKinds = ['Query', 'Mutation', 'Subscription'].filter((k) =>
        ops.filter((d) => d.kind === k).every((d) => allowed.includes(d.operation)),
      );
      const rest = allowed.filter((o) => !wholeKinds.includes(o.split('.')[0]!));
      return `${scope.padEnd(12)} -> ${[...wholeKinds.map((k) => `every ${k}`), ...rest].join(', ')}`;
    });
    // Every operation a scope names exists: a renamed operation cannot silently leave its scope.
    const { TOKEN_SCOPES } = await import('../../src/shared/token-scopes.js');
    const served = new Set(ops.map((d) => d.operation.split('.')[1]));
    for (const [name, s] of Object.entries(TOKEN_SCOPES))
      for (const o of s.operations) expect(served.has(o), `${name}: ${o}`).toBe(true);
    expect(`\n${lines.join('\n')}\n`).toMatchSnapshot();
  });
});
