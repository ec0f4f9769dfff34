import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer } from '@apollo/server';
import {
  ApolloServerPluginCacheControlDisabled,
  ApolloServerPluginInlineTraceDisabled,
  ApolloServerPluginSchemaReportingDisabled,
  ApolloServerPluginUsageReportingDisabled,
} from '@apollo/server/plugin/disabled';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { GraphQLSchema } from 'graphql';

import { masterKeys, type Config } from '../config.js';
import { openDatabase, type Database } from '../db/database.js';
import { connectOrm } from '../db/orm.js';
import { prepareDatabase } from '../db/prepare.js';
import { createSqlClient } from '../db/sql.js';
import { EventBus } from '../events/bus.js';
import { Scheduler } from '../jobs/scheduler.js';
import { createJobs, createRoutes, createServices, type CoreDeps } from '../modules/index.js';
import { buildStewardSchema } from '../schema.js';
import { Envelope } from '../shared/crypto.js';
import { createLogger, type Logger } from '../shared/logger.js';
import { createMailer } from '../shared/mailer.js';
import { registerReadModels } from '../shared/read-model.js';
import { trustProxies } from './client-ip.js';
import type { Context, Runtime } from './context.js';
import { costLimitPlugin } from './cost-limit.plugin.js';
import { dashboardRoutes } from './dashboard.js';
import { createErrorFormatter, type ErrorFormatter } from './errors.js';
import { jitGateway } from './executor.js';
import { graphiqlRoutes } from './graphiql.js';
import { createHttpHandler } from './http.js';
import { landingPageOf, landingPagePlugin } from './landing-page.js';
import { queryLimits, type QueryLimits } from './limits.js';
import { openMetricsEndpoint } from './metrics-endpoint.js';
import { createMetrics, type Metrics } from './metrics.js';
import { attachWebSocket } from './ws.js';

export interface AppOptions {
  /** Use this database instead of DATABASE_URL / the embedded one (tests). */
  databaseUrl?: string;
  /** A database already opened (src/main.ts opens it while the application loads); closed with the app. */
  database?: Database;
  logger?: Logger;
  /** Apply pending migrations and seed reference data at start (default true). */
  migrate?: boolean;
}

export interface App {
  /** http://host:port */
  url: string;
  port: number;
  server: Server;
  runtime: Runtime;
  /** The separate /metrics listener's port (METRICS_PORT), or null. */
  metricsPort: number | null;
  /** Open WebSocket connections. */
  readonly connections: number;
  /** Live WebSocket subscriptions. */
  readonly subscriptions: number;
  /** Graceful: stop accepting, finish in-flight work, close sockets, jobs, pools, the ORM and the embedded database. */
  close(): Promise<void>;
}

/**
 * What `startApp` builds before it serves: the database (embedded unless given),
 * migrations and reference data, the pools, the event bus, every module's services and
 * the scheduler with their jobs. Nothing listens yet and no job runs yet.
 */
export async function createRuntime(
  config: Config,
  opts: AppOptions,
  logger: Logger,
  metrics: Metrics,
): Promise<{ runtime: Runtime; database: Database }> {
  const database: Database =
    opts.database ??
    (opts.databaseUrl
      ? { url: opts.databaseUrl, stop: async () => {}, embedded: false }
      : await openDatabase(config, logger));

  // Migrations and seeds run as DATABASE_URL's user (the owner); the application then
  // connects as a role that cannot rewrite the audit trail (src/db/app-role.ts).
  const url = opts.migrate !== false ? (await prepareDatabase(database.url, config, logger)).appUrl : database.url;
  const orm = await connectOrm(url, config.DB_POOL_SIZE, logger);
  registerReadModels(orm.getMetadata());
  const db = createSqlClient(url, config.DB_POOL_SIZE);
  const bus = new EventBus(url, logger, metrics.onEvent);
  await bus.start();

  const { keys, current } = masterKeys(config);
  const envelope = new Envelope(keys, current);
  const mailer = createMailer({
    smtpUrl: config.SMTP_URL,
    from: config.MAIL_FROM,
    production: config.isProduction,
    logger,
  });
  const core: CoreDeps = { config, db, bus, envelope, mailer, logger, metrics };
  const services = createServices(core);
  const scheduler = new Scheduler(
    { db, bus, logger, fork: () => orm.em.fork() as EntityManager, onRun: metrics.onJob },
    createJobs(core, services),
  );
  return { runtime: { config, logger, orm, db, bus, services, scheduler }, database };
}

/** The Apollo server of the HTTP path: its settings, and the plugins every request goes through. Not started. */
export function createApollo(
  schema: GraphQLSchema,
  runtime: Runtime,
  server: Server,
  limits: QueryLimits,
  formatError: ErrorFormatter,
  metrics: Metrics,
): ApolloServer<Context> {
  const { config } = runtime;
  return new ApolloServer<Context>({
    // The schema, and graphql-jit as the executor of HTTP queries (see ./executor.ts).
    gateway: jitGateway(schema),
    // Apollo otherwise reads process.env.NODE_ENV for its defaults (landing page, and
    // SIGTERM/SIGINT handlers of its own that would stop it before the WebSockets are
    // closed): it follows the validated config, and shutdown is app.close()'s alone.
    nodeEnv: config.NODE_ENV,
    stopOnTerminationSignals: false,
    csrfPrevention: true,
    allowBatchedHttpRequests: false,
    introspection: !config.isProduction,
    hideSchemaDetailsFromClientErrors: config.isProduction,
    includeStacktraceInErrorResponses: false,
    parseOptions: limits.parseOptions,
    validationRules: limits.validationRules,
    formatError: (formatted, error) => formatError(formatted, error),
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer: server }),
      // ~30% of CPU per request for hints nobody reads (docs/decisions/003-apollo-cache-control-off.md).
      ApolloServerPluginCacheControlDisabled(),
      ApolloServerPluginInlineTraceDisabled(),
      // Nothing is reported to Apollo's cloud, whatever APOLLO_KEY the environment holds.
      ApolloServerPluginUsageReportingDisabled(),
      ApolloServerPluginSchemaReportingDisabled(),
      metrics.plugin,
      landingPagePlugin(landingPageOf(config)),
      costLimitPlugin({ schema, limits }),
    ],
  });
}

/** config -> runtime (database, services, jobs) -> schema -> Apollo -> http + ws server, listening. */
export async function startApp(config: Config, opts: AppOptions = {}): Promise<App> {
  const logger = opts.logger ?? createLogger(config.LOG_LEVEL);
  const metrics = createMetrics();
  const { runtime, database } = await createRuntime(config, opts, logger, metrics);
  const { orm, db, bus, services, scheduler } = runtime;

  const schema = await buildStewardSchema();
  const limits = queryLimits(config);
  const formatError = createErrorFormatter(logger, config.isProduction);
  const server = createServer();
  trustProxies(server, config.TRUSTED_PROXIES);
  const apollo = createApollo(schema, runtime, server, limits, formatError, metrics);
  await apollo.start();

  let migrationsCurrent = false;
  const ready = async () => {
    await db.pool.query('SELECT 1');
    if (!migrationsCurrent) migrationsCurrent = (await orm.getMigrator().getPendingMigrations()).length === 0;
    return migrationsCurrent;
  };
  // /metrics: not behind GraphQL auth; METRICS_TOKEN and/or METRICS_PORT guard it (README).
  const metricsEndpoint = await openMetricsEndpoint(config, metrics, logger);
  const graphiql = landingPageOf(config) === 'off' ? [] : graphiqlRoutes();
  server.on(
    'request',
    createHttpHandler(
      runtime,
      apollo,
      [...metricsEndpoint.routes, ...dashboardRoutes(), ...graphiql, ...createRoutes(services, schema)],
      ready,
    ),
  );
  const ws = attachWebSocket(server, schema, runtime, limits, formatError, metrics);
  metrics.setSources({
    webSockets: () => ws.connections,
    subscriptions: () => ws.subscriptions,
    pool: () => ({ total: db.pool.totalCount, idle: db.pool.idleCount, waiting: db.pool.waitingCount }),
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.PORT, config.HOST, () => resolve());
  });
  if (config.JOBS_ENABLED) scheduler.start();
  const port = (server.address() as AddressInfo).port;
  const host = config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST;
  logger.info({ url: `http://${host}:${port}/graphql`, embeddedDatabase: database.embedded }, 'Steward is ready');

  let closing: Promise<void> | undefined;
  return {
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`,
    port,
    metricsPort: metricsEndpoint.port,
    server,
    runtime,
    get connections() {
      return ws.connections;
    },
    get subscriptions() {
      return ws.subscriptions;
    },
    close() {
      closing ??= (async () => {
        await scheduler.stop();
        await ws.close();
        await apollo.stop(); // drains in-flight HTTP requests, then closes the server
        await metricsEndpoint.close();
        await bus.close();
        await db.close();
        await orm.close();
        await database.stop();
      })();
      return closing;
    },
  };
}
