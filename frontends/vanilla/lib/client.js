/**
 * The relay connection: one WebSocket speaking protocol.md §2–§6, plus the state it delivers.
 *
 * Owns: the token (storage key `pgcall/token`, sent as `?token=`, replaced by whatever the
 * `identity` message carries, §5), an optional join secret (`pgcall/secret`, sent as `&secret=`),
 * the remembered nicknames of people seen before (`pgcall/names`, so chat can name them after
 * they leave),
 * reconnecting with exponential backoff (0.5 s doubling to 10 s, with jitter) — except after
 * close code 4001 (another tab took over this identity: we show it and do not fight back) and
 * 4003 (a secret is required: the UI asks for one and calls setSecret) — and dispatching events:
 *   `status` {status, code, reason, retryInMs}  status ∈ connecting|open|reconnecting|replaced|
 *                                                need-secret|closed
 *   `state`  {table, op, row, old}  any change of identity / users / messages / calls /
 *                           settings, and of the room tables (protocol-rooms.md §2) and the
 *                           `room_speaker` / `room_layers` messages (table = their type);
 *                           `op` is the message type (snapshot|insert|update|delete), or `clear`
 *                           when a disconnect forgets our calls (with their `rows`) or our room
 *                           and invitations (table `rooms`)
 *   `ack`    {req_type, ...}  the ack's other fields too (a room's `room_id`, `key`)
 *   `error`  {req_type, message}    `media` {kind, header, payload}
 * Right after every connect it sends `hello` with what this client can do (recording.js
 * FEATURES: it shows the recording indicator; docs/recording.md); the ack sets
 * `recordingAvailable`, and an error answering it (a server without recording) is not shown.
 * The `recordings` rows (the recordings going on in our call or room) are kept in `recordings`
 * (recording.js RecordingState) and forgotten on a disconnect (`state` {table: 'recordings',
 * op: 'clear'}).
 * Does not own: applying rows (state.js, rooms.js, recording.js), framing (protocol.js), media
 * (media.js, roommedia.js), the DOM.
 */

import { decodeMessage, encodeControl, encodeMedia } from './protocol.js';
import { FEATURES, RecordingState, helloMessage } from './recording.js';
import { RoomState } from './rooms.js';
import { RelayState } from './state.js';

export const TOKEN_KEY = 'pgcall/token';
export const SECRET_KEY = 'pgcall/secret';
export const NAMES_KEY = 'pgcall/names';
export const CLOSE_REPLACED = 4001; // §4.7: "Replaced by new connection"
export const CLOSE_SECRET_REQUIRED = 4003;
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 10000;
// Media is worthless once stale: drop frames instead of queueing behind a slow link (§9 perf).
// Control messages are never dropped.
const MEDIA_BACKLOG_BYTES = { audio: 1 << 20, video: 256 << 10 };

export class RelayClient extends EventTarget {
  constructor({
    url,
    storage = globalThis.localStorage,
    WebSocket: WebSocketImpl = globalThis.WebSocket,
    setTimeout: setTimer = globalThis.setTimeout.bind(globalThis),
    clearTimeout: clearTimer = globalThis.clearTimeout.bind(globalThis),
    random = Math.random,
    features = FEATURES,
  } = {}) {
    super();
    this.url = url;
    this._storage = storage ?? null;
    this._WebSocket = WebSocketImpl;
    this._setTimer = setTimer;
    this._clearTimer = clearTimer;
    this._random = random;
    this._state = new RelayState();
    this._rooms = new RoomState();
    this._recordings = new RecordingState();
    this._features = features;
    this._token = null;
    this.recordingAvailable = false; // the server acknowledged our hello
    this._ws = null;
    this._wanted = false;
    this._attempt = 0;
    this._retryTimer = null;
    this.connected = false;
    this.status = 'closed';
    this.malformed = 0; // server messages that failed to decode
    this._loadNames();
  }

  get identity() { return this._state.identity; }
  get users() { return this._state.users; }
  get messages() { return this._state.messages; }
  get calls() { return this._state.calls; }
  get settings() { return this._state.settings; }
  get settingsError() { return this._state.settingsError; }
  /** The room this client is in, its members, chat, speaker and layers, and invitations. */
  get rooms() { return this._rooms; }
  /** The recordings going on in our call or room (recording.js RecordingState). */
  get recordings() { return this._recordings; }
  /** The token of this identity (from the `identity` message), e.g. for downloads. */
  get token() { return this._token ?? this._load(TOKEN_KEY); }
  get bufferedAmount() { return this._ws ? this._ws.bufferedAmount : 0; }

  incomingCall() { return this._state.incomingCall(); }
  outgoingCall() { return this._state.outgoingCall(); }
  activeCall() { return this._state.activeCall(); }
  peerOf(call) { return this._state.peerOf(call); }
  callOf(identity) { return this._state.callOf(identity); }
  /** The current nickname, or the last one seen for someone who left; null if never seen. */
  nicknameOf(identity) { return this._state.nicknameOf(identity); }

  /** Open the connection (idempotent); keeps reconnecting until close(). */
  connect() {
    this._wanted = true;
    if (this._ws) return;
    this._cancelRetry();
    this._open();
  }

  /** Close for good (no reconnect). */
  close() {
    this._wanted = false;
    this._cancelRetry();
    if (this._ws) this._ws.close(1000);
    else this._setStatus('closed');
  }

  /** Store a join secret (empty clears it) and reconnect with it. */
  setSecret(secret) {
    this._store(SECRET_KEY, secret ? String(secret) : null);
    this._attempt = 0;
    this.connect();
  }

  /** Send a control message; false if not connected. */
  send(obj) {
    if (!this._isOpen()) return false;
    this._ws.send(encodeControl(obj));
    return true;
  }

  /** Send an audio/video frame; false if not connected or the socket is backed up. */
  sendMedia(kind, header, payload) {
    if (!this._isOpen()) return false;
    if (this._ws.bufferedAmount > (MEDIA_BACKLOG_BYTES[kind] ?? 0)) return false;
    this._ws.send(encodeMedia(kind, header, payload));
    return true;
  }

  /** The URL for the next attempt: `url` with ?token= and &secret= when stored. */
  connectUrl() {
    const url = new URL(this.url);
    const token = this._load(TOKEN_KEY);
    const secret = this._load(SECRET_KEY);
    if (token) url.searchParams.set('token', token);
    if (secret) url.searchParams.set('secret', secret);
    return url.toString();
  }

  /** Feed one decoded control message (exposed for tests and for other transports). */
  handleControl(msg) {
    switch (msg.type) {
      case 'identity':
        if (typeof msg.identity !== 'string') return;
        this._state.identity = msg.identity;
        if (typeof msg.token === 'string' && msg.token) {
          this._token = msg.token;
          this._store(TOKEN_KEY, msg.token);
        }
        this._attempt = 0; // the server accepted us: the next outage starts from 0.5 s again
        this._emit('state', { table: 'identity' });
        return;
      case 'ack': {
        if (msg.req_type === 'hello') this.recordingAvailable = true;
        const { type: _type, ...fields } = msg;
        this._emit('ack', { ...fields, req_type: msg.req_type });
        return;
      }
      case 'error':
        if (msg.req_type === 'hello') return; // a server that records nothing: no Record button
        this._emit('error', { req_type: String(msg.req_type ?? ''), message: String(msg.message ?? '') });
        return;
      default: {
        const table = this._state.apply(msg) ?? this._rooms.apply(msg, this._state.identity)
          ?? this._recordings.apply(msg);
        if (this._state.namesChanged) this._saveNames();
        if (table) this._emit('state', { table, op: msg.type, row: msg.row, old: msg.old });
      }
    }
  }

  /** Feed one raw binary message from the socket. */
  handleBinary(data) {
    let decoded;
    try {
      decoded = decodeMessage(data);
    } catch {
      this.malformed++;
      return;
    }
    if (decoded.kind === 'control') this.handleControl(decoded.msg);
    else this._emit('media', decoded);
  }

  _open() {
    let ws;
    try {
      ws = new this._WebSocket(this.connectUrl());
    } catch {
      this._scheduleRetry(0, 'cannot open');
      return;
    }
    ws.binaryType = 'arraybuffer';
    this._ws = ws;
    this._setStatus('connecting');
    ws.onopen = () => {
      if (this._ws !== ws) return;
      this.connected = true;
      this.recordingAvailable = false;
      // Before anything else, so a room joined next already knows we show the indicator.
      if (this._features) this.send(helloMessage(this._features));
      this._setStatus('open');
    };
    ws.onmessage = (ev) => {
      // §2: everything the server sends is binary; a text frame is not ours to interpret.
      if (this._ws === ws && typeof ev.data !== 'string') this.handleBinary(ev.data);
    };
    ws.onclose = (ev) => {
      if (this._ws !== ws) return;
      this._ws = null;
      this._onClosed(ev.code, ev.reason);
    };
  }

  _onClosed(code, reason) {
    this.connected = false;
    // The server deletes every call of a departed identity (§6), so ours are gone.
    const calls = this._state.clearCalls();
    if (calls.length) this._emit('state', { table: 'call_sessions', op: 'clear', rows: calls });
    // ... and ends our room membership and our invitations (protocol-rooms.md §2).
    if (this._rooms.room || this._rooms.invites.size) {
      this._rooms.clear();
      this._emit('state', { table: 'rooms', op: 'clear' });
    }
    if (this._recordings.active.size) {
      this._recordings.clear();
      this._emit('state', { table: 'recordings', op: 'clear' });
    }
    if (code === CLOSE_REPLACED) {
      this._wanted = false;
      this._setStatus('replaced', { code, reason });
    } else if (code === CLOSE_SECRET_REQUIRED) {
      this._wanted = false;
      this._setStatus('need-secret', { code, reason, hadSecret: Boolean(this._load(SECRET_KEY)) });
    } else if (this._wanted) {
      this._scheduleRetry(code, reason);
    } else {
      this._setStatus('closed', { code, reason });
    }
  }

  _scheduleRetry(code, reason) {
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this._attempt);
    // Jitter in [base/2, base) so many clients do not all come back in the same instant.
    const retryInMs = Math.round(base / 2 + (this._random() * base) / 2);
    this._attempt++;
    this._retryTimer = this._setTimer(() => {
      this._retryTimer = null;
      if (this._wanted && !this._ws) this._open();
    }, retryInMs);
    this._setStatus('reconnecting', { code, reason, retryInMs });
  }

  _cancelRetry() {
    if (this._retryTimer !== null) this._clearTimer(this._retryTimer);
    this._retryTimer = null;
  }

  _isOpen() {
    return this._ws !== null && this.connected && this._ws.readyState === 1;
  }

  _setStatus(status, extra = {}) {
    this.status = status;
    this._emit('status', { status, ...extra });
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  _loadNames() {
    let pairs;
    try {
      pairs = JSON.parse(this._load(NAMES_KEY) ?? '[]');
    } catch {
      return; // unreadable: start afresh
    }
    if (!Array.isArray(pairs)) return;
    for (const pair of pairs) {
      if (Array.isArray(pair)) this._state.rememberName(pair[0], pair[1]);
    }
    this._state.namesChanged = false;
  }

  _saveNames() {
    this._state.namesChanged = false;
    this._store(NAMES_KEY, JSON.stringify([...this._state.names]));
  }

  _load(key) {
    try {
      return this._storage ? this._storage.getItem(key) : null;
    } catch {
      return null; // storage can throw (disabled cookies, private mode)
    }
  }

  _store(key, value) {
    try {
      if (!this._storage) return;
      if (value === null) this._storage.removeItem(key);
      else this._storage.setItem(key, value);
    } catch {
      // Not persisting the token only costs a new identity on reload.
    }
  }
}
