// Recording on the client: hello, the recordings going on, notices, the list and the download URL.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { RelayClient } from '../lib/client.js';
import { decodeMessage, encodeControl } from '../lib/protocol.js';
import {
  FEATURES,
  RecordingState,
  describeRecording,
  downloadUrl,
  formatBytes,
  formatClock,
  recordRequest,
  recordingNotice,
  recordingNoticeText,
} from '../lib/recording.js';

const ME = 'a'.repeat(64);
const BOB = 'b'.repeat(64);
const CAROL = 'c'.repeat(64);
const R1 = '11111111-1111-4111-8111-111111111111';
const R2 = '22222222-2222-4222-8222-222222222222';
const S1 = '33333333-3333-4333-8333-333333333333';
const ROOM = '44444444-4444-4444-8444-444444444444';

const row = (over = {}) => ({
  recording_id: R1, session_id: S1, room_id: null, started_by: BOB,
  started_at: '2026-11-25T18:00:00.000+00:00', stopped_at: null, participants: [BOB, ME], ...over,
});

class FakeSocket {
  static instances = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.bufferedAmount = 0;
    this.sent = [];
    FakeSocket.instances.push(this);
  }
  send(data) { this.sent.push(data); }
  close(code) { this.serverClose(code ?? 1005); }
  serverOpen() {
    this.readyState = 1;
    this.onopen?.({});
  }
  serverSend(obj) { this.onmessage?.({ data: encodeControl(obj) }); }
  serverClose(code) {
    this.readyState = 3;
    this.onclose?.({ code, reason: '' });
  }
}

const timers = [];

function makeClient(options = {}) {
  FakeSocket.instances = [];
  const client = new RelayClient({
    url: 'ws://relay.test:9000/ws', storage: null, WebSocket: FakeSocket,
    setTimeout: (fn) => timers.push(fn), clearTimeout: () => {}, random: () => 0.5, ...options,
  });
  const events = [];
  for (const type of ['state', 'ack', 'error']) client.addEventListener(type, (ev) => events.push({ type, ...ev.detail }));
  return { client, events };
}

test('hello with the recording and rooms features is the first message of every connection', () => {
  const { client } = makeClient();
  client.connect();
  const first = FakeSocket.instances[0];
  first.serverOpen();
  assert.deepEqual(decodeMessage(first.sent[0]).msg, { type: 'hello', features: ['recording', 'rooms'] });
  assert.deepEqual([...FEATURES], ['recording', 'rooms']);
  first.serverSend({ type: 'identity', identity: ME, token: 'tok' });
  assert.equal(client.recordingAvailable, false, 'not before the ack');
  first.serverSend({ type: 'ack', req_type: 'hello', features: ['recording', 'rooms'] });
  assert.equal(client.recordingAvailable, true);
  assert.equal(client.token, 'tok');
  // The connection drops; the next one says hello again, and waits for its own ack.
  first.serverClose(1006);
  timers.pop()(); // the retry
  const second = FakeSocket.instances.at(-1);
  assert.notEqual(second, first);
  second.serverOpen();
  assert.deepEqual(decodeMessage(second.sent[0]).msg.type, 'hello');
  assert.equal(client.recordingAvailable, false);
});

test('a server that does not know hello: no error shown, no recording', () => {
  const { client, events } = makeClient();
  client.connect();
  FakeSocket.instances[0].serverOpen();
  FakeSocket.instances[0].serverSend({ type: 'error', req_type: 'hello', message: 'Unknown message type' });
  assert.equal(events.filter((e) => e.type === 'error').length, 0);
  assert.equal(client.recordingAvailable, false);
  // Other errors still are.
  FakeSocket.instances[0].serverSend({ type: 'error', req_type: 'start_recording', message: 'Already recording' });
  assert.deepEqual(events.filter((e) => e.type === 'error').map((e) => e.message), ['Already recording']);
});

test('the recordings going on: snapshot, insert, a stop and a delete; forgotten on disconnect', () => {
  const { client, events } = makeClient();
  client.connect();
  const ws = FakeSocket.instances[0];
  ws.serverOpen();
  ws.serverSend({ type: 'identity', identity: ME, token: 't' });
  ws.serverSend({ type: 'snapshot', table: 'recordings', rows: [row()] });
  assert.equal(client.recordings.forCall(S1).recording_id, R1);
  assert.equal(client.recordings.forRoom(ROOM), null);
  ws.serverSend({ type: 'insert', table: 'recordings', row: row({ recording_id: R2, session_id: null, room_id: ROOM }) });
  assert.equal(client.recordings.forRoom(ROOM).recording_id, R2);
  ws.serverSend({ type: 'update', table: 'recordings', row: row({ stopped_at: '2026-11-25T18:00:09.000+00:00' }), old: row() });
  assert.equal(client.recordings.forCall(S1), null, 'a stopped recording is not going on');
  const ops = events.filter((e) => e.type === 'state' && e.table === 'recordings').map((e) => e.op);
  assert.deepEqual(ops, ['snapshot', 'insert', 'update']);
  ws.serverClose(1006);
  assert.equal(client.recordings.forRoom(ROOM), null, 'a new connection gets a new snapshot');
  assert.equal(events.at(-1).op, 'clear');
});

test('RecordingState ignores rows it cannot use and other tables', () => {
  const s = new RecordingState();
  assert.equal(s.apply({ type: 'insert', table: 'users', row: { identity: ME } }), null);
  assert.equal(s.apply({ type: 'insert', table: 'recordings', row: { session_id: S1 } }), null);
  assert.equal(s.apply({ type: 'delete', table: 'recordings', old: {} }), null);
  assert.equal(s.apply({ type: 'insert', table: 'recordings', row: row() }), 'recordings');
  assert.equal(s.apply({ type: 'delete', table: 'recordings', old: row() }), 'recordings');
  assert.equal(s.forCall(S1), null);
  assert.equal(s.forCall(null), null);
});

test('notices: someone else starts, I join a recorded room, it stops while I am still there', () => {
  const started = recordingNotice({ op: 'insert', row: row() }, ME);
  assert.deepEqual(started, { kind: 'recording-started', by: BOB, target: 'call', recordingId: R1 });
  assert.deepEqual(recordingNoticeText(started, (id) => (id === BOB ? 'Bob' : id)),
    { title: 'Recording started', detail: 'Bob is recording this call' });
  // Mine needs no notice; neither does a recording I am not in.
  assert.equal(recordingNotice({ op: 'insert', row: row({ started_by: ME }) }, ME), null);
  assert.equal(recordingNotice({ op: 'insert', row: row({ participants: [BOB, CAROL] }) }, ME), null);
  // Joining a room being recorded: the update that adds me.
  const roomRow = row({ session_id: null, room_id: ROOM, participants: [BOB, CAROL, ME] });
  const joined = recordingNotice({ op: 'update', row: roomRow, old: { ...roomRow, participants: [BOB, CAROL] } }, ME);
  assert.equal(joined.kind, 'recording-joined');
  assert.equal(recordingNoticeText(joined, () => 'Bob').detail, 'Bob is recording this room');
  // Someone else joining is nothing new for me.
  assert.equal(recordingNotice({ op: 'update', row: { ...roomRow, participants: [BOB, ME, CAROL] },
    old: { ...roomRow, participants: [BOB, ME] } }, ME), null);
  // Stopped: told while I am still in the call, unless I stopped it.
  const stopped = { op: 'update', row: row({ stopped_at: '2026-11-25T18:01:00+00:00' }), old: row() };
  assert.equal(recordingNotice(stopped, ME).kind, 'recording-stopped');
  assert.equal(recordingNotice(stopped, ME, { inCall: () => false }), null, 'the call is over: its own notice says so');
  assert.equal(recordingNotice(stopped, ME, { stoppedByMe: (r) => r.recording_id === R1 }), null);
  assert.equal(recordingNotice({ ...stopped, old: row({ stopped_at: '2026-11-25T18:01:00+00:00' }) }, ME), null,
    'an update of a stopped one is not a new stop');
});

test('the Record button: start, or stop what goes on; for a call or a room', () => {
  assert.deepEqual(recordRequest({ sessionId: S1 }, null), { type: 'start_recording', session_id: S1 });
  assert.deepEqual(recordRequest({ sessionId: S1 }, row()), { type: 'stop_recording', session_id: S1 });
  assert.deepEqual(recordRequest({ roomId: ROOM }, null), { type: 'start_recording', room_id: ROOM });
});

test('the list: sizes, durations, names, who may delete, the download URL', () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(812 * 1024), '812 KB');
  assert.equal(formatBytes(2.44 * 1024 * 1024), '2.4 MB');
  assert.equal(formatClock(7400), '0:07');
  assert.equal(formatClock(723000), '12:03');
  assert.equal(formatClock(3723000), '1:02:03');
  const rec = { recording_id: R1, kind: 'call', session_id: S1, room_id: null, started_by: ME,
    started_at: '2026-11-25T18:00:00.000+00:00', stopped_at: '2026-11-25T18:00:07.400+00:00',
    participants: [ME, BOB], bytes: 3 * 1024 * 1024, frames: 220, duration_ms: 7400 };
  const d = describeRecording(rec, ME, (id) => (id === BOB ? 'Bob' : '?'));
  assert.deepEqual({ ...d, when: d.when.toISOString() }, {
    id: R1, when: '2026-11-25T18:00:00.000Z', kind: 'Call', people: ['you', 'Bob'], duration: '0:07',
    size: '3.0 MB', canDelete: true, going: false,
  });
  const theirs = describeRecording({ ...rec, kind: 'room', started_by: BOB, stopped_at: null, duration_ms: null }, ME, () => 'Bob');
  assert.equal(theirs.kind, 'Room');
  assert.equal(theirs.canDelete, false);
  assert.equal(theirs.duration, 'recording…');
  assert.equal(describeRecording({ ...rec, bytes: 0 }, ME, () => 'Bob').size, '—');
  assert.equal(downloadUrl('ws://relay.test:9000/ws', R1, 'tok a&b'),
    `http://relay.test:9000/recordings/${R1}.mp4?token=tok+a%26b`);
  assert.equal(downloadUrl('wss://call.example/ws?x=1', R1, 't'), `https://call.example/recordings/${R1}.mp4?token=t`);
});
