import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';

/**
 * A remote MCP server of the organisation, as a test starts it: the official SDK's
 * McpServer over Streamable HTTP (stateless), with tools that count what they really
 * served. It wants `Authorization: Bearer <secret>` (401 otherwise), so a test sees that
 * Steward sends the registered (sealed) header. `stop()` makes it go away; `start()`
 * brings it back on the same port.
 */
export class RemoteMcpServer {
  /** Calls the `count` tool really served, with their arguments. */
  readonly calls: Record<string, unknown>[] = [];
  /** Texts the `echo` tool really said back. */
  readonly echoes: string[] = [];
  /** Requests refused for a missing or wrong Authorization header. */
  unauthorized = 0;
  private http?: Server;
  port = 0;

  constructor(readonly secret: string) {}

  get url() {
    return `http://127.0.0.1:${this.port}/mcp`;
  }

  private build(): McpServer {
    const mcp = new McpServer({ name: 'remote-test', version: '1.0.0' });
    mcp.registerTool(
      'count',
      {
        title: 'Count a call',
        description: 'Counts its calls and says how many it has served.',
        inputSchema: { label: z.string().describe('What to count') },
        outputSchema: { served: z.number(), label: z.string() },
      },
      async ({ label }) => {
        this.calls.push({ label });
        const out = { served: this.calls.length, label };
        return { content: [{ type: 'text', text: `call ${out.served}: ${label}` }], structuredContent: out };
      },
    );
    mcp.registerTool(
      'echo',
      { description: 'Says back what it is given.', inputSchema: { text: z.string() } },
      async ({ text }) => {
        this.echoes.push(text);
        return { content: [{ type: 'text', text }] };
      },
    );
    return mcp;
  }

  async start(): Promise<void> {
    const http = createServer(async (req, res) => {
      if (req.headers.authorization !== `Bearer ${this.secret}`) {
        this.unauthorized++;
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"unauthorized"}');
        return;
      }
      if (req.method !== 'POST') return void res.writeHead(405).end();
      const mcp = this.build();
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
      res.on('close', () => {
        void transport.close();
        void mcp.close();
      });
      await mcp.connect(transport);
      await transport.handleRequest(req, res);
    });
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (http.address() as AddressInfo).port;
    this.http = http;
  }

  async stop(): Promise<void> {
    const http = this.http;
    this.http = undefined;
    if (!http) return;
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
  }
}
