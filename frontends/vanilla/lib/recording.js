/**
 * Recording on the client (docs/recording.md): what the page says it can do, the recordings going
 * on in its call or room, what to tell the user about them, and how a listed recording reads.
 *
 * Owns: the `hello` message (FEATURES: this client shows the recording indicator, and speaks
 * rooms); RecordingState — the `recordings` rows the server sends a participant (a snapshot at
 * connect while one is going on, then inserts, updates and deletes), keeping the ones going on,
 * so a call or a room knows whether it is being recorded; recordingNotice() — the notice a change
 * is worth (someone else started recording, I joined a room being recorded, someone stopped it
 * while I am still in the call or room); the Record button's request (start or stop); the rows of
 * the recordings list (date, kind, people, duration, size; who may delete it) and the URL that
 * downloads a recording as MP4.
 * Pure: no I/O, no DOM, no timers. Does not own the socket (client.js) or replay (replay.js,
 * replayer.js).
 */

/** What pgcall's frontends tell the server they can do, on every (re)connect. */
export const FEATURES = Object.freeze(['recording', 'rooms']);

export function helloMessage(features = FEATURES) {
  return { type: 'hello', features: [...features] };
}

export class RecordingState {
  constructor() {
    this.clear();
  }

  /** Forget everything (the connection dropped: a new one gets a new snapshot). */
  clear() {
    this.active = new Map(); // recording_id -> row, for recordings not stopped
  }

  /** The recording going on in call `sessionId`, or null. */
  forCall(sessionId) {
    if (!sessionId) return null;
    for (const r of this.active.values()) if (r.session_id === sessionId) return r;
    return null;
  }

  /** The recording going on in room `roomId`, or null. */
  forRoom(roomId) {
    if (!roomId) return null;
    for (const r of this.active.values()) if (r.room_id === roomId) return r;
    return null;
  }

  /** Apply one control message; returns 'recordings' if it was about recordings, else null. */
  apply(msg) {
    if (msg?.table !== 'recordings') return null;
    switch (msg.type) {
      case 'snapshot':
        this.active = new Map();
        for (const row of Array.isArray(msg.rows) ? msg.rows : []) this._upsert(row);
        return 'recordings';
      case 'insert':
      case 'update':
        return this._upsert(msg.row) ? 'recordings' : null;
      case 'delete':
        if (!isRow(msg.old)) return null;
        this.active.delete(msg.old.recording_id);
        return 'recordings';
      default:
        return null;
    }
  }

  _upsert(row) {
    if (!isRow(row)) return false;
    if (row.stopped_at) this.active.delete(row.recording_id);
    else this.active.set(row.recording_id, { ...row, participants: list(row.participants) });
    return true;
  }
}

function isRow(row) {
  return Boolean(row) && typeof row === 'object' && typeof row.recording_id === 'string';
}

function list(value) {
  return Array.isArray(value) ? value.filter((v) => typeof v === 'string') : [];
}

/**
 * The notice a `recordings` change is worth to `me`, or null: {kind, by, target, recordingId}.
 * `kind`: 'recording-started' (someone else started it), 'recording-joined' (I joined a room
 * being recorded), 'recording-stopped' (it stopped while I am still in the call or room: `inCall`
 * tells, given the row). What I start or stop myself (`mine`: recording ids, or targets, I asked
 * to stop) needs no notice: the button and the indicator say it.
 */
export function recordingNotice(change, me, { inCall = () => true, stoppedByMe = () => false } = {}) {
  const { op, row, old } = change ?? {};
  if (!isRow(row) || !me) return null;
  const target = row.room_id ? 'room' : 'call';
  const base = { by: row.started_by, target, recordingId: row.recording_id };
  if (!list(row.participants).includes(me)) return null;
  if (row.stopped_at) {
    const wasGoing = op === 'update' && !(old && old.stopped_at);
    if (!wasGoing || stoppedByMe(row) || !inCall(row)) return null;
    return { ...base, kind: 'recording-stopped' };
  }
  if (op === 'insert') return row.started_by === me ? null : { ...base, kind: 'recording-started' };
  if (op === 'update' && old && Array.isArray(old.participants) && !old.participants.includes(me)) {
    return { ...base, kind: 'recording-joined' };
  }
  return null;
}

/** Title and detail of a recording notice, given a function naming an identity. */
export function recordingNoticeText(notice, nameOf) {
  const what = notice.target === 'room' ? 'this room' : 'this call';
  switch (notice.kind) {
    case 'recording-started':
      return { title: 'Recording started', detail: `${nameOf(notice.by)} is recording ${what}` };
    case 'recording-joined':
      return { title: 'Being recorded', detail: `${nameOf(notice.by)} is recording ${what}` };
    case 'recording-stopped':
      return { title: 'Recording stopped', detail: `${what.charAt(0).toUpperCase()}${what.slice(1)} is no longer recorded` };
    default:
      return { title: notice.kind, detail: '' };
  }
}

/** The request the Record button sends: stop the recording going on, else start one. */
export function recordRequest(target, recording) {
  const where = target.roomId ? { room_id: target.roomId } : { session_id: target.sessionId };
  return { type: recording ? 'stop_recording' : 'start_recording', ...where };
}

/** "2.4 MB", "812 KB", "0 B". */
export function formatBytes(n) {
  const bytes = Math.max(0, Number(n) || 0);
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value >= 10 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}

/** "0:07", "12:03", "1:02:03" for a replay clock. */
export function formatClock(ms) {
  const total = Math.max(0, Math.floor((Number(ms) || 0) / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/**
 * How one entry of `list_recordings` reads in the list: {id, when (a Date or null), kind ('Call'
 * or 'Room'), people (names, me as "you"), duration (text; "recording…" while it goes on),
 * size ("—" while unknown), canDelete (I started it), going (not stopped yet)}.
 */
export function describeRecording(rec, me, nameOf) {
  const when = new Date(rec.started_at);
  const people = list(rec.participants).map((p) => (p === me ? 'you' : nameOf(p)));
  const going = !rec.stopped_at;
  return {
    id: rec.recording_id,
    when: Number.isNaN(when.getTime()) ? null : when,
    kind: rec.kind === 'room' || rec.room_id ? 'Room' : 'Call',
    people,
    duration: going || rec.duration_ms === null || rec.duration_ms === undefined ? 'recording…' : formatClock(rec.duration_ms),
    // The server counts the frames already moved out of the live tables: none, a moment after
    // the end, is not an empty recording.
    size: Number(rec.bytes) > 0 ? formatBytes(rec.bytes) : '—',
    canDelete: rec.started_by === me,
    going,
  };
}

/**
 * The URL that downloads recording `recordingId` as MP4: `/recordings/<id>.mp4?token=<token>` on
 * the HTTP origin of the relay (`relayUrl`, ws:// or wss://), with the identity's token.
 */
export function downloadUrl(relayUrl, recordingId, token) {
  const url = new URL(relayUrl);
  url.protocol = url.protocol === 'wss:' ? 'https:' : url.protocol === 'ws:' ? 'http:' : url.protocol;
  url.pathname = `/recordings/${encodeURIComponent(recordingId)}.mp4`;
  url.search = '';
  url.hash = '';
  if (token) url.searchParams.set('token', token);
  return url.toString();
}
