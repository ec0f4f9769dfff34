import type { ChatMessage, ChatPassThrough, MeteredResult, ToolCall } from '../billing/index.js';
import type { AgentToolOutcome, AgentToolSet, MessageToolCall } from './agent-tools.js';

const noNul = (text: string) => text.replace(/\u0000/g, '');

/** The most tool calls of one answer that are run; the rest are answered "not run" (a model cannot fan out without bound). */
export const MAX_TOOL_CALLS_PER_ROUND = 16;

/**
 * One turn of an agent in a conversation whose model may call tools: the context of each
 * round, the tool calls made and their results, and the turn's usage over its rounds.
 *
 * Two views of the same context are kept. The provider is sent OpenAI's format (assistant
 * messages with `tool_calls`, `tool` messages with the results, the tool definitions) as
 * the pass-through; Steward's own view (plain messages: the definitions and every call and
 * result as text) is what the pipeline reserves quota for, so the reservation covers all
 * the provider will count.
 */
export class ToolTurn {
  /** Every tool call of the turn, in order, with what came of it. */
  readonly log: MessageToolCall[] = [];
  readonly promptLogIds: string[] = [];
  promptTokens = 0;
  completionTokens = 0;
  latencyMs = 0;
  model: string | null = null;
  providerId: string | null = null;
  private readonly texts: string[] = [];
  private readonly view: ChatMessage[];
  private readonly wire: unknown[];

  constructor(
    messages: ChatMessage[],
    private readonly toolset: AgentToolSet | null,
  ) {
    this.view = toolset ? [{ role: 'system', content: JSON.stringify(toolset.tools) }, ...messages] : messages;
    this.wire = messages.map((m) => ({ role: m.role, content: m.content }));
  }

  /** Steward's view of the context (see the class comment). */
  context(): ChatMessage[] {
    return [...this.view];
  }

  /** What the provider is sent beside the plain chat: the OpenAI-format context and the tools; none without tools. */
  passThrough(): ChatPassThrough | undefined {
    if (!this.toolset) return undefined;
    return { messages: [...this.wire], tools: this.toolset.tools };
  }

  /** The answer asks for tools this turn can run. */
  asks(r: MeteredResult): boolean {
    return !!this.toolset && !!r.toolCalls?.length;
  }

  /** Counts a round's usage and text into the turn. */
  answered(r: MeteredResult): void {
    this.promptTokens += r.promptTokens;
    this.completionTokens += r.completionTokens;
    this.latencyMs += r.latencyMs;
    this.model = r.model;
    this.providerId = r.providerId;
    if (r.promptLogId) this.promptLogIds.push(r.promptLogId);
    if (r.content) this.texts.push(r.content);
  }

  /** The reply as stored: every round's text, then Steward's note (why the turn ended), if any. */
  text(note: string): string {
    return [...this.texts, note].filter(Boolean).join('\n\n');
  }

  get hasText(): boolean {
    return this.texts.length > 0;
  }

  /** Records the calls of an answer that are not run (why: `reason`). */
  notRun(r: MeteredResult, round: number, reason: string): void {
    for (const call of r.toolCalls ?? []) this.log.push(this.entry(call, round, null, `Not run: ${reason}`));
  }

  /**
   * Runs the calls one answer asked for, one after the other, each result fed back for the
   * next round. A call that waits for a human's approval ends the turn: the calls after it
   * are not run (the model is told so should the turn go on). Returns that call's entry.
   */
  async runTools(r: MeteredResult, round: number): Promise<MessageToolCall | null> {
    const calls = r.toolCalls ?? [];
    this.wire.push({ role: 'assistant', content: r.reply || null, tool_calls: calls });
    this.view.push({ role: 'assistant', content: `${r.reply}\n${JSON.stringify(calls)}` });
    let waiting: MessageToolCall | null = null;
    for (const [i, call] of calls.entries()) {
      const entry: MessageToolCall = waiting
        ? this.entry(call, round, null, 'Not run: another call of this round waits for approval')
        : i >= MAX_TOOL_CALLS_PER_ROUND
          ? this.entry(call, round, null, `Not run: at most ${MAX_TOOL_CALLS_PER_ROUND} tool calls are run per answer`)
          : this.entry(call, round, await this.toolset!.run(call), '');
      this.log.push(entry);
      if (!waiting && entry.status === 'AWAITING_APPROVAL') waiting = entry;
      this.wire.push({ role: 'tool', tool_call_id: call.id, content: entry.result });
      this.view.push({ role: 'user', content: `[tool result ${call.id}] ${entry.result}` });
    }
    return waiting;
  }

  private entry(call: ToolCall, round: number, out: AgentToolOutcome | null, notRun: string): MessageToolCall {
    return {
      id: noNul(call.id),
      round,
      name: noNul(call.function.name),
      server: out?.server ?? null,
      tool: out?.tool ?? null,
      arguments: out?.arguments ?? null,
      status: out?.status ?? 'NOT_RUN',
      result: out ? noNul(out.result) : notRun,
      mcpToolCallId: out?.mcpToolCallId ?? null,
      approvalId: out?.approvalId ?? null,
    };
  }
}
