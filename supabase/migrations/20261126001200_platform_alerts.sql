-- The outbox's channels: email and SMS (000300), stripe for refunds still to
-- submit (returns), and slack for platform alerts, delivered by
-- dispatch-notifications to the platform's Slack webhook (SLACK_WEBHOOK_URL).
-- The first alert is the paid-message quota alert (see claim_notifications).
-- One list, defined once here, so re-applying an earlier migration never
-- narrows it under existing rows.
alter table public.notification_outbox drop constraint if exists notification_outbox_channel_check;
alter table public.notification_outbox add constraint notification_outbox_channel_check
  check (channel in ('email', 'sms', 'stripe', 'slack'));
