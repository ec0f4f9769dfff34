/**
 * The live dashboard: sign in over HTTP, then everything else live over graphql-ws.
 * Plain DOM, no framework; the operations are the typed documents codegen generates
 * from dashboard/operations/*.graphql.
 */
import type { Client } from 'graphql-ws';

import {
  DashApprovalDecidedDocument,
  DashApprovalRequestedDocument,
  DashApproveDocument,
  DashAwaitingDocument,
  DashContainerStatusChangedDocument,
  DashCostAlertTriggeredDocument,
  DashNotificationReceivedDocument,
  DashRejectDocument,
  DashSnapshotDocument,
  type DashApprovalFragment,
  type DashContainerFragment,
  type DashCostAlertFragment,
  type DashNotificationFragment,
} from '../generated/graphql.js';
import { $, connectLive, el, http, onSignIn, type Doc } from './session.js';

let ws: Client | undefined;
const state = {
  approvals: new Map<string, DashApprovalFragment>(),
  alerts: new Map<string, DashCostAlertFragment>(),
  containers: new Map<string, DashContainerFragment>(),
  notifications: new Map<string, DashNotificationFragment>(),
};

/** One subscription over the shared socket. */
function live<R>(doc: Doc<R, Record<string, never>>, onData: (data: R) => void) {
  ws!.subscribe<R>(
    { query: doc.toString() },
    { next: (r) => r.data && onData(r.data as R), error: (e) => console.error(e), complete: () => {} },
  );
}

const when = (iso: string) => new Date(iso).toLocaleString();

function renderList<T>(id: string, items: T[], card: (item: T) => HTMLElement, empty: string) {
  const box = $(id);
  box.replaceChildren(...(items.length ? items.map(card) : [el('div', { class: 'empty' }, empty)]));
}

function render() {
  const newest = <T extends { createdAt: string }>(m: Map<string, T>) =>
    [...m.values()].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  renderList(
    'approvals',
    newest(state.approvals),
    (a) => {
      const approve = el('button', { class: 'approve' }, 'Approve');
      const reject = el('button', { class: 'reject' }, 'Reject');
      approve.onclick = () => decide(a.id, true);
      reject.onclick = () => decide(a.id, false);
      return el(
        'div',
        { class: 'card approval', 'data-id': a.id, 'data-status': a.status },
        el('strong', {}, a.actionType),
        el(
          'div',
          { class: 'meta' },
          `${a.project?.name ?? 'no project'}${a.task ? ` · ${a.task.title}` : ''} · by ${a.requestedBy?.username ?? a.requestedByActor ?? 'system'} · ${when(a.createdAt)}`,
        ),
        ...(a.notes ? [el('div', {}, a.notes)] : []),
        approve,
        reject,
      );
    },
    'Nothing waits for you.',
  );
  renderList(
    'alerts',
    newest(state.alerts),
    (c) =>
      el(
        'div',
        { class: 'card alert', 'data-id': c.id },
        el('strong', {}, `${c.alertType.replace('_', ' ')}%`),
        el('div', { class: 'meta' }, `$${c.spentUsd} of $${c.limitUsd} · ${when(c.createdAt)}`),
      ),
    'No cost alerts.',
  );
  renderList(
    'containers',
    [...state.containers.values()].sort((a, b) => a.name.localeCompare(b.name)),
    (c) =>
      el(
        'div',
        { class: 'card container', 'data-id': c.id },
        el('strong', {}, c.name),
        ' ',
        el('span', { class: `badge ${c.status}` }, c.status),
        el('div', { class: 'meta' }, `${c.project.name}${c.statusMessage ? ` · ${c.statusMessage}` : ''}`),
      ),
    'No containers.',
  );
  renderList(
    'notifications',
    newest(state.notifications).slice(0, 20),
    (n) =>
      el(
        'div',
        { class: 'card notification', 'data-id': n.id },
        el('strong', {}, n.title),
        ...(n.message ? [el('div', {}, n.message)] : []),
        el('div', { class: 'meta' }, `${n.type} · ${when(n.createdAt)}`),
      ),
    'No notifications.',
  );
}

const fill = <T extends { id: string }>(m: Map<string, T>, edges: { node: T }[]) => {
  m.clear();
  for (const e of edges) m.set(e.node.id, e.node);
};

/** Approvals waiting for me: asked again on every approval event (the server knows who may decide). */
async function refreshApprovals() {
  fill(state.approvals, (await http(DashAwaitingDocument)).approvals.edges);
  render();
}

async function decide(id: string, approve: boolean) {
  try {
    const a = approve
      ? (await http(DashApproveDocument, { id })).approveApproval
      : (await http(DashRejectDocument, { id })).rejectApproval;
    state.approvals.delete(a.id);
    render();
  } catch (err) {
    alert((err as Error).message);
    await refreshApprovals();
  }
}

async function start() {
  const snap = await http(DashSnapshotDocument);
  fill(state.approvals, snap.approvals.edges);
  fill(state.alerts, snap.costAlerts.edges);
  fill(state.containers, snap.containers.edges);
  fill(state.notifications, snap.notifications.edges);
  $('signin').hidden = true;
  $('board').hidden = false;
  render();

  ws = connectLive();
  live(DashApprovalRequestedDocument, () => void refreshApprovals());
  live(DashApprovalDecidedDocument, (d) => {
    if (state.approvals.delete(d.approvalDecided.id)) render();
  });
  live(DashCostAlertTriggeredDocument, (d) => {
    state.alerts.set(d.costAlertTriggered.id, d.costAlertTriggered);
    render();
  });
  live(DashContainerStatusChangedDocument, (d) => {
    state.containers.set(d.containerStatusChanged.id, d.containerStatusChanged);
    render();
  });
  live(DashNotificationReceivedDocument, (d) => {
    state.notifications.set(d.notificationReceived.id, d.notificationReceived);
    render();
  });
}

onSignIn(start);
