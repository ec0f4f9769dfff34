import { describe, expect, it } from 'vitest';

import { GENESIS_HASH, linkHash, type EventContent } from '../../src/modules/audit/audit-chain.js';
import { canonicalize } from '../../src/modules/audit/canonical.js';
import { ContainerStatus } from '../../src/modules/infrastructure/container.entity.js';
import { canMove, CONTAINER_TRANSITIONS } from '../../src/modules/infrastructure/container.rules.js';

describe('canonical JSON (RFC 8785)', () => {
  it('sorts members by UTF-16 code units at every depth and writes no whitespace', () => {
    expect(canonicalize({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } })).toBe(
      '{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}',
    );
    // RFC 8785 §3.2.3: "\\u20ac" (€) sorts after "\\r" and before the emoji's surrogate pair.
    expect(
      canonicalize({
        '\u20ac': 'Euro Sign',
        '\r': 'Carriage Return',
        '\ud83d\ude00': 'Emoji',
        '1': 'One',
        '\u0080': 'Control',
      }),
    ).toBe('{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u20ac":"Euro Sign","\ud83d\ude00":"Emoji"}');
  });

  it('writes numbers and strings as ECMAScript does, and leaves out undefined members', () => {
    expect(canonicalize([1e21, 1e-7, -0, 0.1, 333333333.3333333, 'é\n"'])).toBe(
      '[1e+21,1e-7,0,0.1,333333333.3333333,"é\\n\\""]',
    );
    expect(canonicalize({ a: undefined, b: [undefined], c: new Date('2026-01-02T03:04:05.006Z') })).toBe(
      '{"b":[null],"c":"2026-01-02T03:04:05.006Z"}',
    );
  });

  it('refuses what JSON cannot say', () => {
    expect(() => canonicalize(Number.NaN)).toThrow(TypeError);
    expect(() => canonicalize({ a: Infinity })).toThrow(TypeError);
    expect(() => canonicalize(1n)).toThrow(TypeError);
  });

  it('gives the same hash for the same event whatever the order of its members, and another for any change', () => {
    const e: EventContent = {
      id: '0192f0a0-0000-7000-8000-000000000001',
      createdAt: '2026-11-23T06:00:00.123456Z',
      actorId: null,
      actorLabel: 'system',
      action: 'x.y',
      entityType: 'X',
      entityId: null,
      before: { b: 1, a: 2 },
      after: null,
      outcome: 'SUCCESS',
      requestId: null,
      ip: null,
      userAgent: null,
    };
    const h = linkHash(e, 1, GENESIS_HASH);
    expect(h).toMatch(/^[0-9a-f]{64}$/);
    expect(linkHash({ ...e, before: { a: 2, b: 1 } }, 1, GENESIS_HASH)).toBe(h);
    expect(linkHash({ ...e, before: { a: 2, b: 2 } }, 1, GENESIS_HASH)).not.toBe(h);
    expect(linkHash(e, 2, GENESIS_HASH)).not.toBe(h);
    expect(linkHash(e, 1, h)).not.toBe(h);
  });
});

describe('the container lifecycle', () => {
  it('allows exactly the documented moves', () => {
    const all = Object.values(ContainerStatus);
    const allowed = all.flatMap((from) =>
      all.filter((to) => from !== to && canMove(from, to)).map((to) => `${from}->${to}`),
    );
    expect(allowed).toEqual(all.flatMap((from) => CONTAINER_TRANSITIONS[from].map((to) => `${from}->${to}`)));
    expect(allowed.sort()).toMatchInlineSnapshot(`
      [
        "CREATING->ERROR",
        "CREATING->RUNNING",
        "CREATING->STOPPED",
        "ERROR->CREATING",
        "ERROR->RUNNING",
        "ERROR->STOPPED",
        "RUNNING->ERROR",
        "RUNNING->SLEEPING",
        "RUNNING->STOPPED",
        "SLEEPING->ERROR",
        "SLEEPING->RUNNING",
        "SLEEPING->STOPPED",
        "STOPPED->ERROR",
        "STOPPED->RUNNING",
      ]
    `);
  });
});
