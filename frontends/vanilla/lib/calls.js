/**
 * What happened to a call, told to the people in it: the notices "Declined", "No answer",
 * "Missed call" and "Call ended · 03:12", and the call clock (protocol.md §6).
 *
 * Owns: following the `call_sessions` changes of RelayClient's `state` events and turning the
 * deletion of one of our calls into a notice. A delete carries the whole old row (pgcall sends it;
 * pg-relay sent `{}` and then nobody learns anything), so its last state tells a refused or
 * unanswered call (still Ringing) from a finished one (Active). For the caller, a ringing call
 * removed after about RING_TIMEOUT_MS was not answered (the server gives up after 30 s); removed
 * earlier, the callee declined it — or left, which the users table tells a moment later, so that
 * verdict waits `graceMs`. The callee sees "Missed call" when the caller gave up. Calls we ended
 * ourselves (reported with endedLocally) give no "Declined"/"Missed" notice, only "Call ended".
 *
 * Durations use the server's timestamps (answered_at, created_at) moved onto the local clock by
 * an estimated offset: the smallest (local receive time − server time) seen on live inserts and
 * answers, which is the clock difference plus the shortest delivery delay. Both sides therefore
 * show about the same duration even when their clocks disagree.
 *
 * Pure: the caller passes the time (ms) in; no timers, no DOM. Does not own the state tables
 * (state.js) or where the notices are shown.
 */

import { isActive, isVideoCall } from './state.js';

export const RING_TIMEOUT_MS = 30000; // pgcall removes a call nobody answers after 30 s
const RING_TIMEOUT_SLACK_MS = 1500; // the server's reaper runs every 2 s; clocks are not exact
const OFFSET_SAMPLES = 16;

/** "03:12" below an hour, "1:02:03" above. */
export function formatDuration(ms) {
  const total = Math.max(0, Math.floor((Number(ms) || 0) / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const two = (n) => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${two(m)}:${two(s)}` : `${two(m)}:${two(s)}`;
}

/** Title and detail line of a notice, given a function naming an identity. */
export function noticeText(notice, nameOf) {
  const name = nameOf(notice.peer);
  const kind = notice.video ? 'video call' : 'voice call';
  switch (notice.kind) {
    case 'declined':
      return { title: 'Declined', detail: `${name} declined your ${kind}` };
    case 'no-answer':
      return { title: 'No answer', detail: `${name} did not answer` };
    case 'unavailable':
      return { title: 'Unavailable', detail: `${name} left before answering` };
    case 'missed':
      return { title: 'Missed call', detail: `${capitalise(kind)} from ${name}` };
    case 'ended':
      return {
        title: `Call ended · ${formatDuration(notice.durationMs)}`,
        detail: notice.reason === 'disconnected' ? `with ${name} · connection lost` : `with ${name}`,
      };
    default:
      return { title: notice.kind, detail: name };
  }
}

function capitalise(s) {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

export class CallTracker {
  constructor({ ringTimeoutMs = RING_TIMEOUT_MS, graceMs = 600 } = {}) {
    this.ringTimeoutMs = ringTimeoutMs;
    this.graceMs = graceMs;
    this._seen = new Map(); // session_id -> {firstSeenMs, activeSinceMs}
    this._endedLocally = new Set();
    this._offsets = []; // recent (local − server) samples, ms
    this._pending = []; // {dueMs, notice} waiting for the users table to settle
  }

  /** Estimated local clock − server clock (plus the shortest delivery delay), ms. */
  get offsetMs() {
    return this._offsets.length ? Math.min(...this._offsets) : 0;
  }

  /** We declined, cancelled or hung up this call ourselves. */
  endedLocally(sessionId) {
    this._endedLocally.add(String(sessionId));
  }

  /**
   * Feed one `state` event detail ({table, op, row, old, rows}); `me` is our identity.
   * Returns the notices due at once (more may come from poll()).
   */
  observe(change, me, nowMs) {
    if (!change || change.table !== 'call_sessions' || !me) return [];
    switch (change.op) {
      case 'snapshot':
        return [];
      case 'insert':
      case 'update':
        this._upsert(change, me, nowMs);
        return [];
      case 'delete':
        return this._gone(change.old, me, nowMs, null);
      case 'clear':
        return (change.rows ?? []).flatMap((row) => this._gone(row, me, nowMs, 'disconnected'));
      default:
        return [];
    }
  }

  /**
   * Notices whose verdict waited for the users table; `isOnline(identity)` says whether that
   * user is still connected now.
   */
  poll(nowMs, isOnline) {
    const due = this._pending.filter((p) => p.dueMs <= nowMs);
    if (!due.length) return [];
    this._pending = this._pending.filter((p) => p.dueMs > nowMs);
    return due.map(({ notice }) => (isOnline(notice.peer) ? notice : { ...notice, kind: 'unavailable' }));
  }

  /** Time until the next pending verdict, or null; lets the caller schedule one poll(). */
  nextDueMs(nowMs) {
    if (!this._pending.length) return null;
    return Math.max(0, Math.min(...this._pending.map((p) => p.dueMs)) - nowMs);
  }

  /** How long an active call has lasted, for its clock. */
  elapsedMs(call, nowMs) {
    const start = this._startMs(call, 'active');
    return start === null ? 0 : Math.max(0, nowMs - start);
  }

  _upsert({ op, row, old }, me, nowMs) {
    if (!row || row.session_id === undefined || row.session_id === null) return;
    if (op === 'insert') this._sample(nowMs, row.created_at);
    if (row.caller !== me && row.callee !== me) return; // pg-relay shows everyone's calls
    const id = String(row.session_id);
    let seen = this._seen.get(id);
    if (!seen) {
      seen = { firstSeenMs: nowMs, activeSinceMs: null };
      this._seen.set(id, seen);
    }
    if (isActive(row) && seen.activeSinceMs === null) {
      seen.activeSinceMs = nowMs;
      // The update that answered the call: answered_at was set just now, on the server's clock.
      if (op === 'update' && !(old && isActive(old))) this._sample(nowMs, row.answered_at);
    }
  }

  _sample(nowMs, serverIso) {
    const server = Date.parse(serverIso);
    if (Number.isNaN(server)) return;
    this._offsets.push(nowMs - server);
    if (this._offsets.length > OFFSET_SAMPLES) this._offsets.shift();
  }

  /** Local time the call started ringing ('created') or was answered ('active'), or null. */
  _startMs(call, which) {
    const seen = this._seen.get(String(call.session_id));
    const server = Date.parse(which === 'active' ? call.answered_at : call.created_at);
    if (!Number.isNaN(server)) return server + this.offsetMs;
    if (which === 'active') return seen?.activeSinceMs ?? null;
    return seen?.firstSeenMs ?? null;
  }

  _gone(old, me, nowMs, reason) {
    if (!old || typeof old !== 'object' || old.session_id === undefined || old.session_id === null) return [];
    const id = String(old.session_id);
    const local = this._endedLocally.has(id);
    this._endedLocally.delete(id);
    this._seen.delete(id);
    if (old.caller !== me && old.callee !== me) return [];
    const peer = old.caller === me ? old.callee : old.caller;
    const base = { sessionId: id, peer, video: isVideoCall(old) };
    if (isActive(old)) {
      const start = this._startMs(old, 'active');
      const durationMs = start === null ? 0 : Math.max(0, nowMs - start);
      return [{ ...base, kind: 'ended', durationMs, reason }];
    }
    if (local || reason) return []; // we declined or cancelled it; or our connection dropped
    if (old.callee === me) return [{ ...base, kind: 'missed' }];
    const start = this._startMs(old, 'created');
    const ringingMs = start === null ? 0 : nowMs - start;
    if (ringingMs >= this.ringTimeoutMs - RING_TIMEOUT_SLACK_MS) return [{ ...base, kind: 'no-answer' }];
    this._pending.push({ dueMs: nowMs + this.graceMs, notice: { ...base, kind: 'declined' } });
    return [];
  }
}
