/**
 * Rooms on the client (protocol-rooms.md §2–§3): the room tables as the server sends them to a
 * member or an invitee, the join link in the page URL, and the room the page wants to be in.
 *
 * Owns: RoomState — the room this client is in (`room`, its `rooms` row), its members (Map by
 * identity, in the order they joined), its chat (ascending by id, the last ROOM_CHAT_LIMIT), the
 * current and previous dominant speaker (`room_speaker`), the layers the server asks this client
 * to send (`room_layers`), and the invitations it can see (its own, and as a member those of its
 * room); the join-link helpers (`?room=<room_id>&key=<key>`); RoomIntent — which room the page
 * means to be in (from the URL, a create or join ack), what to send after each (re)connect to get
 * back in, and when to give up (an error, leaving, being removed).
 * Pure: no I/O, no DOM, no timers. Does not own the socket (client.js) or the media.
 */

export const ROOM_CHAT_LIMIT = 250;
const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/** `call_type` "Video" in any case is a video room; anything else is voice. */
export function isVideoRoom(room) {
  return typeof room?.call_type === 'string' && room.call_type.toLowerCase() === 'video';
}

/** Whether a string looks like a room id (a uuid, with or without dashes). */
export function isRoomId(value) {
  return typeof value === 'string' && UUID.test(value.trim());
}

/** The room and key a page URL's query string carries: {roomId, key} or null. */
export function roomFromSearch(search) {
  const params = new URLSearchParams(search ?? '');
  const roomId = (params.get('room') ?? '').trim();
  if (!isRoomId(roomId)) return null;
  const key = params.get('key');
  return { roomId: roomId.toLowerCase(), key: key ? key : null };
}

/** `href` with `?room=` (and `&key=` for a private room) set; other parameters are kept. */
export function roomLink(href, roomId, key = null) {
  const url = new URL(href);
  url.searchParams.set('room', roomId);
  if (key) url.searchParams.set('key', key);
  else url.searchParams.delete('key');
  url.hash = '';
  return url.toString();
}

/** `href` without the room parameters. */
export function withoutRoom(href) {
  const url = new URL(href);
  url.searchParams.delete('room');
  url.searchParams.delete('key');
  return url.toString();
}

function inviteKey(row) {
  return `${row.room_id} ${row.invitee}`;
}

function bigId(id) {
  if (typeof id !== 'string' && typeof id !== 'number') return null;
  if (!/^-?\d+$/.test(String(id))) return null;
  return BigInt(id);
}

export class RoomState {
  constructor() {
    this.invites = new Map(); // "room_id invitee" -> room_invites row (with room_name, call_type)
    this.clearRoom();
  }

  /** Forget the room (we left it, were removed, or disconnected). */
  clearRoom() {
    this.room = null;
    this.members = new Map();
    this.messages = [];
    this.speaker = null;
    this.previousSpeaker = null;
    this.layers = null; // {full, thumb} once the server said
  }

  /** Forget everything the server removes when we disconnect (our membership, invitations). */
  clear() {
    this.clearRoom();
    this.invites = new Map();
  }

  get roomId() {
    return this.room ? this.room.room_id : null;
  }

  /** Identities of the members in the order they joined. */
  memberIds() {
    return [...this.members.values()]
      .sort((a, b) => String(a.joined_at ?? '').localeCompare(String(b.joined_at ?? '')))
      .map((m) => m.identity);
  }

  /** Invitations to `me`, oldest first. */
  invitesFor(me) {
    return [...this.invites.values()]
      .filter((i) => i.invitee === me)
      .sort((a, b) => String(a.created_at ?? '').localeCompare(String(b.created_at ?? '')));
  }

  /** Whether someone has an invitation waiting in our room. */
  isInvited(identity) {
    return this.room !== null && this.invites.has(`${this.room.room_id} ${identity}`);
  }

  /**
   * Apply one control message; returns what it changed ('rooms', 'room_members',
   * 'room_messages', 'room_invites', 'room_speaker', 'room_layers') or null if it was not ours.
   * `me` is our identity: the delete of our own member row means we are out of the room.
   */
  apply(msg, me) {
    switch (msg.type) {
      case 'room_speaker':
        if (!this._ours(msg.room_id)) return null;
        if (msg.speaker !== this.speaker) {
          if (this.speaker) this.previousSpeaker = this.speaker;
          this.speaker = typeof msg.speaker === 'string' ? msg.speaker : null;
        }
        return 'room_speaker';
      case 'room_layers':
        if (!this._ours(msg.room_id)) return null;
        this.layers = { full: msg.full === true, thumb: msg.thumb === true };
        return 'room_layers';
      case 'snapshot':
        return this._snapshot(msg.table, Array.isArray(msg.rows) ? msg.rows : []) ? msg.table : null;
      case 'insert':
      case 'update':
        return msg.row && typeof msg.row === 'object' && this._upsert(msg.table, msg.row) ? msg.table : null;
      case 'delete':
        return msg.old && typeof msg.old === 'object' && this._delete(msg.table, msg.old, me) ? msg.table : null;
      default:
        return null;
    }
  }

  _ours(roomId) {
    return this.room !== null && typeof roomId === 'string' && roomId === this.room.room_id;
  }

  _snapshot(table, rows) {
    switch (table) {
      case 'rooms': {
        const row = rows.find((r) => r && typeof r.room_id === 'string');
        if (!row) {
          this.clearRoom();
          return true;
        }
        if (row.room_id !== this.roomId) this.clearRoom();
        this.room = { ...row };
        return true;
      }
      case 'room_members':
        if (!this.room) return false;
        this.members = new Map();
        for (const row of rows) this._upsert(table, row);
        return true;
      case 'room_messages':
        if (!this.room) return false;
        this.messages = [];
        for (const row of rows) this._upsert(table, row);
        return true;
      case 'room_invites':
        this.invites = new Map();
        for (const row of rows) this._upsert(table, row);
        return true;
      default:
        return false;
    }
  }

  _upsert(table, row) {
    switch (table) {
      case 'rooms':
        if (!this._ours(row.room_id)) return false;
        this.room = { ...row };
        return true;
      case 'room_members':
        if (!this._ours(row.room_id) || typeof row.identity !== 'string') return false;
        this.members.set(row.identity, { ...row });
        return true;
      case 'room_messages': {
        const key = bigId(row.id);
        if (!this._ours(row.room_id) || key === null) return false;
        const message = { ...row, id: String(row.id), key };
        const at = this.messages.findIndex((m) => m.key === key);
        if (at >= 0) this.messages[at] = message;
        else this.messages.push(message);
        this.messages.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
        if (this.messages.length > ROOM_CHAT_LIMIT) this.messages.splice(0, this.messages.length - ROOM_CHAT_LIMIT);
        return true;
      }
      case 'room_invites':
        if (typeof row.room_id !== 'string' || typeof row.invitee !== 'string') return false;
        this.invites.set(inviteKey(row), { ...row });
        return true;
      default:
        return false;
    }
  }

  _delete(table, old, me) {
    switch (table) {
      case 'rooms':
        if (!this._ours(old.room_id)) return false;
        this.clearRoom();
        return true;
      case 'room_members':
        if (!this._ours(old.room_id)) return false;
        if (old.identity === me) {
          this.clearRoom(); // we left or were removed
          return true;
        }
        return this.members.delete(old.identity);
      case 'room_messages': {
        const key = bigId(old.id);
        const before = this.messages.length;
        this.messages = this.messages.filter((m) => m.key !== key);
        return this.messages.length !== before;
      }
      case 'room_invites':
        if (typeof old.room_id !== 'string' || typeof old.invitee !== 'string') return false;
        return this.invites.delete(inviteKey(old));
      default:
        return false;
    }
  }
}

/**
 * The room the page means to be in, kept across reconnects, and the page URL that goes with it.
 *
 * The server ends a membership when the connection drops, so after every (re)connect the page
 * joins again: joinRequest() says what to send. A create or join ack sets the room and its key
 * (the URL then carries both); an error answering a join (the room ended, a wrong key, full)
 * drops it; so do leaving and being removed. Each method returns the URL the page should show
 * now, or null when it stays as it is.
 */
export class RoomIntent {
  /** @param {string} href the page URL; its ?room= and &key= are the room to join. */
  constructor(href) {
    this.href = href;
    const link = roomFromSearch(new URL(href).search);
    this.wanted = link; // {roomId, key} or null
    this._sent = false; // a join for `wanted` was sent on this connection
  }

  /** The connection is (re)established: nothing sent on it yet. */
  connected() {
    this._sent = false;
  }

  /** The join_room to send now (once per connection), or null: `currentRoomId` is where we are. */
  joinRequest(currentRoomId) {
    if (!this.wanted || this._sent || currentRoomId === this.wanted.roomId) return null;
    this._sent = true;
    const msg = { type: 'join_room', room_id: this.wanted.roomId };
    if (this.wanted.key) msg.key = this.wanted.key;
    return msg;
  }

  /** An ack of create_room or join_room: that room (and its key) is the one to be in. */
  acked(ack) {
    if (!isRoomId(ack?.room_id)) return null;
    this.wanted = { roomId: ack.room_id.toLowerCase(), key: typeof ack.key === 'string' && ack.key ? ack.key : null };
    this._sent = true;
    return this._set(roomLink(this.href, this.wanted.roomId, this.wanted.key));
  }

  /** An error answering join_room while we are in `currentRoomId` (or null): give up the link. */
  joinFailed(currentRoomId) {
    if (!this.wanted || currentRoomId === this.wanted.roomId) return null;
    this.wanted = null;
    return this._set(withoutRoom(this.href));
  }

  /** We left, were removed, or the room ended. */
  gone() {
    this.wanted = null;
    return this._set(withoutRoom(this.href));
  }

  /** The link of the room we are in, for sharing. */
  link() {
    return this.wanted ? roomLink(this.href, this.wanted.roomId, this.wanted.key) : null;
  }

  _set(href) {
    if (href === this.href) return null;
    this.href = href;
    return href;
  }
}
