import type { ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';

import { graphiqlHtml } from './graphiql.js';

export type LandingPage = 'sandbox' | 'graphiql' | 'off';

/** GRAPHQL_LANDING_PAGE, or its default: Apollo Sandbox, and none in production. */
export const landingPageOf = (c: { GRAPHQL_LANDING_PAGE?: LandingPage; isProduction: boolean }): LandingPage =>
  c.GRAPHQL_LANDING_PAGE ?? (c.isProduction ? 'off' : 'sandbox');

/** Said on Sandbox's own "cannot be loaded" fallback, which shows while its CDN script is missing. */
export const OFFLINE_LINK =
  '<p>Steward bundles GraphiQL, which works offline: <a href="/graphiql">open /graphiql</a>.</p>';

/**
 * What a browser gets on GET /graphql:
 * - `sandbox`: Apollo Sandbox (loaded from Apollo's CDN), whose offline fallback gets a link to /graphiql;
 * - `graphiql`: the bundled GraphiQL itself;
 * - `off`: no landing page (Apollo answers the GET like any other GraphQL request).
 */
export function landingPagePlugin(choice: LandingPage): ApolloServerPlugin {
  if (choice === 'off') return ApolloServerPluginLandingPageDisabled();
  if (choice === 'graphiql') {
    return {
      async serverWillStart() {
        return {
          async renderLandingPage() {
            return {
              html: async () =>
                graphiqlHtml() ??
                '<!doctype html><p>GraphiQL is not built: run <code>npm run build:graphiql</code>.</p>',
            };
          },
        };
      },
    };
  }
  return withOfflineLink(ApolloServerPluginLandingPageLocalDefault({ embed: true, includeCookies: false }));
}

/**
 * Apollo's landing page with OFFLINE_LINK inside its fallback block (the options offer no
 * such content: `footer` only toggles Apollo's own). The Sandbox iframe covers the block
 * once it loads; when Apollo's markup changes, the link goes at the top of the body instead.
 */
function withOfflineLink(plugin: ApolloServerPlugin): ApolloServerPlugin {
  return {
    ...plugin,
    async serverWillStart(service) {
      const listener = await plugin.serverWillStart?.(service);
      const render = listener?.renderLandingPage;
      if (!listener || !render) return listener;
      return {
        ...listener,
        async renderLandingPage() {
          const page = await render.call(listener);
          const html = page.html;
          return { ...page, html: async () => addOfflineLink(typeof html === 'string' ? html : await html()) };
        },
      };
    },
  };
}

export function addOfflineLink(html: string): string {
  const fallback = /(<div class="fallback">[\s\S]*?)(<\/div>)/.exec(html);
  const linked = fallback
    ? html.replace(fallback[0], `${fallback[1]}  ${OFFLINE_LINK}\n${fallback[2]}`)
    : html.replace(/<body[^>]*>/, (body) => `${body}\n${OFFLINE_LINK}`);
  // Sandbox's empty full-page container would still lie over the link: gone when its script never came.
  // (Apollo's CSP allows scripts by the page's nonce only.)
  const nonce = /<script nonce="?([\w-]+)"?/.exec(linked)?.[1];
  if (!nonce) return linked;
  const uncover = `<script nonce="${nonce}">if (!window.EmbeddedSandbox) document.getElementById('embeddableSandbox')?.remove();</script>`;
  return /<\/body>/.test(linked) ? linked.replace(/<\/body>/, `${uncover}\n</body>`) : `${linked}\n${uncover}`;
}
