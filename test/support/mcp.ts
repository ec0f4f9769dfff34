import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import type { TestServer } from './server.js';

/** An official MCP SDK client of Steward's /mcp, as `token` (and for `project`, whose allow list applies). */
export async function mcpClient(s: TestServer, token: string, project?: string): Promise<Client> {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (project) headers['x-steward-project'] = project;
  const client = new Client({ name: 'steward-test-agent', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${s.app.url}/mcp`), { requestInit: { headers } }));
  return client;
}
