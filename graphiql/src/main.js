// GraphiQL for Steward, bundled at build time (npm run build:graphiql): no CDN, so it works
// on a network without internet. Queries and mutations go over HTTP, subscriptions over
// graphql-ws on the same /graphql; the Authorization header in the headers editor is used
// for both (the WebSocket reconnects when it changes).
import 'graphiql/style.css';

import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { GraphiQL } from 'graphiql';
import { createClient } from 'graphql-ws';
import { createElement } from 'react';
import { createRoot } from 'react-dom/client';

// Monaco's language workers, bundled next to this script (see graphiql/build.mjs).
const base = new URL('.', import.meta.url);
globalThis.MonacoEnvironment = {
  getWorker(_id, label) {
    const file = label === 'json' ? 'json.worker.js' : label === 'graphql' ? 'graphql.worker.js' : 'editor.worker.js';
    return new Worker(new URL(file, base));
  },
};

const endpoint = new URL('/graphql', location.href);
const wsEndpoint = `${endpoint.protocol === 'https:' ? 'wss:' : 'ws:'}//${endpoint.host}${endpoint.pathname}`;

/** The Authorization header as typed in the headers editor (any case), or null. */
function authorizationOf(headers) {
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (
      name.toLowerCase() === 'authorization' &&
      typeof value === 'string' &&
      value.trim() &&
      value.trim() !== 'Bearer'
    )
      return value.trim();
  }
  return null;
}

let ws = null;
/** One graphql-ws client per Authorization value: Steward authenticates a socket once, at connection_init. */
function wsClientFor(authorization) {
  if (ws && ws.authorization === authorization) return ws.client;
  ws?.client.dispose();
  const client = createClient({
    url: wsEndpoint,
    lazy: true,
    connectionParams: authorization ? { authorization } : {},
  });
  ws = { authorization, client };
  return client;
}

function fetcher(params, options) {
  const authorization = authorizationOf(options?.headers);
  const headers = { ...(options?.headers ?? {}) };
  // An Authorization left as the template ("Bearer ") would be refused: send none instead.
  for (const name of Object.keys(headers))
    if (name.toLowerCase() === 'authorization' && !authorization) delete headers[name];
  return createGraphiQLFetcher({ url: endpoint.href, wsClient: wsClientFor(authorization) })(params, {
    ...options,
    headers,
  });
}

const DEFAULT_QUERY = `# Welcome to Steward's GraphiQL (bundled: works offline).
# Paste an access token after "Bearer " in the Headers tab below
# (the \`login\` mutation returns one), then run:
query Me {
  me { id email role }
}
`;

createRoot(document.getElementById('graphiql')).render(
  createElement(GraphiQL, {
    fetcher,
    defaultQuery: DEFAULT_QUERY,
    defaultHeaders: JSON.stringify({ Authorization: 'Bearer ' }, null, 2),
    defaultEditorToolsVisibility: 'headers',
    shouldPersistHeaders: true,
  }),
);
