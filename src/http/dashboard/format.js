// Display helpers: times, statuses and a tiny event-pattern matcher (mirrors core/event-match).

export function formatTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function timeAgo(iso, now = Date.now()) {
  if (!iso) return 'never';
  const seconds = Math.round((now - new Date(iso).getTime()) / 1000);
  if (seconds < 0) return `in ${formatSpan(-seconds)}`;
  if (seconds < 5) return 'just now';
  return `${formatSpan(seconds)} ago`;
}

function formatSpan(seconds) {
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400)} d`;
}

/** Each delivery status with an icon and a word, so status never rests on colour alone. */
export const STATUS = {
  delivered: { icon: '✓', label: 'Delivered' },
  failed: { icon: '✕', label: 'Failed' },
  pending: { icon: '◷', label: 'Pending' },
  // A pending delivery whose subscription is disabled (the API says `paused: true`).
  paused: { icon: '⏸', label: 'Paused' },
  delivering: { icon: '↻', label: 'Delivering' },
  cancelled: { icon: '⊘', label: 'Cancelled' },
};

export const OUTCOME = {
  success: { icon: '✓', label: 'Success', status: 'delivered' },
  retry: { icon: '↻', label: 'Will retry', status: 'pending' },
  fail: { icon: '✕', label: 'Failed', status: 'failed' },
  gone: { icon: '✕', label: 'Gone (410)', status: 'failed' },
  disabled: { icon: '⊘', label: 'Subscription disabled', status: 'cancelled' },
};

export function eventMatches(pattern, name) {
  if (pattern === '*') return true;
  if (pattern.endsWith('.*')) return name.startsWith(pattern.slice(0, -1));
  return pattern === name;
}

export function pretty(value) {
  return JSON.stringify(value, null, 2);
}

/** A body as sent: pretty-printed when it is JSON, else as is. */
export function prettyBody(text) {
  if (text === null || text === undefined) return '';
  try {
    return pretty(JSON.parse(text));
  } catch {
    return text;
  }
}

export function describeRetry(retry) {
  if (!retry) return 'Default curve (10 attempts over about 24 h)';
  if (retry.schedule) return `Schedule: ${retry.schedule.join(', ')}`;
  if (retry.max_attempts) return `${retry.max_attempts} attempts on the default curve`;
  return 'Default curve';
}
