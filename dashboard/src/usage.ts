/**
 * The Usage page (GET /dashboard/usage): where the money and the attention go over the
 * last 30 days — spend per day stacked by model (Chart.js, bundled by esbuild: no CDN),
 * the top users, projects and tasks, the intents used on each task against its allowed
 * intents, and blocked calls. Live: every `usageRecorded` event (a call the viewer may
 * see was recorded) asks the report again, so a new call moves the chart without a reload.
 * What each viewer sees is what usageReport shows them (admins all, project owners and
 * maintainers their projects, everyone their own calls).
 */
import { BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, Tooltip } from 'chart.js';
import type { Client } from 'graphql-ws';

import { UsagePageDocument, UsageRecordedDocument, type UsagePageQuery } from '../generated/graphql.js';
import { $, connectLive, el, http, onSignIn } from './session.js';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip);

const DAYS = 30;
const PALETTE = ['#3b6ea8', '#e07b39', '#4e9a62', '#b8467a', '#7a5cc2', '#c9a227', '#3aa3a3', '#8c6d4f'];

let ws: Client | undefined;
let chart: Chart<'bar', number[], string> | undefined;

/** Exact decimal dollars ("0.012300") as cents-rounded text; sums in micro-dollars, never floats of floats. */
const micros = (usd: string) => {
  const [whole, frac = ''] = usd.split('.');
  return Number(whole) * 1_000_000 + Number(frac.padEnd(6, '0').slice(0, 6));
};
const money = (m: number) => `$${(m / 1_000_000).toFixed(m && m < 1_000_000 ? 4 : 2)}`;

/** The UTC days of the window, oldest first (days without calls are bars of 0). */
function windowDays(now = new Date()): string[] {
  const end = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  return Array.from({ length: DAYS }, (_, i) => new Date(end - (DAYS - 1 - i) * 86400_000).toISOString().slice(0, 10));
}

function table(id: string, head: string[], rows: (string | number)[][], empty: string, numeric = new Set<number>()) {
  const t = $(id);
  if (!rows.length) return void t.replaceChildren(el('tbody', {}, el('tr', {}, el('td', { class: 'empty' }, empty))));
  t.replaceChildren(
    el('thead', {}, el('tr', {}, ...head.map((h, i) => el('th', numeric.has(i) ? { class: 'num' } : {}, h)))),
    el(
      'tbody',
      {},
      ...rows.map((r) => el('tr', {}, ...r.map((c, i) => el('td', numeric.has(i) ? { class: 'num' } : {}, String(c))))),
    ),
  );
}

function renderSpend(data: UsagePageQuery) {
  const days = windowDays();
  const models = [...new Set(data.spend.rows.map((r) => r.model ?? 'no model'))].sort();
  const cost = new Map<string, number>();
  for (const r of data.spend.rows) cost.set(`${r.day}|${r.model ?? 'no model'}`, micros(r.costUsd));
  const datasets = models.map((m, i) => ({
    label: m,
    data: days.map((d) => (cost.get(`${d}|${m}`) ?? 0) / 1_000_000),
    backgroundColor: PALETTE[i % PALETTE.length],
    stack: 'spend',
  }));
  const labels = days.map((d) => d.slice(5));
  if (!chart) {
    chart = new Chart($<HTMLCanvasElement>('spend-chart'), {
      type: 'bar',
      data: { labels, datasets },
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: {
          x: { stacked: true },
          y: {
            stacked: true,
            beginAtZero: true,
            ticks: { callback: (v) => `$${Number(v).toFixed(Number(v) && Number(v) < 1 ? 4 : 2)}` },
          },
        },
        plugins: {
          legend: { position: 'bottom' },
          tooltip: { callbacks: { label: (c) => `${c.dataset.label}: $${Number(c.raw).toFixed(6)}` } },
        },
      },
    });
  } else {
    chart.data.labels = labels;
    chart.data.datasets = datasets;
    chart.update();
  }
  // What the chart shows, for assistive technology and for tests: today's stacked total, from the chart's own data.
  const canvas = $('spend-chart');
  const last = days.length - 1;
  const todayMicros = chart.data.datasets.reduce((n, ds) => n + Math.round((ds.data[last] ?? 0) * 1_000_000), 0);
  canvas.dataset.today = (todayMicros / 1_000_000).toFixed(6);
  canvas.dataset.models = models.join(',');
  table(
    'spend-table',
    ['Day', ...models],
    days.map((d) => [d, ...models.map((m) => money(cost.get(`${d}|${m}`) ?? 0))]),
    'No spend.',
  );

  const t = data.spend.totals;
  $('figures').replaceChildren(
    ...[
      ['Spend', money(micros(t.costUsd))],
      ['Calls', t.requests],
      ['Tokens in / out', `${t.inputTokens} / ${t.outputTokens}`],
      ['Blocked', t.blocked],
      ['Failed', t.errors],
    ].map(([k, v]) => el('div', {}, el('strong', {}, String(v)), String(k))),
  );
}

function render(data: UsagePageQuery) {
  renderSpend(data);
  const measures = (r: { requests: number; costUsd: string; blocked: number }) => [
    r.requests,
    r.blocked,
    money(micros(r.costUsd)),
  ];
  const nums = new Set([1, 2, 3]);
  table(
    'top-users',
    ['User', 'Calls', 'Blocked', 'Spend'],
    data.users.rows.map((r) => [r.user?.username ?? '—', ...measures(r)]),
    'No calls.',
    nums,
  );
  table(
    'top-projects',
    ['Project', 'Calls', 'Blocked', 'Spend'],
    data.projects.rows.map((r) => [r.project?.name ?? 'outside projects', ...measures(r)]),
    'No calls.',
    nums,
  );
  table(
    'top-tasks',
    ['Task', 'Calls', 'Blocked', 'Spend'],
    data.tasks.rows.map((r) => [r.task?.title ?? 'no task', ...measures(r)]),
    'No calls.',
    nums,
  );

  const onTasks = data.intents.rows.filter((r) => r.task);
  table(
    'intents',
    ['Task', 'Intent', 'Calls', 'Blocked', 'Allowed intents'],
    onTasks.map((r) => {
      const allowed = r.task!.allowedIntents;
      const inside = !allowed.length || (r.intent !== null && allowed.includes(r.intent));
      return [
        r.task!.title,
        `${r.intent ?? '—'}${inside ? '' : ' (outside)'}`,
        r.requests,
        r.blocked,
        allowed.length ? allowed.join(', ') : 'any',
      ];
    }),
    'No calls on tasks.',
    new Set([2, 3]),
  );
  for (const row of $('intents').querySelectorAll('tbody tr'))
    if (row.children[1]?.textContent?.endsWith('(outside)')) row.children[1].className = 'outside';

  // Blocked calls per day, as the report shows them to this viewer; the details of one's own latest (promptLogs shows each their own).
  const blocked = data.blockedByDay.rows.filter((r) => r.status === 'BLOCKED' && r.requests > 0);
  $('blocked').replaceChildren(
    el(
      'div',
      { class: 'figures' },
      el('div', { id: 'blocked-total' }, el('strong', {}, String(data.spend.totals.blocked)), 'blocked in 30 days'),
      el('div', {}, el('strong', {}, String(blocked.length)), 'days with blocks'),
    ),
    blocked.length
      ? el(
          'table',
          {},
          el(
            'tbody',
            {},
            ...blocked.map((r) =>
              el(
                'tr',
                { class: 'blocked-day' },
                el('td', {}, r.day ?? ''),
                el('td', { class: 'num' }, String(r.requests)),
              ),
            ),
          ),
        )
      : el('div', { class: 'empty' }, 'No blocked calls.'),
    ...(data.recentBlocked.edges.length
      ? [
          el('h3', {}, 'Your latest blocked calls'),
          el(
            'table',
            {},
            el(
              'tbody',
              {},
              ...data.recentBlocked.edges.map(({ node: n }) =>
                el(
                  'tr',
                  { class: 'blocked-call' },
                  el('td', {}, new Date(n.createdAt).toLocaleString()),
                  el('td', {}, n.intent ?? '—'),
                  el('td', {}, n.errorMessage ?? ''),
                ),
              ),
            ),
          ),
        ]
      : []),
  );
}

let refreshing: Promise<void> | null = null;
let again = false;
/** Asks the report again; events arriving meanwhile fold into one more refresh. */
async function refresh() {
  if (refreshing) {
    again = true;
    return refreshing;
  }
  refreshing = (async () => {
    do {
      again = false;
      const from = new Date(Date.parse(windowDays()[0]!)).toISOString();
      render(await http(UsagePageDocument, { from }));
      document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed ?? 0) + 1);
    } while (again);
  })().finally(() => (refreshing = null));
  return refreshing;
}

async function start() {
  $('signin').hidden = true;
  $('usage').hidden = false;
  await refresh();
  ws = connectLive();
  ws.subscribe(
    { query: UsageRecordedDocument.toString() },
    { next: () => void refresh().catch((e) => console.error(e)), error: (e) => console.error(e), complete: () => {} },
  );
}

onSignIn(start);
