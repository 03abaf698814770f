/**
 * pagerDutyDedupKey as a JSONata expression on the envelope (before the hash of keys over 255
 * characters, which changes nothing about which events share a key): the connector's default
 * ordering key. test/connectors/pagerduty.test.ts checks that the two agree.
 */
export const PAGERDUTY_DEDUP_KEY_EXPRESSION = `(
  $text := function($v) { $type($v) = "string" and $v != "" };
  $conversation := data.conversation_id;
  $part := event = "signal.resolved"
    ? ($text($conversation) and $text(data.signal_type) ? $conversation & "-" & data.signal_type)
    : $substring(event, 0, 7) = "signal." and $text($conversation) ? $conversation & "-" & $substring(event, 7)
    : event = "sluice.delivery.failed" and $text(data.subscription_id) ? data.subscription_id & "-delivery_failed"
    : event = "sluice.webhook.disabled" and $text(data.subscription_id) ? data.subscription_id & "-webhook_disabled";
  "sluice-" & ($exists($part) ? $part : id)
)`;
