import { describe, expect, it } from 'vitest';
import { eventMatches, wildcardPrefix } from '../../src/core/event-match.ts';

describe('eventMatches', () => {
  it('matches an exact name and nothing else', () => {
    expect(eventMatches('call.ended', 'call.ended')).toBe(true);
    expect(eventMatches('call.ended', 'call.ended.v2')).toBe(false);
    expect(eventMatches('call.ended', 'call.started')).toBe(false);
    expect(eventMatches('call.ended', 'call')).toBe(false);
  });

  it('matches everything with *', () => {
    expect(eventMatches('*', 'call.ended')).toBe(true);
    expect(eventMatches('*', 'sluice.delivery.failed')).toBe(true);
  });

  it('matches a prefix wildcard at any depth below the prefix', () => {
    expect(eventMatches('call.*', 'call.ended')).toBe(true);
    expect(eventMatches('call.*', 'call.a.b')).toBe(true);
    expect(eventMatches('sluice.*', 'sluice.webhook.disabled')).toBe(true);
    expect(eventMatches('sluice.delivery.*', 'sluice.delivery.failed')).toBe(true);
  });

  it('does not let a wildcard match a longer word or the bare prefix', () => {
    expect(eventMatches('call.*', 'callx.y')).toBe(false);
    expect(eventMatches('call.*', 'call')).toBe(false);
    expect(eventMatches('call.*', 'call.')).toBe(false);
    expect(eventMatches('call.*', 'signal.call.ended')).toBe(false);
  });

  it('treats a * anywhere but the end as a literal character', () => {
    expect(eventMatches('*.ended', 'call.ended')).toBe(false);
    expect(eventMatches('call*', 'call.ended')).toBe(false);
    expect(eventMatches('c*.*', 'call.ended')).toBe(false);
    expect(eventMatches('.*', 'call.ended')).toBe(false);
    expect(eventMatches('.*', '.ended')).toBe(false);
    expect(eventMatches('.*', '.*')).toBe(true);
    expect(eventMatches('a*.*', 'a*.b')).toBe(false);
    expect(eventMatches('a*.*', 'a*.*')).toBe(true);
  });
});

describe('wildcardPrefix', () => {
  it('returns the prefix with its dot for a wildcard, undefined otherwise', () => {
    expect(wildcardPrefix('call.*')).toBe('call.');
    expect(wildcardPrefix('sluice.delivery.*')).toBe('sluice.delivery.');
    expect(wildcardPrefix('call.ended')).toBeUndefined();
    expect(wildcardPrefix('*')).toBeUndefined();
    expect(wildcardPrefix('.*')).toBeUndefined();
    expect(wildcardPrefix('*.*')).toBeUndefined();
    expect(wildcardPrefix('a*.*')).toBeUndefined();
    expect(wildcardPrefix('a.*')).toBe('a.');
    expect(wildcardPrefix('call*')).toBeUndefined();
  });
});
