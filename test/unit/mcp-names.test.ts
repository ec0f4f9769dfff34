import { describe, expect, it } from 'vitest';

import { withoutNul } from '../../src/modules/mcp/mcp-registry.service.js';
import { exposedName } from '../../src/modules/mcp/remote-tools.js';

describe('MCP helpers', () => {
  it('drops U+0000 (which PostgreSQL cannot store) from strings and keys, and nothing else', () => {
    expect(withoutNul({ a: 'x\u0000y', ['k\u0000']: ['\u0000', 'lit \\u0000 text', 1, null, true] })).toEqual({
      a: 'xy',
      k: ['', 'lit \\u0000 text', 1, null, true],
    });
    expect(withoutNul(null)).toBeNull();
  });

  it('names a remote tool <server>__<tool> in the characters MCP tool names allow', () => {
    expect(exposedName('github', 'create_issue')).toBe('github__create_issue');
    expect(exposedName('My Server!', 'do it')).toBe('My_Server___do_it');
    expect(exposedName('s'.repeat(100), 't'.repeat(100))).toHaveLength(128);
  });
});
