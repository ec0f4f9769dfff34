import { Webhook as StandardWebhook } from 'standardwebhooks';

import { WebhookFormat } from './webhook.entity.js';

/** What a webhook delivery tells of: a notification and whom it was for. */
export interface WebhookNotification {
  /** The notification as the recipient's inbox shows it (the primary one). */
  notificationId: string;
  type: string;
  priority: string;
  title: string;
  message: string | null;
  data: unknown;
  createdAt: Date;
  recipient: { id: string; email: string; name: string | null };
}

/** The body in the webhook's format: Standard Webhooks' `{ type, timestamp, data }`, or a Slack `{ text, blocks }` message. */
export function webhookBody(format: WebhookFormat, n: WebhookNotification): string {
  if (format === WebhookFormat.SLACK) return JSON.stringify(slackMessage(n));
  return JSON.stringify({
    type: `notification.${n.type.toLowerCase()}`,
    timestamp: n.createdAt.toISOString(),
    data: n,
  });
}

/** Slack's mrkdwn needs &, < and > escaped. */
const escapeMrkdwn = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function slackMessage(n: WebhookNotification) {
  const title = escapeMrkdwn(n.title);
  const who = escapeMrkdwn(n.recipient.name ? `${n.recipient.name} <${n.recipient.email}>` : n.recipient.email);
  const text = n.message ? `*${title}*\n${escapeMrkdwn(n.message)}` : `*${title}*`;
  return {
    // The fallback for clients that show no blocks (and for notifications on phones).
    text: n.message ? `${n.title}: ${n.message}` : n.title,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text } },
      { type: 'context', elements: [{ type: 'mrkdwn', text: `${n.type} · ${n.priority} · for ${who}` }] },
    ],
  };
}

/**
 * Standard Webhooks headers for one attempt: `webhook-id` stays the same across retries
 * (receivers deduplicate on it), the timestamp and signature are the attempt's own.
 */
export function signedHeaders(
  secret: string,
  messageId: string,
  body: string,
  at = new Date(),
): Record<string, string> {
  return {
    'webhook-id': messageId,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': new StandardWebhook(secret).sign(messageId, at, body),
  };
}
