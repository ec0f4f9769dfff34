/** One GraphQL request over HTTP, exactly as the load generator sends it. */
export interface GraphQLRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
}

export function graphqlRequest(
  url: string,
  query: string,
  variables?: Record<string, unknown>,
  token?: string | null,
): GraphQLRequest {
  return {
    url,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(variables ? { query, variables } : { query }),
  };
}

/** Sends it once; returns the status and the raw body. */
export async function send(req: GraphQLRequest): Promise<{ status: number; body: string }> {
  const res = await fetch(req.url, { method: 'POST', headers: req.headers, body: req.body });
  return { status: res.status, body: await res.text() };
}

/** A response counts as good when it is 200 and carries `data` and no `errors`. */
export function isGoodBody(body: string): boolean {
  try {
    const parsed = JSON.parse(body) as { data?: unknown; errors?: unknown };
    return parsed.data != null && parsed.errors === undefined;
  } catch {
    return false;
  }
}

/** Sends a GraphQL operation and returns its `data`; any error (HTTP or GraphQL) throws with the body. */
export async function graphql<T>(
  url: string,
  query: string,
  variables?: Record<string, unknown>,
  token?: string | null,
): Promise<T> {
  const { status, body } = await send(graphqlRequest(url, query, variables, token));
  if (status !== 200 || !isGoodBody(body))
    throw new Error(`GraphQL request failed (HTTP ${status}): ${body.slice(0, 1000)}`);
  return (JSON.parse(body) as { data: T }).data;
}
