// CallTracker: the notices a call's end gives each side, and its clock (lib/calls.js).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CallTracker, RING_TIMEOUT_MS, formatDuration, noticeText } from '../lib/calls.js';

const ME = 'a'.repeat(64);
const BOB = 'b'.repeat(64);
const CAROL = 'c'.repeat(64);
const T0 = Date.parse('2026-11-25T18:00:00.000Z');
const iso = (ms) => new Date(ms).toISOString();

function ringing(session_id, caller, callee, createdMs, call_type = 'Video') {
  return { session_id, call_type, state: 'Ringing', caller, callee, created_at: iso(createdMs), answered_at: null };
}
const answered = (row, atMs) => ({ ...row, state: 'Active', answered_at: iso(atMs) });
const change = (op, fields) => ({ table: 'call_sessions', op, ...fields });

test('formatDuration: mm:ss under an hour, h:mm:ss above, never negative', () => {
  assert.equal(formatDuration(0), '00:00');
  assert.equal(formatDuration(192_400), '03:12');
  assert.equal(formatDuration(59_999), '00:59');
  assert.equal(formatDuration(3_723_000), '1:02:03');
  assert.equal(formatDuration(-5000), '00:00');
  assert.equal(formatDuration(undefined), '00:00');
});

test('caller: a ringing call removed early was declined, once the callee is still online', () => {
  const t = new CallTracker({ graceMs: 500 });
  const row = ringing('s1', ME, BOB, T0);
  assert.deepEqual(t.observe(change('insert', { row }), ME, T0 + 20), []);
  assert.deepEqual(t.observe(change('delete', { old: row }), ME, T0 + 4000), []);
  assert.equal(t.nextDueMs(T0 + 4000), 500);
  assert.deepEqual(t.poll(T0 + 4400, () => true), [], 'not due yet');
  const [notice] = t.poll(T0 + 4500, () => true);
  assert.equal(notice.kind, 'declined');
  assert.equal(notice.peer, BOB);
  assert.equal(notice.video, true);
  assert.deepEqual(noticeText(notice, () => 'Bob'), { title: 'Declined', detail: 'Bob declined your video call' });
  assert.deepEqual(t.poll(T0 + 9000, () => true), [], 'told once');
  assert.equal(t.nextDueMs(T0 + 9000), null);
});

test('caller: the callee leaving while it rings is not a decline', () => {
  const t = new CallTracker({ graceMs: 500 });
  const row = ringing('s1', ME, BOB, T0, 'Voice');
  t.observe(change('insert', { row }), ME, T0);
  t.observe(change('delete', { old: row }), ME, T0 + 2000);
  const [notice] = t.poll(T0 + 2600, (who) => who !== BOB);
  assert.equal(notice.kind, 'unavailable');
  assert.match(noticeText(notice, () => 'Bob').detail, /Bob left/);
});

test('caller: a call removed after the ringing timeout was not answered', () => {
  const t = new CallTracker();
  const row = ringing('s1', ME, BOB, T0);
  t.observe(change('insert', { row }), ME, T0 + 10);
  const [notice] = t.observe(change('delete', { old: row }), ME, T0 + RING_TIMEOUT_MS + 1200);
  assert.equal(notice.kind, 'no-answer');
  assert.equal(noticeText(notice, () => 'Bob').title, 'No answer');
  assert.equal(t.nextDueMs(T0 + 40_000), null, 'no second verdict pending');
});

test('the ringing time is measured on the local clock even when the clocks disagree', () => {
  // This machine's clock is 2 minutes ahead of the server's.
  const skew = 120_000;
  const t = new CallTracker();
  const row = ringing('s1', ME, BOB, T0);
  t.observe(change('insert', { row }), ME, T0 + skew + 15);
  assert.equal(t.offsetMs, skew + 15);
  // Removed 5 s later: a decline, not a timeout (without the offset it would look 125 s old).
  assert.deepEqual(t.observe(change('delete', { old: row }), ME, T0 + skew + 5000), []);
  assert.equal(t.poll(T0 + skew + 6000, () => true)[0].kind, 'declined');
});

test('what we cancel or decline ourselves gives no notice', () => {
  const t = new CallTracker({ graceMs: 0 });
  const out = ringing('s1', ME, BOB, T0);
  t.observe(change('insert', { row: out }), ME, T0);
  t.endedLocally('s1');
  assert.deepEqual(t.observe(change('delete', { old: out }), ME, T0 + 3000), []);
  assert.deepEqual(t.poll(T0 + 10_000, () => true), []);

  const incoming = ringing('s2', CAROL, ME, T0);
  t.observe(change('insert', { row: incoming }), ME, T0);
  t.endedLocally('s2');
  assert.deepEqual(t.observe(change('delete', { old: incoming }), ME, T0 + 3000), []);
});

test('callee: a call the caller gave up on (or that timed out) is a missed call', () => {
  const t = new CallTracker();
  const row = ringing('s1', BOB, ME, T0, 'Voice');
  t.observe(change('insert', { row }), ME, T0);
  const [notice] = t.observe(change('delete', { old: row }), ME, T0 + 8000);
  assert.equal(notice.kind, 'missed');
  assert.deepEqual(noticeText(notice, () => 'Bob'), { title: 'Missed call', detail: 'Voice call from Bob' });
});

test('an active call that ends tells both sides its duration from answered_at', () => {
  for (const me of [ME, BOB]) {
    const t = new CallTracker();
    const row = ringing('s1', ME, BOB, T0);
    t.observe(change('insert', { row }), me, T0 + 30);
    const live = answered(row, T0 + 4000);
    t.observe(change('update', { row: live, old: row }), me, T0 + 4030);
    assert.equal(t.elapsedMs(live, T0 + 10_030), 6000);
    if (me === ME) t.endedLocally('s1'); // the one who hangs up is told too
    const [notice] = t.observe(change('delete', { old: live }), me, T0 + 4030 + 192_000);
    assert.equal(notice.kind, 'ended');
    assert.equal(notice.durationMs, 192_000);
    assert.equal(noticeText(notice, () => 'X').title, 'Call ended · 03:12');
  }
});

test('a call known only from the snapshot still gets its duration from answered_at', () => {
  const t = new CallTracker();
  const live = answered(ringing('s1', BOB, ME, T0), T0 + 1000);
  t.observe(change('snapshot', {}), ME, T0 + 50_000);
  const [notice] = t.observe(change('delete', { old: live }), ME, T0 + 61_000);
  assert.equal(notice.durationMs, 60_000);
});

test('losing our connection ends the active call with a note; ringing calls just go', () => {
  const t = new CallTracker();
  const live = answered(ringing('s1', ME, BOB, T0), T0);
  const ring = ringing('s2', CAROL, ME, T0);
  const notices = t.observe(change('clear', { rows: [live, ring] }), ME, T0 + 65_000);
  assert.equal(notices.length, 1);
  assert.equal(notices[0].reason, 'disconnected');
  assert.deepEqual(noticeText(notices[0], () => 'Bob'), { title: 'Call ended · 01:05', detail: 'with Bob · connection lost' });
});

test("other people's calls, other tables and pg-relay's empty old row are ignored", () => {
  const t = new CallTracker({ graceMs: 0 });
  const theirs = ringing('s9', BOB, CAROL, T0);
  t.observe(change('insert', { row: theirs }), ME, T0);
  assert.deepEqual(t.observe(change('delete', { old: theirs }), ME, T0 + 1000), []);
  assert.deepEqual(t.observe(change('delete', { old: {} }), ME, T0 + 1000), []);
  assert.deepEqual(t.observe({ table: 'users', op: 'delete', old: { identity: BOB } }, ME, T0), []);
  assert.deepEqual(t.observe(change('delete', { old: ringing('s1', ME, BOB, T0) }), null, T0), []);
  assert.deepEqual(t.poll(T0 + 5000, () => true), []);
});
