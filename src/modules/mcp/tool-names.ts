/** `<server name>__<tool>`, in the characters MCP tool names are made of (and OpenAI function names accept). */
export const exposedName = (server: string, tool: string) =>
  `${server}__${tool}`.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 128);
