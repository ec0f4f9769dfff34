import type { IncomingMessage, ServerResponse } from 'node:http';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  CallToolRequestSchema,
  ErrorCode,
  ListToolsRequestSchema,
  McpError,
  type CallToolResult,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import type { GraphQLSchema } from 'graphql';
import { z } from 'zod';

import type { Runtime } from '../../server/context.js';
import { sendJson, type Route } from '../../server/http.js';
import { AppError, isUuid } from '../../shared/errors.js';
import type { RequestMeta, Viewer } from '../../shared/scope.js';
import { assertMcpAccess } from './access.js';
import { GraphQLBridge, ToolError } from './graphql-bridge.js';
import { stewardTools, type StewardTool, type ToolCall } from './steward-tools.js';

/** The tools of registered servers that the caller may reach through Steward (see McpToolCallService). */
export interface RemoteTools {
  list(viewer: Viewer, projectId: string | null): Promise<Tool[]>;
  /** null: no such remote tool (the name is not `<server>__<tool>` of a server the caller may reach). */
  call(
    viewer: Viewer,
    meta: RequestMeta,
    projectId: string | null,
    name: string,
    args: Record<string, unknown>,
  ): Promise<CallToolResult | null>;
}

const VERSION = '0.1.0';

const jsonRpcError = (code: number, message: string) => ({ jsonrpc: '2.0', error: { code, message }, id: null });

/** A failed tool call as MCP wants it: a result with isError, so that the model can read why. */
export function toolFailure(code: string, message: string, details: Record<string, unknown> = {}): CallToolResult {
  return {
    isError: true,
    content: [{ type: 'text', text: `${code}: ${message}` }],
    _meta: { 'steward/error': { code, ...details } },
  };
}

export function toolSuccess(structured: Record<string, unknown>): CallToolResult {
  return { content: [{ type: 'text', text: JSON.stringify(structured) }], structuredContent: structured };
}

function readJson(
  req: IncomingMessage,
  limit: number,
): Promise<{ ok: true; body: unknown } | { ok: false; status: number; message: string }> {
  return new Promise((resolve, reject) => {
    if (Number(req.headers['content-length'] ?? 0) > limit)
      return resolve({ ok: false, status: 413, message: `Request body exceeds ${limit} bytes` });
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        resolve({ ok: false, status: 413, message: `Request body exceeds ${limit} bytes` });
      } else chunks.push(c);
    });
    req.on('end', () => {
      try {
        resolve({ ok: true, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
      } catch {
        resolve({ ok: false, status: 400, message: 'Request body is not valid JSON' });
      }
    });
    req.on('error', reject);
  });
}

function toolOf(t: StewardTool): Tool {
  return {
    name: t.name,
    title: t.title,
    description: t.description,
    inputSchema: z.toJSONSchema(t.input, { io: 'input' }) as Tool['inputSchema'],
    outputSchema: z.toJSONSchema(t.output) as Tool['outputSchema'],
    annotations: { title: t.title, readOnlyHint: t.readOnly, openWorldHint: false },
  };
}

type RouteCtx = Parameters<Route['handler']>[2];

/** What the MCP routes build once, on the first request, from the runtime the route is given. */
interface McpSetUp {
  runtime: Runtime;
  byName: Map<string, StewardTool>;
  listed: Tool[];
  remote?: RemoteTools;
}

function setUp(
  schema: GraphQLSchema,
  remoteFor: ((orm: () => Runtime['orm']) => RemoteTools) | undefined,
  runtime: Runtime,
): McpSetUp {
  const tools = stewardTools(runtime, new GraphQLBridge(schema, runtime));
  return {
    runtime,
    byName: new Map(tools.map((t) => [t.name, t])),
    listed: tools.map(toolOf),
    remote: remoteFor?.(() => runtime.orm),
  };
}

async function runStewardTool(
  runtime: Runtime,
  tool: StewardTool,
  rawArgs: unknown,
  call: ToolCall,
): Promise<CallToolResult> {
  const args = tool.input.safeParse(rawArgs ?? {});
  if (!args.success) {
    const fields = args.error.issues.map((i) => ({ field: i.path.join('.'), problem: i.message }));
    return toolFailure(
      'BAD_USER_INPUT',
      `Invalid input: ${fields.map((f) => `${f.field || 'arguments'}: ${f.problem}`).join('; ')}`,
      { fields },
    );
  }
  try {
    return toolSuccess(await tool.run(args.data, call));
  } catch (err) {
    if (err instanceof ToolError) return toolFailure(err.code, err.message, err.details);
    if (err instanceof AppError) return toolFailure(err.code, err.message, err.details);
    runtime.logger.error({ err, module: 'mcp', tool: tool.name, requestId: call.meta.requestId }, 'MCP tool failed');
    return toolFailure('INTERNAL_SERVER_ERROR', 'Internal server error', { requestId: call.meta.requestId });
  }
}

/** An MCP server for one request: Steward's own tools and the registered servers' tools this caller may reach. */
function serverFor(ready: McpSetUp, viewer: Viewer, meta: RequestMeta, projectId: string | null): Server {
  const { runtime, byName, listed, remote } = ready;
  const server = new Server(
    { name: 'steward', title: 'Steward', version: VERSION },
    { capabilities: { tools: { listChanged: false } } },
  );
  server.setRequestHandler(ListToolsRequestSchema, async () => ({
    tools: [...listed, ...(remote ? await remote.list(viewer, projectId) : [])],
  }));
  server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    const name = request.params.name;
    const progressToken = request.params._meta?.progressToken;
    const call: ToolCall = {
      viewer,
      meta,
      signal: extra.signal,
      progress: async (progress, total, message) => {
        if (progressToken === undefined) return;
        await extra.sendNotification({
          method: 'notifications/progress',
          params: { progressToken, progress, total, message },
        });
      },
    };
    const own = byName.get(name);
    if (own) return runStewardTool(runtime, own, request.params.arguments, call);
    const result = remote ? await remote.call(viewer, meta, projectId, name, request.params.arguments ?? {}) : null;
    if (!result) throw new McpError(ErrorCode.InvalidParams, `Unknown tool: ${name}`);
    return result;
  });
  return server;
}

/**
 * Who calls and for which project, once they may use /mcp at all; null when refused, the
 * refusal (401, 400 or 403, as a JSON-RPC error) already sent.
 */
async function admit(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: RouteCtx,
): Promise<{ viewer: Viewer; projectId: string | null } | null> {
  let viewer: Viewer | null;
  try {
    viewer = await ctx.authenticate();
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    sendJson(res, 401, jsonRpcError(-32001, err.message), { 'www-authenticate': 'Bearer' });
    return null;
  }
  if (!viewer) {
    sendJson(
      res,
      401,
      jsonRpcError(-32001, 'Authentication required: Authorization: Bearer <API token or service token>'),
      { 'www-authenticate': 'Bearer' },
    );
    return null;
  }
  const url = new URL(req.url ?? '/', 'http://localhost');
  const project = (req.headers['x-steward-project'] as string | undefined) ?? url.searchParams.get('project');
  if (project && !isUuid(project)) {
    sendJson(res, 400, jsonRpcError(ErrorCode.InvalidRequest, 'X-Steward-Project must be a project id'));
    return null;
  }
  const projectId = project ? project.toLowerCase() : null;
  try {
    assertMcpAccess(viewer, projectId);
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    sendJson(res, 403, jsonRpcError(-32001, `FORBIDDEN: ${err.message}`));
    return null;
  }
  return { viewer, projectId };
}

// Stateless: there is no session to open a stream on (GET) or to end (DELETE).
const notAllowed = (_req: IncomingMessage, res: ServerResponse) =>
  sendJson(res, 405, jsonRpcError(-32000, 'Method not allowed: POST JSON-RPC messages to /mcp'), { allow: 'POST' });

/**
 * Steward as an MCP server: `POST /mcp`, Streamable HTTP in stateless mode (every POST
 * is answered on its own, so any instance behind a load balancer can take it), the
 * caller named by `Authorization: Bearer <API token or service token>` (401 without).
 * The low-level SDK `Server` is used rather than `McpServer` because the tool list depends
 * on the caller (the registered servers' tools its project allows, with their own JSON
 * Schemas). `X-Steward-Project: <id>` (or `?project=<id>`) names the project whose allow
 * list applies to those.
 */
export function mcpRoutes(schema: GraphQLSchema, remoteFor?: (orm: () => Runtime['orm']) => RemoteTools): Route[] {
  let ready: McpSetUp | undefined;

  async function handle(req: IncomingMessage, res: ServerResponse, ctx: RouteCtx) {
    ready ??= setUp(schema, remoteFor, ctx.runtime);
    const caller = await admit(req, res, ctx);
    if (!caller) return;
    const body = await readJson(req, ctx.runtime.config.MAX_BODY_BYTES);
    if (!body.ok) return sendJson(res, body.status, jsonRpcError(ErrorCode.ParseError, body.message));
    const server = serverFor(ready, caller.viewer, ctx.meta, caller.projectId);
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, body.body);
  }

  return [
    { method: 'POST', path: /^\/mcp\/?$/, handler: handle },
    { method: 'GET', path: /^\/mcp\/?$/, handler: notAllowed },
    { method: 'DELETE', path: /^\/mcp\/?$/, handler: notAllowed },
  ];
}
