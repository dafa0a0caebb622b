/**
 * The client-side copy of the relay's state tables (protocol.md §4.2–§4.5, §8.1).
 *
 * Owns: applying snapshot / insert / update / delete messages to `users` (Map by identity),
 * `messages` (array sorted ascending by BigInt(id), last 250 kept), `calls` (Map by session_id)
 * and `settings` (the media_settings row with numbers), plus the call helpers derived from them;
 * `names`, the last nickname seen for every identity, kept after the user leaves so chat can
 * still name them (bounded, most recently seen last).
 * Deletes use the primary key found in `old` (§4.5). Pure: no I/O, no DOM, no timers.
 * Does not own: the socket, the token or reconnecting (client.js).
 */

export const CHAT_LIMIT = 250;
export const NAMES_LIMIT = 500; // remembered nicknames of people who may have left

/** pgcall's defaults (protocol.md intro); used for columns a server does not have (R variant). */
export const DEFAULT_SETTINGS = Object.freeze({
  id: 1,
  audio_target_sample_rate: 16000,
  audio_frame_ms: 50,
  audio_max_frame_bytes: 64000,
  audio_talking_rms_threshold: 0.02,
  video_width: 640,
  video_height: 360,
  video_fps: 15,
  video_jpeg_quality: 0.65,
  video_max_frame_bytes: 512000,
});

/** Turn a media_settings row into numbers; throws Error naming the first bad field. */
export function parseSettings(row) {
  const out = {};
  for (const key of Object.keys(DEFAULT_SETTINGS)) {
    if (row[key] === undefined || row[key] === null) {
      out[key] = DEFAULT_SETTINGS[key];
      continue;
    }
    const value = Number(row[key]);
    if (!Number.isFinite(value)) {
      throw new Error(`media_settings.${key} is not a valid number: ${row[key]}`);
    }
    out[key] = value;
  }
  if (out.id !== 1) throw new Error(`media_settings row has id ${row.id}, expected 1`);
  return out;
}

export class RelayState {
  constructor() {
    this.identity = null;
    this.users = new Map();
    this.messages = [];
    this.calls = new Map();
    this.settings = null;
    this.settingsError = null;
    this.names = new Map(); // identity -> last non-empty nickname, oldest first
    this.namesChanged = false; // set when `names` changed; the owner clears it after saving
  }

  /** The user's nickname now, else the last one seen for them, else null. */
  nicknameOf(identity) {
    const nick = this.users.get(identity)?.nickname;
    return nick || this.names.get(identity) || null;
  }

  /** Learn (or refresh) a nickname; keeps the NAMES_LIMIT most recently seen. */
  rememberName(identity, nickname) {
    if (typeof identity !== 'string' || typeof nickname !== 'string' || !nickname) return;
    if (this.names.get(identity) === nickname) return;
    this.names.delete(identity);
    this.names.set(identity, nickname);
    while (this.names.size > NAMES_LIMIT) this.names.delete(this.names.keys().next().value);
    this.namesChanged = true;
  }

  /** Apply one control message; returns the table it changed, or null if it was not state. */
  apply(msg) {
    const table = msg.table;
    switch (msg.type) {
      case 'snapshot':
        return this._snapshot(table, Array.isArray(msg.rows) ? msg.rows : []) ? table : null;
      case 'insert':
      case 'update':
        // Both are upserts: an update for a row we never saw still describes its current value.
        return msg.row && typeof msg.row === 'object' && this._upsert(table, msg.row) ? table : null;
      case 'delete':
        return msg.old && typeof msg.old === 'object' && this._delete(table, msg.old) ? table : null;
      default:
        return null;
    }
  }

  /** Forget what the server deletes when we disconnect (§6: our calls); returns their rows. */
  clearCalls() {
    const rows = [...this.calls.values()];
    this.calls.clear();
    return rows;
  }

  incomingCall() {
    return this._findCall((c) => c.callee === this.identity && !isActive(c));
  }

  outgoingCall() {
    return this._findCall((c) => c.caller === this.identity && !isActive(c));
  }

  activeCall() {
    return this._findCall(
      (c) => (c.caller === this.identity || c.callee === this.identity) && isActive(c),
    );
  }

  /** The other participant of a call, from our point of view. */
  peerOf(call) {
    if (!call) return null;
    return call.caller === this.identity ? call.callee : call.caller;
  }

  /** The call (ringing or active) a user takes part in, if any: "busy" in the user list. */
  callOf(identity) {
    return this._findCall((c) => c.caller === identity || c.callee === identity);
  }

  _findCall(pred) {
    if (this.identity === null) return null;
    for (const call of this.calls.values()) if (pred(call)) return call;
    return null;
  }

  _snapshot(table, rows) {
    switch (table) {
      case 'users':
        this.users = new Map();
        for (const row of rows) this._upsert(table, row);
        return true;
      case 'chat_messages':
        this.messages = [];
        for (const row of rows) this._upsert(table, row);
        return true;
      case 'call_sessions':
        this.calls = new Map();
        for (const row of rows) this._upsert(table, row);
        return true;
      case 'media_settings': {
        const row = rows.find((r) => r && Number(r.id) === 1);
        if (!row) {
          this.settings = null;
          this.settingsError = 'media_settings singleton (id=1) not found';
          return true;
        }
        return this._upsert(table, row);
      }
      default:
        return false;
    }
  }

  _upsert(table, row) {
    switch (table) {
      case 'users': {
        if (typeof row.identity !== 'string') return false;
        const nickname = typeof row.nickname === 'string' ? row.nickname.trim() : '';
        this.users.set(row.identity, { ...row, nickname });
        this.rememberName(row.identity, nickname);
        return true;
      }
      case 'chat_messages': {
        const key = bigId(row.id);
        if (key === null) return false; // §8.1: an id is required and must be an integer
        const message = { ...row, id: String(row.id), key };
        const at = this.messages.findIndex((m) => m.key === key);
        if (at >= 0) this.messages[at] = message;
        else this.messages.push(message);
        this.messages.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
        if (this.messages.length > CHAT_LIMIT) this.messages.splice(0, this.messages.length - CHAT_LIMIT);
        return true;
      }
      case 'call_sessions':
        if (row.session_id === undefined || row.session_id === null) return false;
        this.calls.set(String(row.session_id), { ...row, session_id: String(row.session_id) });
        return true;
      case 'media_settings':
        if (Number(row.id) !== 1) return false;
        try {
          this.settings = parseSettings(row);
          this.settingsError = null;
        } catch (err) {
          this.settings = null;
          this.settingsError = err.message;
        }
        return true;
      default:
        return false;
    }
  }

  _delete(table, old) {
    switch (table) {
      case 'users':
        return this.users.delete(old.identity);
      case 'chat_messages': {
        const key = bigId(old.id);
        const before = this.messages.length;
        this.messages = this.messages.filter((m) => m.key !== key);
        return this.messages.length !== before;
      }
      case 'call_sessions':
        return this.calls.delete(String(old.session_id));
      case 'media_settings':
        if (Number(old.id) !== 1) return false;
        this.settings = null;
        this.settingsError = 'media_settings singleton (id=1) was deleted';
        return true;
      default:
        return false;
    }
  }
}

/** `state` compared case-insensitively (§6); "active" is the only state that carries media. */
export function isActive(call) {
  return typeof call.state === 'string' && call.state.toLowerCase() === 'active';
}

/** §6: `call_type` "video" in any case means a video call; anything else is voice. */
export function isVideoCall(call) {
  return typeof call.call_type === 'string' && call.call_type.toLowerCase() === 'video';
}

function bigId(id) {
  // BigInt('') is 0n and BigInt(' 7') is 7n; accept only plain integer text (ids are int8).
  if (typeof id === 'string' && !/^-?\d+$/.test(id)) return null;
  if (typeof id !== 'string' && typeof id !== 'number' && typeof id !== 'bigint') return null;
  try {
    return BigInt(id);
  } catch {
    return null;
  }
}
