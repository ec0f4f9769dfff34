import { createServer } from 'node:http';

import { serveInChild } from './child-server.js';

/**
 * PostGraphile 5 on Steward's database: the first comparison of the dashboard
 * (./compare.ts), run by the bench as a child process (./child-server.ts).
 *
 * As PostGraphile is documented to be run: the amber preset, one pg service over the
 * `public` schema (makePgService, with Steward's pool size), grafserv's node adapter on a
 * plain node:http server. Nothing else: no plugins, no smart tags, no JWT or pgSettings
 * (it connects as the bench's superuser, so no RLS and no role switching), no GraphiQL,
 * no websockets, no schema watching. Its schema is built before the bench is told it
 * serves, so the build never counts in a measurement.
 */

// PostGraphile 5 requires Node ≥ 22 for Promise.withResolvers (ES2024); Steward runs on
// Node 20. The polyfill must exist before any of PostGraphile's modules is evaluated:
// they are imported dynamically below, since static imports would be evaluated first.
type WithResolvers = <T>() => {
  promise: Promise<T>;
  resolve: (value: T | PromiseLike<T>) => void;
  reject: (reason?: unknown) => void;
};
const promiseStatics = Promise as unknown as { withResolvers?: WithResolvers };
if (typeof promiseStatics.withResolvers !== 'function') {
  promiseStatics.withResolvers = <T>() => {
    let resolve!: (value: T | PromiseLike<T>) => void;
    let reject!: (reason?: unknown) => void;
    const promise = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}

serveInChild(async ({ dbUrl, poolSize }) => {
  const { postgraphile } = await import('postgraphile');
  const { PostGraphileAmberPreset } = await import('postgraphile/presets/amber');
  const { makePgService } = await import('postgraphile/adaptors/pg');
  const { grafserv } = await import('postgraphile/grafserv/node');
  const pgl = postgraphile({
    extends: [PostGraphileAmberPreset],
    pgServices: [
      makePgService({ connectionString: dbUrl, schemas: ['public'], poolConfig: { max: poolSize }, pubsub: false }),
    ],
    grafserv: { graphiql: false, watch: false, websockets: false },
    grafast: { explain: false },
  });
  const serv = pgl.createServ(grafserv);
  const server = createServer();
  await serv.addTo(server);
  await pgl.getSchema(); // introspection and schema build, before the first request
  return { server, close: async () => pgl.release() };
});
