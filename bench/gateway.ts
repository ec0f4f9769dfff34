/**
 * The AI gateway bench (`node dist/bench/gateway.js`, also the `gateway` part of `npm run
 * bench`): in one run on this machine, a local OpenAI-compatible provider that answers at
 * once (a child process); Steward's /v1/chat/completions with a real virtual key (its own
 * budget), the user's quotas, governance by a task (X-Steward-Task) and prompt logging;
 * Portkey's open-source gateway (`@portkey-ai/gateway`, a child process) in front of the
 * same provider; and the provider called directly. Reported: calls/s at BENCH_CONNECTIONS
 * (default 32) connections, p50/p99, the latency added at one connection against the
 * direct call, SQL statements, Steward's Node CPU and PostgreSQL's CPU per call — for one user and for 32
 * users (one key each) — and whether every answered call is on the record (the provider's
 * own count of what it served against Steward's prompt logs).
 *
 * Steward's PostgreSQL commits to the disk as in production (fsync on; BENCH_GATEWAY_FSYNC=0
 * turns it off, as the other benches' throw-away clusters do).
 *
 * Settings: BENCH_CONNECTIONS, BENCH_GATEWAY_DURATION (s, default 8), BENCH_GATEWAY_SINGLE (s, default 4),
 * BENCH_WARMUP (s, default 2), BENCH_SQL_SAMPLES (default 20), BENCH_GATEWAY_FSYNC (default 1).
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { cpuDelta, cpuSnapshot } from './cpu.js';
import { graphql } from './http.js';
import type { LoadResult, LoadSpec } from './load.js';
import { runLoad } from './measure.js';
import { freePort, listStatements, readStatements, resetStatements, startBenchDatabase } from './postgres.js';

process.env.NODE_ENV ||= 'production';
const log = (msg: string) => process.stderr.write(`[bench:gateway] ${msg}\n`);
const num = (name: string, def: number) => (process.env[name] ? Number(process.env[name]) : def);

const CONNECTIONS = num('BENCH_CONNECTIONS', 32);
const DURATION = num('BENCH_GATEWAY_DURATION', 8);
const SINGLE = num('BENCH_GATEWAY_SINGLE', 4);
const WARMUP = num('BENCH_WARMUP', 2);
const SQL_SAMPLES = num('BENCH_SQL_SAMPLES', 20);
const MODEL = 'gpt-4o-mini';
const PROMPT = {
  model: MODEL,
  max_tokens: 64,
  messages: [
    {
      role: 'user',
      content: 'Review this function and write a unit test: export const add = (a: number, b: number) => a + b;',
    },
  ],
};

interface Provider {
  url: string;
  served(): Promise<number>;
  stop(): void;
}

function startProvider(): Promise<Provider> {
  const child = fork(fileURLToPath(new URL('./gateway-provider.js', import.meta.url)), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('message', (m) => {
      const { url } = m as { url: string };
      resolve({
        url,
        served: () =>
          new Promise((r) => {
            child.once('message', (x) => r((x as { served: number }).served));
            child.send('served');
          }),
        stop: () => child.connected && child.disconnect(),
      });
    });
  });
}

async function startPortkey(): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const entry = fileURLToPath(new URL('../../node_modules/@portkey-ai/gateway/build/start-server.js', import.meta.url));
  const child = spawn(process.execPath, [entry, `--port=${port}`, '--headless'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    try {
      await fetch(`${url}/`);
      return { url, child };
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  child.kill();
  throw new Error('Portkey did not start');
}

async function countLogs(url: string): Promise<{ all: number; success: number }> {
  const pg = (await import('pg')).default;
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const [r] = (
      await c.query<{ all: number; success: number }>(
        `SELECT count(*)::int AS "all", (count(*) FILTER (WHERE status = 'SUCCESS'))::int AS success FROM prompt_logs`,
      )
    ).rows;
    return r!;
  } finally {
    await c.end();
  }
}

const chatRequest = (url: string, headers: Record<string, string>) => ({
  url,
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(PROMPT),
});

interface Row {
  name: string;
  loaded: LoadResult;
  single: LoadResult;
  sqlPerCall?: number;
  cpuMsPerCall?: number;
  /** CPU of PostgreSQL's processes during the loaded run, per call. */
  pgCpuMsPerCall?: number;
}

async function measure(
  name: string,
  spec: Omit<LoadSpec, 'connections' | 'duration'>,
  opts: { cpu?: boolean; postgresPid?: number } = {},
): Promise<Row> {
  await runLoad({ ...spec, connections: CONNECTIONS, duration: WARMUP, check: 'chat' });
  const cpu0 = process.cpuUsage();
  const pg0 = cpuSnapshot(opts.postgresPid);
  const loaded = await runLoad({ ...spec, connections: CONNECTIONS, duration: DURATION, check: 'chat' });
  const cpu = process.cpuUsage(cpu0);
  const pgMs = cpuDelta(pg0, cpuSnapshot(opts.postgresPid)).postgresMs;
  const single = await runLoad({
    ...spec,
    perConnection: spec.perConnection?.slice(0, 1),
    connections: 1,
    duration: SINGLE,
    check: 'chat',
  });
  const row: Row = {
    name,
    loaded,
    single,
    ...(opts.cpu
      ? {
          cpuMsPerCall: (cpu.user + cpu.system) / 1000 / Math.max(1, loaded.requests),
          pgCpuMsPerCall: pgMs / Math.max(1, loaded.requests),
        }
      : {}),
  };
  log(
    `${name}: ${loaded.requestsPerSecond.toFixed(0)} calls/s, p50 ${loaded.latencyMs.p50.toFixed(2)} ms, p99 ${loaded.latencyMs.p99.toFixed(2)} ms; 1 connection p50 ${single.latencyMs.p50.toFixed(2)} ms; failures ${loaded.errors + loaded.non2xx + loaded.mismatches + loaded.timeouts}`,
  );
  return row;
}

export async function gatewayBench(): Promise<string> {
  const provider = await startProvider();
  const db = await startBenchDatabase('steward_gateway_bench', {
    durable: !['0', 'false', 'no'].includes(process.env.BENCH_GATEWAY_FSYNC ?? ''),
  });
  const home = mkdtempSync(join(tmpdir(), 'steward-gw-bench-'));
  const { loadConfig } = await import('../src/config.js');
  const { startApp } = await import('../src/server/app.js');
  const config = loadConfig({
    NODE_ENV: process.env.NODE_ENV,
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL || 'silent',
    STEWARD_HOME: home,
    JOBS_ENABLED: 'false',
    TOKEN_SIGNING_KEY: 'steward-bench-signing-key-0123456789abcdef',
    ENCRYPTION_MASTER_KEY: randomBytes(32).toString('base64'),
    ACCESS_TOKEN_TTL_SECONDS: String(24 * 3600),
  });
  const app = await startApp(config, { databaseUrl: db.url, migrate: true });
  let portkey: Awaited<ReturnType<typeof startPortkey>> | undefined;
  try {
    const gq = `${app.url}/graphql`;
    const signUp = (input: Record<string, unknown>) =>
      graphql<{ signUp: { accessToken: string; user: { id: string } } }>(
        gq,
        `
          mutation ($input: SignUpInput!) {
            signUp(input: $input) {
              accessToken
              user {
                id
              }
            }
          }
        `,
        { input },
      );
    const admin = await signUp({
      email: 'gw-admin@bench.test',
      username: 'gw_admin',
      name: 'Admin',
      password: 'correct horse battery',
    });
    const at = admin.signUp.accessToken;
    await graphql(
      gq,
      `
        mutation ($input: CreateProviderInput!) {
          createProvider(input: $input) {
            id
          }
        }
      `,
      {
        input: {
          name: 'bench-provider',
          providerType: 'OPENAI',
          modelName: MODEL,
          apiEndpoint: `${provider.url}/v1`,
          apiKey: 'sk-bench-provider-key',
          inputCostPer1k: '0.000150',
          outputCostPer1k: '0.000600',
          maxTokens: 256,
          timeoutSeconds: 30,
        },
      },
      at,
    );
    const project = (
      await graphql<{ createProject: { id: string } }>(
        gq,
        `
          mutation {
            createProject(input: { name: "Gateway bench" }) {
              id
            }
          }
        `,
        {},
        at,
      )
    ).createProject.id;
    const task = (
      await graphql<{ createTask: { id: string } }>(
        gq,
        `
          mutation ($input: CreateTaskInput!) {
            createTask(input: $input) {
              id
            }
          }
        `,
        { input: { projectId: project, title: 'Review code', allowedIntents: ['coding', 'testing'] } },
        at,
      )
    ).createTask.id;

    // 32 users (the admin among them), each a project contributor with roomy quotas and a budgeted, task-bound key.
    const users: { id: string; token: string }[] = [{ id: admin.signUp.user.id, token: at }];
    for (let i = 1; i < 32; i++) {
      const inv = await graphql<{ createInvitation: { code: string } }>(
        gq,
        `
          mutation ($input: CreateInvitationInput!) {
            createInvitation(input: $input) {
              code
            }
          }
        `,
        { input: { role: 'USER', maxUses: 1, expiresAt: new Date(Date.now() + 3600_000).toISOString() } },
        at,
      );
      const u = await signUp({
        email: `gw${i}@bench.test`,
        username: `gw_user_${i}`,
        name: `User ${i}`,
        password: 'correct horse battery',
        invitationCode: inv.createInvitation.code,
      });
      await graphql(
        gq,
        `
          mutation ($input: AddProjectMemberInput!) {
            addProjectMember(input: $input) {
              role
            }
          }
        `,
        { input: { projectId: project, userId: u.signUp.user.id, role: 'CONTRIBUTOR' } },
        at,
      ).catch(() => {});
      users.push({ id: u.signUp.user.id, token: u.signUp.accessToken });
    }
    const keys: string[] = [];
    for (const u of users) {
      await graphql(
        gq,
        `
          mutation ($input: SetUserQuotaInput!) {
            setUserQuota(input: $input) {
              requestsPerHour
            }
          }
        `,
        {
          input: {
            userId: u.id,
            requestsPerHour: 1_000_000,
            dailyTokenLimit: 2_000_000_000,
            monthlyTokenLimit: 2_000_000_000,
            monthlyMessageLimit: 10_000_000,
            dailyCostLimitUsd: '100000',
            monthlyCostLimitUsd: '1000000',
          },
        },
        at,
      );
      const k = await graphql<{ createVirtualKey: { token: string } }>(
        gq,
        `
          mutation ($input: CreateVirtualKeyInput!) {
            createVirtualKey(input: $input) {
              token
            }
          }
        `,
        { input: { name: 'bench', taskId: task, dailyCostLimitUsd: '10000', requestsPerMinute: 1_000_000 } },
        u.token,
      );
      keys.push(k.createVirtualKey.token);
    }
    const stewardUrl = `${app.url}/v1/chat/completions`;
    const steward = (key: string) => chatRequest(stewardUrl, { authorization: `Bearer ${key}` });
    const check = await fetch(stewardUrl, {
      method: 'POST',
      headers: steward(keys[0]!).headers,
      body: steward(keys[0]!).body,
    });
    if (check.status !== 200) throw new Error(`Steward's gateway answered ${check.status}: ${await check.text()}`);

    portkey = await startPortkey();
    const viaPortkey = chatRequest(`${portkey.url}/v1/chat/completions`, {
      authorization: 'Bearer sk-bench-provider-key',
      'x-portkey-provider': 'openai',
      'x-portkey-custom-host': `${provider.url}/v1`,
    });
    const direct = chatRequest(`${provider.url}/v1/chat/completions`, {
      authorization: 'Bearer sk-bench-provider-key',
    });

    const rows: Row[] = [];
    rows.push(await measure('provider, direct', { request: direct }));
    rows.push(await measure('Portkey gateway (pass-through)', { request: viaPortkey }));
    portkey.child.kill();
    portkey = undefined;
    await new Promise((r) => setTimeout(r, 500));
    const servedBefore = await provider.served();
    const logsBefore = await countLogs(db.url);
    rows.push(await measure('Steward, 1 user', { request: steward(keys[0]!) }, { cpu: true, postgresPid: db.pid() }));
    rows.push(
      await measure(
        'Steward, 32 users',
        { request: steward(keys[0]!), perConnection: keys.map(steward) },
        { cpu: true, postgresPid: db.pid() },
      ),
    );

    // SQL statements per call, sequentially, one user after the other.
    await resetStatements(db);
    for (let i = 0; i < SQL_SAMPLES; i++)
      await fetch(stewardUrl, {
        method: 'POST',
        headers: steward(keys[i % keys.length]!).headers,
        body: steward(keys[0]!).body,
      }).then((r) => r.text());
    const stats = await readStatements(db);
    const sqlPerCall = stats.calls / SQL_SAMPLES;
    if (['1', 'true', 'yes'].includes(process.env.BENCH_VERBOSE ?? ''))
      for (const s of await listStatements(db))
        log(
          `${(s.calls / SQL_SAMPLES).toFixed(2)}/call ${s.meanMs.toFixed(3)} ms  ${s.query.replace(/\s+/g, ' ').slice(0, 160)}`,
        );
    for (const r of rows.slice(2)) r.sqlPerCall = sqlPerCall;

    // Every call the provider answered for Steward is on the record (calls cut off by the end of a run are logged as ERROR).
    await new Promise((r) => setTimeout(r, 1000));
    const stewardServed = (await provider.served()) - servedBefore;
    const after = await countLogs(db.url);
    const logs = { all: after.all - logsBefore.all, success: after.success - logsBefore.success };
    const directRow = rows[0]!;
    const portkeyRow = rows[1]!;
    const fmt = (x: number | undefined, d = 2) => (x === undefined || Number.isNaN(x) ? '–' : x.toFixed(d));
    const lines = [
      `### AI gateway (${new Date().toISOString().slice(0, 16)}Z, ${CONNECTIONS} connections, ${DURATION} s loaded, ${SINGLE} s at 1 connection)`,
      '',
      '| | calls/s | p50 ms | p99 ms | 1-conn p50 ms | added p50 vs direct (1 conn) | SQL / call | Node CPU ms / call | PostgreSQL CPU ms / call | failed |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
      ...rows.map(
        (r) =>
          `| ${r.name} | ${fmt(r.loaded.requestsPerSecond, 0)} | ${fmt(r.loaded.latencyMs.p50)} | ${fmt(r.loaded.latencyMs.p99)} | ${fmt(r.single.latencyMs.p50)} | ${r === directRow ? '–' : fmt(r.single.latencyMs.p50 - directRow.single.latencyMs.p50)} | ${fmt(r.sqlPerCall, 1)} | ${fmt(r.cpuMsPerCall)} | ${fmt(r.pgCpuMsPerCall)} | ${r.loaded.errors + r.loaded.non2xx + r.loaded.mismatches + r.loaded.timeouts} |`,
      ),
      '',
      `Steward / Portkey calls/s: 1 user ${fmt(rows[2]!.loaded.requestsPerSecond / portkeyRow.loaded.requestsPerSecond)}×, 32 users ${fmt(rows[3]!.loaded.requestsPerSecond / portkeyRow.loaded.requestsPerSecond)}× (goal ≥ 2× for 32 users, ≥ 1× for one).`,
      `On the record: the provider served ${stewardServed} calls for Steward (its own count), Steward has ${logs.all} prompt logs for them (${logs.success} SUCCESS)${stewardServed <= logs.all ? ': none missing' : ' — MISSING LOGS'}.`,
      '',
    ];
    return lines.join('\n');
  } finally {
    portkey?.child.kill();
    await app.close().catch(() => {});
    provider.stop();
    await db.stop();
    rmSync(home, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  gatewayBench().then(
    (report) => {
      process.stdout.write(`${report}\n`);
      process.exit(0);
    },
    (err) => {
      process.stderr.write(`${(err as Error).stack ?? err}\n`);
      process.exit(1);
    },
  );
}
