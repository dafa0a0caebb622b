// RelayClient: the state model (protocol.md §4, §6, §8.1) and the connection policy.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { NAMES_KEY, RelayClient, SECRET_KEY, TOKEN_KEY } from '../lib/client.js';
import { decodeMessage, encodeControl, encodeMedia } from '../lib/protocol.js';
import { CHAT_LIMIT, NAMES_LIMIT } from '../lib/state.js';

const ME = 'a'.repeat(64);
const BOB = 'b'.repeat(64);
const CAROL = 'c'.repeat(64);

class MemoryStorage {
  constructor(entries = {}) {
    this.map = new Map(Object.entries(entries));
  }
  getItem(k) { return this.map.has(k) ? this.map.get(k) : null; }
  setItem(k, v) { this.map.set(k, String(v)); }
  removeItem(k) { this.map.delete(k); }
}

class FakeSocket {
  static instances = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.bufferedAmount = 0;
    this.sent = [];
    this.closedWith = null;
    FakeSocket.instances.push(this);
  }
  send(data) { this.sent.push(data); }
  close(code) {
    this.closedWith = code;
    this.serverClose(code ?? 1005, '');
  }
  // Test helpers playing the server side.
  serverOpen() {
    this.readyState = 1;
    this.onopen?.({});
  }
  serverSend(buffer) { this.onmessage?.({ data: buffer }); }
  serverClose(code, reason = '') {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

function fakeTimers() {
  const timers = [];
  return {
    timers,
    setTimeout: (fn, ms) => {
      timers.push({ fn, ms, cleared: false });
      return timers.length - 1;
    },
    clearTimeout: (id) => {
      if (timers[id]) timers[id].cleared = true;
    },
    fireLast() {
      const t = timers.at(-1);
      assert.ok(t && !t.cleared, 'a pending timer');
      t.fn();
    },
  };
}

function makeClient({ storage = new MemoryStorage(), random = () => 0.5 } = {}) {
  FakeSocket.instances = [];
  const timers = fakeTimers();
  const client = new RelayClient({
    url: 'ws://relay.test:9000/ws',
    storage,
    WebSocket: FakeSocket,
    setTimeout: timers.setTimeout,
    clearTimeout: timers.clearTimeout,
    random,
  });
  const events = [];
  for (const type of ['state', 'ack', 'error', 'media', 'status']) {
    client.addEventListener(type, (ev) => events.push({ type, detail: ev.detail }));
  }
  return { client, timers, storage, events };
}

function withIdentity() {
  const ctx = makeClient();
  ctx.client.handleControl({ type: 'identity', identity: ME, token: 'tok-1' });
  return ctx;
}

const user = (identity, nickname) => ({ identity, nickname, connected_at: '2026-11-25T18:00:00.000Z' });
const chat = (id, text = `m${id}`) => ({ id: String(id), sender: BOB, sent_at: '2026-11-25T18:00:00.000Z', text });
const call = (session_id, caller, callee, state = 'Ringing', call_type = 'Video') => ({
  session_id, call_type, state, caller, callee, created_at: '2026-11-25T18:00:00.000Z', answered_at: null,
});

// ------------------------------------------------------------------ state model

test('identity and users: snapshot, insert, update (trimmed), delete by old.identity', () => {
  const { client, events } = withIdentity();
  assert.equal(client.identity, ME);
  client.handleControl({ type: 'snapshot', table: 'users', rows: [user(ME, 'me'), user(BOB, 'bob')] });
  assert.deepEqual([...client.users.keys()].sort(), [ME, BOB]);
  client.handleControl({ type: 'insert', table: 'users', row: user(CAROL, 'carol') });
  client.handleControl({ type: 'update', table: 'users', row: user(BOB, '  Bobby  '), old: { identity: BOB } });
  assert.equal(client.users.get(BOB).nickname, 'Bobby');
  client.handleControl({ type: 'delete', table: 'users', old: { identity: CAROL, nickname: 'carol' } });
  assert.deepEqual([...client.users.keys()].sort(), [ME, BOB]);
  const before = events.length;
  client.handleControl({ type: 'delete', table: 'users', old: {} }); // the original relay's empty old
  assert.equal(client.users.size, 2);
  assert.equal(events.length, before, 'no change, no event');
  assert.ok(events.some((e) => e.type === 'state' && e.detail.table === 'users'));
});

test('chat: snapshot is newest-first, kept ascending by BigInt id, capped at 250', () => {
  const { client } = withIdentity();
  // Ids beyond 2^53 differ as BigInt but not as Number.
  const base = 9007199254740000n;
  const rows = [];
  for (let i = 299; i >= 0; i--) rows.push(chat(base + BigInt(i)));
  client.handleControl({ type: 'snapshot', table: 'chat_messages', rows });
  assert.equal(client.messages.length, CHAT_LIMIT);
  assert.equal(client.messages[0].id, String(base + 50n));
  assert.equal(client.messages.at(-1).id, String(base + 299n));
  for (let i = 1; i < client.messages.length; i++) {
    assert.ok(BigInt(client.messages[i - 1].id) < BigInt(client.messages[i].id));
  }
  // A newer insert pushes out the oldest; an older one out of order is sorted in then capped.
  client.handleControl({ type: 'insert', table: 'chat_messages', row: chat(base + 300n) });
  assert.equal(client.messages.length, CHAT_LIMIT);
  assert.equal(client.messages[0].id, String(base + 51n));
  assert.equal(client.messages.at(-1).id, String(base + 300n));
});

test('chat: out-of-order inserts, upserts, invalid ids ignored, delete by old.id', () => {
  const { client } = withIdentity();
  for (const id of [10, 2, 7]) client.handleControl({ type: 'insert', table: 'chat_messages', row: chat(id) });
  assert.deepEqual(client.messages.map((m) => m.id), ['2', '7', '10']);
  client.handleControl({ type: 'insert', table: 'chat_messages', row: chat(7, 'edited') });
  assert.deepEqual(client.messages.map((m) => m.text), ['m2', 'edited', 'm10']);
  for (const bad of [{ sender: BOB, text: 'no id' }, chat('1.5'), chat(''), chat('x1')]) {
    client.handleControl({ type: 'insert', table: 'chat_messages', row: bad });
  }
  assert.equal(client.messages.length, 3);
  client.handleControl({ type: 'delete', table: 'chat_messages', old: { id: '7' } });
  assert.deepEqual(client.messages.map((m) => m.id), ['2', '10']);
});

test('calls: incoming, outgoing, active, peer, busy, and delete by old.session_id', () => {
  const { client } = withIdentity();
  client.handleControl({ type: 'snapshot', table: 'call_sessions', rows: [] });
  assert.equal(client.incomingCall(), null);
  client.handleControl({ type: 'insert', table: 'call_sessions', row: call('s1', BOB, ME) });
  assert.equal(client.incomingCall().session_id, 's1');
  assert.equal(client.outgoingCall(), null);
  assert.equal(client.activeCall(), null);
  assert.equal(client.callOf(BOB).session_id, 's1');
  const answered = { ...call('s1', BOB, ME, 'Active'), answered_at: '2026-11-25T18:00:01.000Z' };
  client.handleControl({ type: 'update', table: 'call_sessions', row: answered, old: { session_id: 's1' } });
  assert.equal(client.incomingCall(), null);
  assert.equal(client.activeCall().session_id, 's1');
  assert.equal(client.peerOf(client.activeCall()), BOB);
  client.handleControl({ type: 'delete', table: 'call_sessions', old: { session_id: 's1' } });
  assert.equal(client.activeCall(), null);
  assert.equal(client.calls.size, 0);

  client.handleControl({ type: 'insert', table: 'call_sessions', row: call('s2', ME, CAROL, 'Ringing') });
  assert.equal(client.outgoingCall().session_id, 's2');
  assert.equal(client.peerOf(client.outgoingCall()), CAROL);
  // Someone else's call is not ours, but its parties are busy.
  client.handleControl({ type: 'insert', table: 'call_sessions', row: call('s3', BOB, 'd'.repeat(64), 'active') });
  assert.equal(client.activeCall(), null);
  assert.ok(client.callOf(BOB));
});

test('state events carry the operation and the rows, so deletes can be told apart', () => {
  const { client, events } = withIdentity();
  const row = call('s1', ME, BOB);
  client.handleControl({ type: 'insert', table: 'call_sessions', row });
  client.handleControl({ type: 'delete', table: 'call_sessions', old: row });
  const details = events.filter((e) => e.type === 'state' && e.detail.table === 'call_sessions').map((e) => e.detail);
  assert.deepEqual(details.map((d) => d.op), ['insert', 'delete']);
  assert.deepEqual(details[0].row, row);
  assert.deepEqual(details[1].old, row);
});

test('nicknames outlive their users: chat can still name people who left', () => {
  const storage = new MemoryStorage();
  const { client } = makeClient({ storage });
  client.handleControl({ type: 'identity', identity: ME, token: 't' });
  client.handleControl({ type: 'snapshot', table: 'users', rows: [user(ME, 'me'), user(BOB, 'Bob')] });
  client.handleControl({ type: 'update', table: 'users', row: user(BOB, 'Bobby'), old: user(BOB, 'Bob') });
  client.handleControl({ type: 'delete', table: 'users', old: user(BOB, 'Bobby') });
  assert.equal(client.users.has(BOB), false);
  assert.equal(client.nicknameOf(BOB), 'Bobby', 'the last nickname they had');
  assert.equal(client.nicknameOf(CAROL), null, 'never seen');
  // An empty nickname does not overwrite a known one; a new snapshot does not forget.
  client.handleControl({ type: 'insert', table: 'users', row: user(CAROL, '') });
  client.handleControl({ type: 'snapshot', table: 'users', rows: [user(ME, 'me')] });
  assert.equal(client.nicknameOf(BOB), 'Bobby');
  assert.equal(client.nicknameOf(CAROL), null);
  // Remembered across page loads, and a broken stored value is ignored.
  assert.deepEqual(JSON.parse(storage.getItem(NAMES_KEY)), [[ME, 'me'], [BOB, 'Bobby']]);
  assert.equal(makeClient({ storage }).client.nicknameOf(BOB), 'Bobby');
  storage.setItem(NAMES_KEY, '{not json');
  assert.equal(makeClient({ storage }).client.nicknameOf(BOB), null);
});

test('remembered nicknames are bounded, the least recently seen go first', () => {
  const storage = new MemoryStorage();
  const { client } = makeClient({ storage });
  const id = (i) => i.toString(16).padStart(64, '0');
  const rows = [];
  for (let i = 0; i < NAMES_LIMIT + 10; i++) rows.push(user(id(i), `user ${i}`));
  client.handleControl({ type: 'snapshot', table: 'users', rows });
  assert.equal(client.nicknameOf(id(5)), 'user 5', 'still online');
  client.handleControl({ type: 'snapshot', table: 'users', rows: [] });
  assert.equal(client.nicknameOf(id(5)), null, 'forgotten once over the limit');
  assert.equal(client.nicknameOf(id(NAMES_LIMIT + 9)), `user ${NAMES_LIMIT + 9}`);
  assert.equal(JSON.parse(storage.getItem(NAMES_KEY)).length, NAMES_LIMIT);
});

test('media_settings: numbers, defaults for missing columns, invalid values, delete', () => {
  const { client } = withIdentity();
  const row = {
    id: 1, audio_target_sample_rate: '24000', audio_frame_ms: 50, audio_max_frame_bytes: 64000,
    audio_talking_rms_threshold: 0.02, video_width: 320, video_height: 180, video_fps: 5,
    video_jpeg_quality: 0.55, video_max_frame_bytes: 512000,
  };
  client.handleControl({ type: 'snapshot', table: 'media_settings', rows: [row] });
  assert.equal(client.settings.audio_target_sample_rate, 24000);
  assert.equal(client.settings.video_width, 320);
  // The voice-only variant has no video columns: pgcall's defaults fill them in.
  const voiceOnly = { id: 1, audio_target_sample_rate: 24000, audio_frame_ms: 50 };
  client.handleControl({ type: 'update', table: 'media_settings', row: voiceOnly, old: { id: 1 } });
  assert.equal(client.settings.video_width, 640);
  assert.equal(client.settings.video_jpeg_quality, 0.65);
  client.handleControl({ type: 'update', table: 'media_settings', row: { ...row, video_fps: 'fast' }, old: { id: 1 } });
  assert.equal(client.settings, null);
  assert.match(client.settingsError, /video_fps is not a valid number: fast/);
  client.handleControl({ type: 'update', table: 'media_settings', row, old: { id: 1 } });
  assert.equal(client.settingsError, null);
  client.handleControl({ type: 'delete', table: 'media_settings', old: { id: 1 } });
  assert.equal(client.settings, null);
  assert.match(client.settingsError, /deleted/);
  client.handleControl({ type: 'snapshot', table: 'media_settings', rows: [] });
  assert.match(client.settingsError, /not found/);
});

test('ack, error and media events; malformed frames are counted, text frames ignored', () => {
  const { client, events } = withIdentity();
  client.handleBinary(encodeControl({ type: 'ack', req_type: 'send_message' }));
  client.handleBinary(encodeControl({ type: 'error', req_type: 'set_nickname', message: 'Nickname cannot be empty' }));
  client.handleBinary(encodeMedia('video', { session_id: 's', from: BOB, seq: 1 }, new Uint8Array([0xff, 0xd8])));
  client.handleBinary(new Uint8Array([0x07]).buffer);
  assert.deepEqual(events.find((e) => e.type === 'ack').detail, { req_type: 'send_message' });
  assert.deepEqual(events.find((e) => e.type === 'error').detail, {
    req_type: 'set_nickname', message: 'Nickname cannot be empty',
  });
  const media = events.find((e) => e.type === 'media').detail;
  assert.equal(media.kind, 'video');
  assert.equal(media.header.from, BOB);
  assert.deepEqual([...media.payload], [0xff, 0xd8]);
  assert.equal(client.malformed, 1);
  client.handleControl({ type: 'insert', table: 'ai_transcripts', row: { id: '1' } }); // unknown table
  assert.equal(events.filter((e) => e.type === 'state' && e.detail.table === 'ai_transcripts').length, 0);
});

// ------------------------------------------------------------------ connection policy

test('the token is stored and sent back; the secret is appended when set', () => {
  const { client, storage } = makeClient();
  client.connect();
  const first = FakeSocket.instances[0];
  assert.equal(first.url, 'ws://relay.test:9000/ws');
  assert.equal(first.binaryType, 'arraybuffer');
  first.serverOpen();
  first.serverSend(encodeControl({ type: 'identity', identity: ME, token: 'tok a&b' }));
  assert.equal(storage.getItem(TOKEN_KEY), 'tok a&b');
  assert.equal(client.identity, ME);
  storage.setItem(SECRET_KEY, 's3cret');
  assert.equal(client.connectUrl(), 'ws://relay.test:9000/ws?token=tok+a%26b&secret=s3cret');
  // Text frames are not part of the protocol (§2) and are ignored.
  first.onmessage({ data: '{"type":"identity","identity":"x"}' });
  assert.equal(client.identity, ME);
});

test('send and sendMedia only while open; media is dropped when the socket is backed up', () => {
  const { client } = makeClient();
  assert.equal(client.send({ type: 'send_message', text: 'hi' }), false);
  client.connect();
  const ws = FakeSocket.instances[0];
  assert.equal(client.send({ type: 'send_message', text: 'hi' }), false, 'not open yet');
  ws.serverOpen();
  assert.equal(client.connected, true);
  assert.equal(client.send({ type: 'send_message', text: 'hi' }), true);
  assert.equal(decodeMessage(ws.sent[0]).msg.type, 'hello', 'sent on open, before anything else');
  assert.deepEqual(decodeMessage(ws.sent[1]).msg, { type: 'send_message', text: 'hi' });
  assert.equal(client.sendMedia('audio', { seq: 0 }, new Uint8Array(4)), true);
  assert.equal(decodeMessage(ws.sent[2]).kind, 'audio');
  ws.bufferedAmount = 10 << 20;
  assert.equal(client.sendMedia('video', { seq: 0 }, new Uint8Array(4)), false);
  assert.equal(client.send({ type: 'end_call', session_id: 's' }), true, 'control is never dropped');
});

test('reconnects with exponential backoff and jitter, capped at 10 s, reset by identity', () => {
  let r = 0;
  const randoms = [0, 0.999];
  const { client, timers, events } = makeClient({ random: () => randoms[r++ % 2] });
  client.connect();
  const delays = [];
  for (let i = 0; i < 8; i++) {
    FakeSocket.instances.at(-1).serverClose(1006);
    delays.push(timers.timers.at(-1).ms);
    timers.fireLast();
  }
  assert.equal(FakeSocket.instances.length, 9, 'one new socket per retry');
  const bases = [500, 1000, 2000, 4000, 8000, 10000, 10000, 10000];
  delays.forEach((d, i) => {
    assert.ok(d >= bases[i] / 2 && d <= bases[i], `retry ${i}: ${d} ms not in [${bases[i] / 2}, ${bases[i]}]`);
  });
  assert.notEqual(delays[0] * 2, delays[1], 'jitter changes the delays');
  const status = events.filter((e) => e.type === 'status').at(-1).detail;
  assert.equal(status.status, 'connecting');
  // A successful identity resets the backoff.
  const ws = FakeSocket.instances.at(-1);
  ws.serverOpen();
  ws.serverSend(encodeControl({ type: 'identity', identity: ME, token: 't' }));
  ws.serverClose(1006);
  assert.ok(timers.timers.at(-1).ms <= 500);
  assert.equal(events.filter((e) => e.type === 'status').at(-1).detail.status, 'reconnecting');
});

test('4001 (replaced by another tab) is shown and not fought; calls are cleared on close', () => {
  const { client, timers, events } = withIdentity();
  client.connect();
  const ws = FakeSocket.instances[0];
  ws.serverOpen();
  client.handleControl({ type: 'insert', table: 'call_sessions', row: call('s1', BOB, ME, 'Active') });
  assert.ok(client.activeCall());
  ws.serverClose(4001, 'Replaced by new connection');
  assert.equal(client.connected, false);
  assert.equal(client.activeCall(), null);
  const cleared = events.filter((e) => e.type === 'state' && e.detail.op === 'clear').at(-1).detail;
  assert.deepEqual(cleared.rows.map((r) => r.session_id), ['s1'], 'the forgotten calls are told');
  assert.equal(timers.timers.length, 0, 'no reconnect scheduled');
  const status = events.filter((e) => e.type === 'status').at(-1).detail;
  assert.deepEqual(status, { status: 'replaced', code: 4001, reason: 'Replaced by new connection' });
  client.connect(); // the user explicitly takes over again
  assert.equal(FakeSocket.instances.length, 2);
});

test('4003 asks for a secret; setSecret stores it and reconnects with it', () => {
  const { client, timers, events, storage } = makeClient();
  client.connect();
  FakeSocket.instances[0].serverClose(4003, 'secret required');
  assert.equal(timers.timers.length, 0);
  const status = events.filter((e) => e.type === 'status').at(-1).detail;
  assert.equal(status.status, 'need-secret');
  assert.equal(status.hadSecret, false);
  client.setSecret('open sesame');
  assert.equal(storage.getItem(SECRET_KEY), 'open sesame');
  assert.equal(FakeSocket.instances.length, 2);
  assert.equal(new URL(FakeSocket.instances[1].url).searchParams.get('secret'), 'open sesame');
  FakeSocket.instances[1].serverClose(4003);
  assert.equal(events.filter((e) => e.type === 'status').at(-1).detail.hadSecret, true);
});

test('close() stops for good', () => {
  const { client, timers, events } = makeClient();
  client.connect();
  FakeSocket.instances[0].serverOpen();
  client.close();
  assert.equal(FakeSocket.instances[0].closedWith, 1000);
  assert.equal(timers.timers.length, 0);
  assert.equal(events.filter((e) => e.type === 'status').at(-1).detail.status, 'closed');
  // A retry timer pending from an earlier outage is cancelled too.
  const c2 = makeClient();
  c2.client.connect();
  FakeSocket.instances[0].serverClose(1006);
  c2.client.close();
  assert.equal(c2.timers.timers.at(-1).cleared, true);
});

// ------------------------------------------------------------------ rooms

test('rooms: room tables and messages reach the room state with state events; acks keep their fields', () => {
  const { client, events } = withIdentity();
  const ROOM = '2f1c7e0a-4b7d-4f43-9a51-0c6a1d2e3f40';
  client.handleBinary(encodeControl({ type: 'ack', req_type: 'create_room', room_id: ROOM, key: 'k' }));
  assert.deepEqual(events.at(-1), { type: 'ack', detail: { req_type: 'create_room', room_id: ROOM, key: 'k' } });
  client.handleControl({ type: 'snapshot', table: 'rooms', rows: [{ room_id: ROOM, name: 'r', call_type: 'Video' }] });
  client.handleControl({ type: 'snapshot', table: 'room_members', rows: [{ room_id: ROOM, identity: ME, joined_at: 't' }] });
  client.handleControl({ type: 'room_layers', room_id: ROOM, full: true, thumb: false });
  client.handleControl({ type: 'insert', table: 'room_members', row: { room_id: ROOM, identity: BOB, joined_at: 'u' } });
  const tables = events.filter((e) => e.type === 'state').map((e) => e.detail.table);
  assert.deepEqual(tables.slice(-4), ['rooms', 'room_members', 'room_layers', 'room_members']);
  assert.equal(client.rooms.roomId, ROOM);
  assert.deepEqual(client.rooms.memberIds(), [ME, BOB]);
  assert.equal(client.users.size, 0, 'the users table is not touched');
  // A disconnect ends the membership on the server: the client forgets the room at once.
  client.connect();
  FakeSocket.instances.at(-1).serverOpen();
  FakeSocket.instances.at(-1).serverClose(1006);
  assert.equal(client.rooms.room, null);
  assert.deepEqual(events.filter((e) => e.type === 'state').at(-1).detail, { table: 'rooms', op: 'clear' });
});
