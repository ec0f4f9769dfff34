import { describe, expect, it } from 'vitest';

import type { AgentToolOutcome, AgentToolSet } from '../../src/modules/ai/agent-tools.js';
import { MAX_TOOL_CALLS_PER_ROUND, ToolTurn } from '../../src/modules/ai/tool-turn.js';
import type { MeteredResult, ToolCall } from '../../src/modules/billing/index.js';

const call = (i: number, name = 'srv__count'): ToolCall => ({
  id: `call_${i}`,
  type: 'function',
  function: { name, arguments: JSON.stringify({ label: `n${i}` }) },
});
const answer = (toolCalls: ToolCall[], reply = ''): MeteredResult => ({
  budgets: [],
  content: reply,
  reply,
  toolCalls,
  promptTokens: 10,
  completionTokens: 5,
  model: 'm',
  providerId: 'p',
  providerName: 'p',
  latencyMs: 3,
  promptLogId: 'log',
  costUsd: '0',
});
/** A tool set whose tools say which call they ran; `gated` names wait for approval. */
function toolset(gated: string[] = []): AgentToolSet & { ran: string[] } {
  const ran: string[] = [];
  return {
    ran,
    tools: [{ type: 'function', function: { name: 'srv__count', parameters: { type: 'object' } } }],
    async run(c): Promise<AgentToolOutcome> {
      ran.push(c.id);
      const waits = gated.includes(c.function.name);
      return {
        status: waits ? 'AWAITING_APPROVAL' : 'SUCCEEDED',
        result: waits ? 'waiting' : `ran ${c.id}\u0000`,
        server: 'srv',
        tool: 'count',
        arguments: JSON.parse(c.function.arguments),
        mcpToolCallId: null,
        approvalId: waits ? 'a1' : null,
      };
    },
  };
}

describe('a tool turn', () => {
  it('sends the OpenAI format and reserves for the definitions, the calls and the results', async () => {
    const tools = toolset();
    const turn = new ToolTurn([{ role: 'user', content: 'hi' }], tools);
    expect(turn.passThrough()).toEqual({ messages: [{ role: 'user', content: 'hi' }], tools: tools.tools });
    expect(turn.context()[0]).toEqual({ role: 'system', content: JSON.stringify(tools.tools) });
    await turn.runTools(answer([call(1)], 'Let me count.'), 1);
    expect(turn.passThrough()!.messages!.slice(1)).toEqual([
      { role: 'assistant', content: 'Let me count.', tool_calls: [call(1)] },
      { role: 'tool', tool_call_id: 'call_1', content: 'ran call_1' },
    ]);
    expect(turn.context().slice(2)).toEqual([
      { role: 'assistant', content: `Let me count.\n${JSON.stringify([call(1)])}` },
      { role: 'user', content: '[tool result call_1] ran call_1' },
    ]);
    expect(turn.log[0]).toMatchObject({ id: 'call_1', round: 1, status: 'SUCCEEDED', arguments: { label: 'n1' } });
  });

  it('runs nothing after a call that waits for approval, and at most MAX_TOOL_CALLS_PER_ROUND per answer', async () => {
    const gated = toolset(['srv__gated']);
    const turn = new ToolTurn([{ role: 'user', content: 'hi' }], gated);
    const waiting = await turn.runTools(answer([call(1), call(2, 'srv__gated'), call(3)]), 1);
    expect(waiting).toMatchObject({ id: 'call_2', status: 'AWAITING_APPROVAL', approvalId: 'a1' });
    expect(gated.ran).toEqual(['call_1', 'call_2']);
    expect(turn.log.map((e) => e.status)).toEqual(['SUCCEEDED', 'AWAITING_APPROVAL', 'NOT_RUN']);

    const many = toolset();
    const wide = new ToolTurn([{ role: 'user', content: 'hi' }], many);
    await wide.runTools(answer(Array.from({ length: MAX_TOOL_CALLS_PER_ROUND + 2 }, (_, i) => call(i))), 1);
    expect(many.ran).toHaveLength(MAX_TOOL_CALLS_PER_ROUND);
    expect(wide.log.filter((e) => e.status === 'NOT_RUN')).toHaveLength(2);
    // Every call got its `tool` message, run or not: OpenAI refuses a tool call without one.
    expect(wide.passThrough()!.messages!.filter((m: any) => m.role === 'tool')).toHaveLength(
      MAX_TOOL_CALLS_PER_ROUND + 2,
    );
  });

  it("adds up the rounds' usage and text; without tools it sends no pass-through", () => {
    const turn = new ToolTurn([{ role: 'user', content: 'hi' }], null);
    expect(turn.passThrough()).toBeUndefined();
    expect(turn.asks(answer([call(1)]))).toBe(false);
    turn.answered(answer([], 'one'));
    turn.answered(answer([], ''));
    turn.answered(answer([], 'two'));
    expect([turn.promptTokens, turn.completionTokens, turn.latencyMs]).toEqual([30, 15, 9]);
    expect(turn.text('[note]')).toBe('one\n\ntwo\n\n[note]');
    expect(turn.promptLogIds).toEqual(['log', 'log', 'log']);
  });
});
