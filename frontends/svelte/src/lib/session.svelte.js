// Svelte 5 reactive view of one relay connection.
//
// Owns: creating the RelayClient (the vanilla frontend's client.js: socket, token, reconnect,
// state tables), mirroring its state into runes after every `state` event, the connection status
// text, the calls the user has just dismissed, the toasts, the call notices ("Declined",
// "No answer", "Missed call", "Call ended · 03:12", decided by the shared calls.js), the room this
// page is in (the shared rooms.js: its tables, the room in the page URL, joining it again after
// every reconnect), recording (the shared recording.js: whether the call or room is being
// recorded, the Record button's request, the notices when someone else starts or stops it, the
// list of recordings, deleting one, its download URL), and the control messages the UI sends
// (protocol.md section 3, protocol-rooms.md section 3, docs/recording.md). Does not own: the
// protocol, the state tables or the media runtime (those are the shared modules under
// frontends/vanilla/lib), the replay (replay.svelte.js) or any markup.

import { replaceState } from '$app/navigation';
import { CallTracker, noticeText } from '$vanilla/calls.js';
import { RelayClient } from '$vanilla/client.js';
import { downloadUrl, recordRequest, recordingNotice, recordingNoticeText } from '$vanilla/recording.js';
import { RoomIntent } from '$vanilla/rooms.js';
import { shortId } from './format.js';

const ROOM_TABLES = ['rooms', 'room_members', 'room_messages', 'room_invites', 'room_speaker', 'room_layers'];

const TOAST_MS = 6000;
const NOTICE_MS = 8000;

/** ws:// or wss:// on the page's own origin; pgcall accepts the upgrade on any path. */
export function relayUrl(loc = window.location) {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}/ws`;
}

export class RelaySession {
  // Connection.
  status = $state('connecting'); // connecting | open | reconnecting | replaced | need-secret | closed
  retryInMs = $state(0);
  closeReason = $state('');
  hadSecret = $state(false);
  everConnected = $state(false);

  // Mirrored state (new arrays/objects on each change so keyed lists update).
  identity = $state(null);
  users = $state.raw([]);
  messages = $state.raw([]);
  calls = $state.raw([]);
  settings = $state.raw(null);
  incoming = $state.raw(null);
  outgoing = $state.raw(null);
  active = $state.raw(null);

  // The room (protocol-rooms.md): its row, members in join order, chat, speaker, layers.
  room = $state.raw(null);
  roomMembers = $state.raw([]);
  roomMessages = $state.raw([]);
  roomSpeaker = $state(null);
  roomPreviousSpeaker = $state(null);
  roomLayers = $state.raw(null);
  roomLink = $state(null); // the link that joins it (the page URL while in it)
  invitation = $state.raw(null); // the first invitation to us not yet answered
  invited = $state.raw(new Set()); // identities with an invitation waiting in our room

  // Recording (docs/recording.md).
  recordingAvailable = $state(false); // the server acknowledged our hello
  callRecording = $state.raw(null); // the recordings row going on in the active call
  roomRecording = $state.raw(null); // ... in the room
  recordingBusy = $state(false); // a start or stop waits for its answer
  recordings = $state.raw([]); // list_recordings, newest first
  recordingsError = $state('');
  recordingsOpen = $state(false); // the list is on screen: keep it fresh

  toasts = $state([]);
  notice = $state.raw(null); // {id, kind, peer, title, detail}: the last call's end, or a recording notice

  #dismissed = new Set(); // session ids the user declined, cancelled or hung up locally
  #toastId = 0;
  #settingsError = null;
  #tracker = new CallTracker();
  #noticeTimer = null;
  #pollTimer = null;
  #intent;
  #leaving = false;
  #answeredInvites = new Set(); // room ids whose invitation was answered here
  #stoppedByMe = new Set(); // recording ids I asked to stop

  constructor({ url = relayUrl(), storage = globalThis.localStorage } = {}) {
    this.client = new RelayClient({ url, storage });
    this.#intent = new RoomIntent(window.location.href);
    // The same handle the vanilla app exposes, for browser tests and for debugging.
    if (typeof window !== 'undefined') window.pgcallClient = this.client;
    this.client.addEventListener('state', (ev) => {
      const { table } = ev.detail;
      if (table === 'call_sessions') this.#track(ev.detail);
      if (table === 'identity') this.#rejoin();
      if (ROOM_TABLES.includes(table)) this.#roomChanged(ev.detail);
      if (table === 'recordings') this.#recordingChanged(ev.detail);
      this.#sync();
    });
    this.client.addEventListener('status', (ev) => this.#onStatus(ev.detail));
    this.client.addEventListener('ack', (ev) => {
      const d = ev.detail;
      if (d.req_type === 'create_room' || d.req_type === 'join_room') this.#setUrl(this.#intent.acked(d));
      this.roomLink = this.#intent.link();
      if (d.req_type === 'start_recording' || d.req_type === 'stop_recording') this.recordingBusy = false;
      if (d.req_type === 'list_recordings') {
        this.recordings = Array.isArray(d.recordings) ? d.recordings : [];
        this.recordingsError = '';
      }
      if (d.req_type === 'delete_recording') this.listRecordings();
      this.#sync();
    });
    this.client.addEventListener('error', (ev) => {
      const { req_type: reqType, message } = ev.detail;
      if (reqType === 'join_room') this.#setUrl(this.#intent.joinFailed(this.client.rooms.roomId));
      if (reqType === 'leave_room') this.#leaving = false;
      if (reqType === 'start_recording' || reqType === 'stop_recording') this.recordingBusy = false;
      this.roomLink = this.#intent.link();
      if (reqType === 'list_recordings' || reqType === 'delete_recording') this.recordingsError = message;
      else this.toast(message, { title: reqType || 'error' });
    });
  }

  connect() {
    this.client.connect();
  }

  close() {
    this.client.close();
  }

  get connected() {
    return this.status === 'open' && this.identity !== null;
  }

  usersById = $derived(new Map(this.users.map((u) => [u.identity, u])));

  /** identity -> "ringing" | "active" for everyone in a call (the "busy" state of the list). */
  busy = $derived.by(() => {
    const out = new Map();
    for (const c of this.calls) {
      const s = String(c.state).toLowerCase() === 'active' ? 'active' : 'ringing';
      out.set(c.caller, s);
      out.set(c.callee, s);
    }
    return out;
  });

  peerOf(call) {
    return call ? this.client.peerOf(call) : null;
  }

  /**
   * The name to show for an identity: the nickname, the last one they had if they left, else
   * the short id. Reads `users`, so a template calling it updates when anyone is renamed.
   */
  nameOf(identity) {
    void this.users;
    return this.client.nicknameOf(identity) || shortId(identity);
  }

  /** How long an active call has lasted (ms), on the clock both sides share. */
  elapsedMs(call, nowMs = Date.now()) {
    return this.#tracker.elapsedMs(call, nowMs);
  }

  dismissNotice() {
    clearTimeout(this.#noticeTimer);
    this.notice = null;
  }

  // --- control messages (protocol.md section 3) -------------------------------------------

  setNickname(nickname) {
    this.#send({ type: 'set_nickname', nickname });
  }

  sendMessage(text) {
    this.#send({ type: 'send_message', text });
  }

  requestCall(target, kind) {
    this.#send({ type: 'request_call', target, call_type: kind === 'Video' ? 'Video' : 'Voice' });
  }

  accept(call) {
    this.#send({ type: 'accept_call', session_id: call.session_id });
  }

  decline(call) {
    if (this.#send({ type: 'decline_call', session_id: call.session_id })) this.#dismiss(call);
  }

  /** Cancel a ringing outgoing call or hang up an active one. */
  end(call) {
    if (this.#send({ type: 'end_call', session_id: call.session_id })) this.#dismiss(call);
  }


  setSecret(secret) {
    this.client.setSecret(secret);
  }

  // --- rooms (protocol-rooms.md section 3) -----------------------------------------------

  createRoom(name, kind, isPrivate) {
    this.#send({ type: 'create_room', name, call_type: kind === 'Voice' ? 'Voice' : 'Video', private: Boolean(isPrivate) });
  }

  acceptInvitation(invite) {
    this.#answeredInvites.add(invite.room_id);
    this.#send({ type: 'join_room', room_id: invite.room_id });
    this.#sync();
  }

  declineInvitation(invite) {
    this.#answeredInvites.add(invite.room_id);
    this.#send({ type: 'decline_room_invite', room_id: invite.room_id });
    this.#sync();
  }

  leaveRoom() {
    if (!this.room) return;
    this.#leaving = true;
    this.#setUrl(this.#intent.gone());
    this.roomLink = null;
    this.#send({ type: 'leave_room', room_id: this.room.room_id });
  }

  inviteToRoom(target) {
    if (this.room) this.#send({ type: 'invite_to_room', room_id: this.room.room_id, target });
  }

  removeFromRoom(target) {
    if (this.room) this.#send({ type: 'remove_from_room', room_id: this.room.room_id, target });
  }

  /** Pin `target` (my main member), or unpin with null. */
  pin(target) {
    if (this.room) this.#send({ type: 'pin', room_id: this.room.room_id, target });
  }

  /** Tell the room about my microphone, camera, screen or hand ({mic, camera, screen, hand}). */
  setRoomState(change) {
    return Boolean(this.room) && this.client.send({ type: 'set_room_state', room_id: this.room.room_id, ...change });
  }

  sendRoomMessage(text) {
    if (this.room) this.#send({ type: 'send_room_message', room_id: this.room.room_id, text });
  }

  // --- recording (docs/recording.md) ----------------------------------------------------

  /** Start recording the active call or the room, or stop the recording going on. */
  toggleRecording() {
    const target = this.active ? { sessionId: this.active.session_id } : this.room ? { roomId: this.room.room_id } : null;
    if (!target || this.recordingBusy) return;
    const going = target.sessionId ? this.callRecording : this.roomRecording;
    if (going) this.#stoppedByMe.add(going.recording_id);
    if (this.#send(recordRequest(target, going))) this.recordingBusy = true;
  }

  listRecordings() {
    if (!this.client.send({ type: 'list_recordings' })) this.recordingsError = 'Not connected to the server.';
  }

  deleteRecording(recordingId) {
    this.#send({ type: 'delete_recording', recording_id: recordingId });
  }

  /** The link that downloads a recording as MP4 (with this identity's token). */
  downloadUrl(recordingId) {
    return downloadUrl(this.client.url, recordingId, this.client.token);
  }

  // --- toasts -----------------------------------------------------------------------------

  toast(text, { title = '', level = 'error' } = {}) {
    const id = ++this.#toastId;
    this.toasts.push({ id, text, title, level });
    if (this.toasts.length > 5) this.toasts.shift();
    setTimeout(() => this.dismissToast(id), TOAST_MS);
  }

  dismissToast(id) {
    const at = this.toasts.findIndex((t) => t.id === id);
    if (at >= 0) this.toasts.splice(at, 1);
  }

  // --- internals --------------------------------------------------------------------------

  #send(obj) {
    if (this.client.send(obj)) return true;
    this.toast('Not connected to the server.', { title: obj.type });
    return false;
  }

  #dismiss(call) {
    // Clear the dialog or call view at once; the delete event confirms it a moment later.
    this.#dismissed.add(call.session_id);
    this.#tracker.endedLocally(call.session_id);
    this.#sync();
  }

  #track(detail) {
    this.#show(this.#tracker.observe(detail, this.client.identity, Date.now()));
    this.#schedulePoll();
  }

  #schedulePoll() {
    clearTimeout(this.#pollTimer);
    const due = this.#tracker.nextDueMs(Date.now());
    if (due === null) return;
    this.#pollTimer = setTimeout(() => {
      this.#show(this.#tracker.poll(Date.now(), (identity) => this.client.users.has(identity)));
      this.#schedulePoll();
    }, due + 1);
  }

  #show(notices) {
    for (const n of notices) {
      const { title, detail } = noticeText(n, (identity) => this.nameOf(identity));
      this.notice = { id: n.sessionId + n.kind, kind: n.kind, peer: n.peer, title, detail };
      clearTimeout(this.#noticeTimer);
      this.#noticeTimer = setTimeout(() => (this.notice = null), NOTICE_MS);
    }
  }

  #recordingChanged(change) {
    const c = this.client;
    const notice = recordingNotice(change, c.identity, {
      inCall: (row) => (row.session_id ? c.activeCall()?.session_id === row.session_id : c.rooms.roomId === row.room_id),
      stoppedByMe: (row) => this.#stoppedByMe.has(row.recording_id),
    });
    if (notice) {
      const { title, detail } = recordingNoticeText(notice, (identity) => this.nameOf(identity));
      this.notice = { id: notice.recordingId + notice.kind, kind: notice.kind, peer: notice.by, title, detail };
      clearTimeout(this.#noticeTimer);
      this.#noticeTimer = setTimeout(() => (this.notice = null), NOTICE_MS);
    }
    if (change.row?.stopped_at && this.recordingsOpen) this.listRecordings();
  }

  /** A new connection: the server ended the membership of the old one; join the room again. */
  #rejoin() {
    this.#intent.connected();
    const msg = this.#intent.joinRequest(this.client.rooms.roomId);
    if (msg) this.client.send(msg);
  }

  #roomChanged({ table, op, old }) {
    const c = this.client;
    if (table === 'room_members' && op === 'delete' && old?.identity === c.identity && !c.rooms.room) {
      if (!this.#leaving) this.toast('You were removed from the room.', { title: 'Room', level: 'info' });
      this.#leaving = false;
      this.#setUrl(this.#intent.gone());
      this.roomLink = null;
    }
  }

  #setUrl(href) {
    if (!href) return;
    try {
      replaceState(href, {});
    } catch {
      window.history.replaceState(window.history.state, '', href); // before the router started
    }
  }

  #visible(call) {
    return call && !this.#dismissed.has(call.session_id) ? call : null;
  }

  #sync() {
    const c = this.client;
    this.identity = c.identity;
    this.users = [...c.users.values()];
    this.messages = c.messages.slice();
    this.calls = [...c.calls.values()];
    this.settings = c.settings;
    // Forget dismissals whose rows are gone, so the set does not grow.
    for (const id of this.#dismissed) if (!c.calls.has(id)) this.#dismissed.delete(id);
    this.incoming = this.#visible(c.incomingCall());
    this.outgoing = this.#visible(c.outgoingCall());
    this.active = this.#visible(c.activeCall());
    const r = c.rooms;
    this.room = r.room;
    this.roomMembers = r.memberIds().map((id) => r.members.get(id));
    this.roomMessages = r.messages.slice();
    this.roomSpeaker = r.speaker;
    this.roomPreviousSpeaker = r.previousSpeaker;
    this.roomLayers = r.layers;
    this.invited = new Set([...r.invites.values()].filter((i) => i.room_id === r.roomId).map((i) => i.invitee));
    for (const id of this.#answeredInvites) if (!r.invitesFor(c.identity).some((i) => i.room_id === id)) this.#answeredInvites.delete(id);
    this.invitation = c.identity
      ? r.invitesFor(c.identity).find((i) => !this.#answeredInvites.has(i.room_id) && i.room_id !== r.roomId) ?? null
      : null;
    this.recordingAvailable = c.recordingAvailable && c.connected;
    this.callRecording = this.active ? c.recordings.forCall(this.active.session_id) : null;
    this.roomRecording = r.room ? c.recordings.forRoom(r.roomId) : null;
    // A new call makes the last one's notice stale (a recording notice is about this one).
    if (this.notice && !isRecordingNotice(this.notice) && (this.incoming || this.outgoing || this.active)) this.dismissNotice();
    // A broken media_settings row (section 8.1) is worth one notice; calls then use defaults.
    if (c.settingsError && c.settingsError !== this.#settingsError) {
      this.toast(`${c.settingsError}; using default media settings.`, { title: 'media_settings', level: 'info' });
    }
    this.#settingsError = c.settingsError ?? null;
  }

  #onStatus(detail) {
    this.status = detail.status;
    this.retryInMs = detail.retryInMs ?? 0;
    this.closeReason = detail.reason ?? '';
    this.hadSecret = Boolean(detail.hadSecret);
    if (detail.status === 'open') this.everConnected = true;
    if (detail.status === 'need-secret' && detail.hadSecret) {
      this.toast('The join secret was not accepted.', { title: 'Connection' });
    }
    this.#sync();
  }
}

/** Whether a notice is about recording (shown during a call) rather than a call that ended. */
export function isRecordingNotice(notice) {
  return String(notice?.kind ?? '').startsWith('recording');
}
