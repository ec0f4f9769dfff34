import { describe, expect, it } from 'vitest';

import { loadConfig } from '../../src/config.js';
import { addOfflineLink, landingPageOf, OFFLINE_LINK } from '../../src/server/landing-page.js';

describe('the landing page of GET /graphql', () => {
  it('is Apollo Sandbox by default, none in production, or what GRAPHQL_LANDING_PAGE says', () => {
    expect(landingPageOf({ isProduction: false })).toBe('sandbox');
    expect(landingPageOf({ isProduction: true })).toBe('off');
    expect(landingPageOf({ isProduction: true, GRAPHQL_LANDING_PAGE: 'graphiql' })).toBe('graphiql');
    expect(() => loadConfig({ NODE_ENV: 'test', GRAPHQL_LANDING_PAGE: 'playground' })).toThrow(/GRAPHQL_LANDING_PAGE/);
  });

  it("puts the /graphiql link inside Sandbox's offline fallback, or at the top of the body", () => {
    const apollo =
      '<body>\n<div class="fallback">\n  <h1>Welcome</h1>\n  <p>Apollo Sandbox cannot be loaded</p>\n</div>\n<div id="embeddableSandbox"></div>';
    const linked = addOfflineLink(apollo);
    expect(linked).toMatch(
      new RegExp(
        `<div class="fallback">[\\s\\S]*cannot be loaded</p>\\s*${OFFLINE_LINK.replace(/[/.]/g, '\\$&')}\\s*</div>`,
      ),
    );
    expect(addOfflineLink('<html><body class="x"><main></main>')).toBe(
      `<html><body class="x">\n${OFFLINE_LINK}<main></main>`,
    );
    // With the page's nonce, a script takes Sandbox's empty container off the link when Sandbox never loaded.
    const withScript = addOfflineLink(
      `${apollo}\n<script nonce="abc123" src="https://cdn/sandbox.js"></script>\n</body>`,
    );
    expect(withScript).toContain(
      `<script nonce="abc123">if (!window.EmbeddedSandbox) document.getElementById('embeddableSandbox')?.remove();</script>\n</body>`,
    );
  });
});
