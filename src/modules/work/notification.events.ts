/** A notification reached its user on the WEB channel (live, or when its scheduledFor came). */
export const NOTIFICATION_RECEIVED = 'work.notificationReceived';

export interface NotificationReceived {
  id: string;
  userId: string;
}
