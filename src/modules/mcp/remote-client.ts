import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';

/** How long Steward waits for a remote server to answer a probe (connect, list, ping). */
export const PROBE_TIMEOUT_MS = 10_000;
/** How long a tool call through Steward may take. */
export const CALL_TIMEOUT_MS = 120_000;
/** Most tools read from one server (pages of tools/list). */
const MAX_TOOLS = 500;

export interface RemoteServer {
  url: string;
  headers: Record<string, string>;
}

/**
 * Steward's client of a registered remote MCP server: the official SDK's Client over
 * Streamable HTTP, one connection per use (connect, work, close), so that nothing is held
 * between heartbeats and any instance can make any call.
 */
async function withClient<T>(
  server: RemoteServer,
  timeoutMs: number,
  work: (client: Client, signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const client = new Client({ name: 'steward', version: '0.1.0' });
  const signal = AbortSignal.timeout(timeoutMs);
  const transport = new StreamableHTTPClientTransport(new URL(server.url), {
    requestInit: { headers: server.headers, signal },
  });
  try {
    await client.connect(transport, { signal, timeout: timeoutMs });
    return await work(client, signal);
  } finally {
    await client.close().catch(() => {});
  }
}

/** Reaches the server: initialize, ping, and every page of its tool list. */
export function probe(server: RemoteServer): Promise<Tool[]> {
  return withClient(server, PROBE_TIMEOUT_MS, async (client, signal) => {
    await client.ping({ signal, timeout: PROBE_TIMEOUT_MS });
    const tools: Tool[] = [];
    let cursor: string | undefined;
    do {
      const page = await client.listTools(cursor ? { cursor } : undefined, { signal, timeout: PROBE_TIMEOUT_MS });
      tools.push(...page.tools);
      cursor = page.nextCursor;
    } while (cursor && tools.length < MAX_TOOLS);
    return tools.slice(0, MAX_TOOLS);
  });
}

/** Calls one tool and returns the server's result as it gave it. */
export function callRemoteTool(
  server: RemoteServer,
  tool: string,
  args: Record<string, unknown>,
): Promise<CallToolResult> {
  return withClient(
    server,
    CALL_TIMEOUT_MS,
    (client, signal) =>
      client.callTool({ name: tool, arguments: args }, undefined, {
        signal,
        timeout: CALL_TIMEOUT_MS,
      }) as Promise<CallToolResult>,
  );
}

/** A short, safe description of why a remote server could not be used. */
export function describeFailure(err: unknown): string {
  if (err instanceof Error) {
    if (err.name === 'TimeoutError' || err.name === 'AbortError') return 'timed out';
    // The SDK's StreamableHTTPError carries the HTTP status as its code; fetch's TypeError the socket error as its cause.
    const status = (err as { code?: unknown }).code;
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const detail = cause?.code ?? cause?.message;
    const text = detail ? `${err.message} (${detail})` : err.message;
    return (typeof status === 'number' && status >= 400 ? `HTTP ${status}: ${text}` : text).slice(0, 500);
  }
  return String(err).slice(0, 500);
}
