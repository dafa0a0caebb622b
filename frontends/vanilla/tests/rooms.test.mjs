// Room state, join links and the room the page wants to be in (lib/rooms.js).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  ROOM_CHAT_LIMIT,
  RoomIntent,
  RoomState,
  isRoomId,
  isVideoRoom,
  roomFromSearch,
  roomLink,
  withoutRoom,
} from '../lib/rooms.js';

const ME = 'a'.repeat(64);
const BOB = 'b'.repeat(64);
const CAROL = 'c'.repeat(64);
const ROOM = '2f1c7e0a-4b7d-4f43-9a51-0c6a1d2e3f40';
const OTHER_ROOM = '9d0e8a6b-1111-4c2d-8e3f-123456789abc';

function member(identity, joinedAt, extra = {}) {
  return { room_id: ROOM, identity, joined_at: joinedAt, mic: true, camera: true, screen: false, hand: false, pinned: null, ...extra };
}

function joined(state) {
  state.apply({ type: 'snapshot', table: 'rooms', rows: [{ room_id: ROOM, name: 'standup', creator: BOB, call_type: 'Video', private: false }] }, ME);
  state.apply({
    type: 'snapshot',
    table: 'room_members',
    rows: [member(ME, '2024-05-01T10:00:02.000Z'), member(BOB, '2024-05-01T10:00:00.000Z')],
  }, ME);
  state.apply({
    type: 'snapshot',
    table: 'room_messages',
    rows: [
      { id: '12', room_id: ROOM, sender: BOB, text: 'second', sent_at: '2024-05-01T10:00:05.000Z' },
      { id: '9', room_id: ROOM, sender: BOB, text: 'first', sent_at: '2024-05-01T10:00:04.000Z' },
    ],
  }, ME);
  state.apply({ type: 'room_speaker', room_id: ROOM, speaker: null }, ME);
  state.apply({ type: 'room_layers', room_id: ROOM, full: true, thumb: false }, ME);
}

test('a member snapshot fills the room, its members in join order, chat ascending, layers', () => {
  const s = new RoomState();
  joined(s);
  assert.equal(s.roomId, ROOM);
  assert.equal(s.room.name, 'standup');
  assert.ok(isVideoRoom(s.room));
  assert.deepEqual(s.memberIds(), [BOB, ME], 'the newest-first chat snapshot and any member order are sorted');
  assert.deepEqual(s.messages.map((m) => m.text), ['first', 'second']);
  assert.deepEqual(s.layers, { full: true, thumb: false });
  assert.equal(s.speaker, null);
});

test('member events, speaker changes remember the previous speaker, chat is bounded', () => {
  const s = new RoomState();
  joined(s);
  assert.equal(s.apply({ type: 'insert', table: 'room_members', row: member(CAROL, '2024-05-01T10:00:09.000Z') }, ME), 'room_members');
  assert.deepEqual(s.memberIds(), [BOB, ME, CAROL]);
  s.apply({ type: 'update', table: 'room_members', row: member(CAROL, '2024-05-01T10:00:09.000Z', { mic: false, hand: true }), old: {} }, ME);
  assert.equal(s.members.get(CAROL).mic, false);
  assert.equal(s.members.get(CAROL).hand, true);
  s.apply({ type: 'room_speaker', room_id: ROOM, speaker: BOB }, ME);
  s.apply({ type: 'room_speaker', room_id: ROOM, speaker: CAROL }, ME);
  assert.equal(s.speaker, CAROL);
  assert.equal(s.previousSpeaker, BOB);
  assert.equal(s.apply({ type: 'room_speaker', room_id: OTHER_ROOM, speaker: ME }, ME), null, 'another room');
  assert.equal(s.speaker, CAROL);
  assert.equal(s.apply({ type: 'delete', table: 'room_members', old: member(CAROL, 'x') }, ME), 'room_members');
  assert.deepEqual(s.memberIds(), [BOB, ME]);
  for (let i = 100; i < 100 + ROOM_CHAT_LIMIT + 5; i++) {
    s.apply({ type: 'insert', table: 'room_messages', row: { id: String(i), room_id: ROOM, sender: BOB, text: `m${i}` } }, ME);
  }
  assert.equal(s.messages.length, ROOM_CHAT_LIMIT);
  assert.equal(s.messages.at(-1).text, `m${100 + ROOM_CHAT_LIMIT + 4}`);
  assert.equal(s.apply({ type: 'insert', table: 'room_messages', row: { id: '7', room_id: OTHER_ROOM, text: 'x' } }, ME), null);
  assert.equal(s.apply({ type: 'insert', table: 'room_messages', row: { id: 'seven', room_id: ROOM, text: 'x' } }, ME), null);
});

test('the delete of my own member row ends the room for me; other tables are not touched', () => {
  const s = new RoomState();
  joined(s);
  s.apply({ type: 'insert', table: 'room_invites', row: { room_id: ROOM, invitee: CAROL, inviter: BOB } }, ME);
  assert.ok(s.isInvited(CAROL));
  assert.equal(s.apply({ type: 'delete', table: 'room_members', old: member(ME, 'x') }, ME), 'room_members');
  assert.equal(s.room, null);
  assert.equal(s.members.size, 0);
  assert.equal(s.messages.length, 0);
  assert.equal(s.layers, null);
  assert.equal(s.apply({ type: 'snapshot', table: 'users', rows: [] }, ME), null, 'not a room table');
  assert.equal(s.apply({ type: 'room_layers', room_id: ROOM, full: true, thumb: true }, ME), null, 'not in it any more');
});

test('invitations: mine, oldest first; a member also sees those of the room; clear() forgets all', () => {
  const s = new RoomState();
  s.apply({
    type: 'snapshot',
    table: 'room_invites',
    rows: [
      { room_id: OTHER_ROOM, invitee: ME, inviter: CAROL, created_at: '2024-05-01T10:00:03.000Z', room_name: 'later', call_type: 'Voice' },
      { room_id: ROOM, invitee: ME, inviter: BOB, created_at: '2024-05-01T10:00:01.000Z', room_name: 'standup', call_type: 'Video' },
    ],
  }, ME);
  assert.deepEqual(s.invitesFor(ME).map((i) => i.room_name), ['standup', 'later']);
  s.apply({ type: 'delete', table: 'room_invites', old: { room_id: ROOM, invitee: ME } }, ME);
  assert.deepEqual(s.invitesFor(ME).map((i) => i.room_name), ['later']);
  joined(s);
  s.apply({ type: 'insert', table: 'room_invites', row: { room_id: ROOM, invitee: CAROL, inviter: BOB } }, ME);
  assert.ok(s.isInvited(CAROL));
  assert.ok(!s.isInvited(BOB));
  assert.deepEqual(s.invitesFor(ME).map((i) => i.room_name), ['later'], 'invitations of others are not mine');
  s.clear();
  assert.equal(s.invites.size, 0);
  assert.equal(s.room, null);
});

test('a rooms snapshot for another room starts afresh', () => {
  const s = new RoomState();
  joined(s);
  s.apply({ type: 'snapshot', table: 'rooms', rows: [{ room_id: OTHER_ROOM, name: 'next', call_type: 'Voice' }] }, ME);
  assert.equal(s.roomId, OTHER_ROOM);
  assert.equal(s.members.size, 0);
  assert.ok(!isVideoRoom(s.room));
  assert.equal(s.apply({ type: 'insert', table: 'room_members', row: member(BOB, 'x') }, ME), null, 'a row of the old room');
});

test('join links: parse, build, remove; only uuids are rooms', () => {
  assert.ok(isRoomId(ROOM));
  assert.ok(isRoomId(ROOM.replaceAll('-', '').toUpperCase()));
  assert.ok(!isRoomId('standup'));
  assert.deepEqual(roomFromSearch(`?room=${ROOM}&key=abc_DEF-1`), { roomId: ROOM, key: 'abc_DEF-1' });
  assert.deepEqual(roomFromSearch(`?room=${ROOM.toUpperCase()}`), { roomId: ROOM, key: null });
  assert.equal(roomFromSearch('?room=nope&key=x'), null);
  assert.equal(roomFromSearch(''), null);
  const link = roomLink('https://call.example/app/?relay=ws%3A%2F%2Fx#top', ROOM, 'k/+=');
  const url = new URL(link);
  assert.equal(url.searchParams.get('room'), ROOM);
  assert.equal(url.searchParams.get('key'), 'k/+=', 'the key survives URL encoding');
  assert.equal(url.searchParams.get('relay'), 'ws://x', 'other parameters are kept');
  assert.equal(url.hash, '');
  assert.equal(new URL(roomLink(link, ROOM)).searchParams.has('key'), false, 'a public room has no key');
  assert.equal(withoutRoom(link), 'https://call.example/app/?relay=ws%3A%2F%2Fx');
});

test('intent: a link joins once per connection, again after a reconnect, not when already in', () => {
  const intent = new RoomIntent(`https://h/?room=${ROOM}&key=sesame`);
  assert.deepEqual(intent.wanted, { roomId: ROOM, key: 'sesame' });
  intent.connected();
  assert.deepEqual(intent.joinRequest(null), { type: 'join_room', room_id: ROOM, key: 'sesame' });
  assert.equal(intent.joinRequest(null), null, 'sent already on this connection');
  assert.equal(intent.acked({ req_type: 'join_room', room_id: ROOM, key: 'sesame' }), null, 'the URL is right already');
  intent.connected(); // the connection dropped and came back: the server ended the membership
  assert.deepEqual(intent.joinRequest(null), { type: 'join_room', room_id: ROOM, key: 'sesame' });
  intent.connected();
  assert.equal(intent.joinRequest(ROOM), null, 'still a member (the server kept us): nothing to do');
  assert.equal(new RoomIntent('https://h/').joinRequest(null), null, 'no link, no join');
});

test('intent: create and join acks set the link, errors and leaving clear it', () => {
  const intent = new RoomIntent('https://h/?x=1');
  const url = intent.acked({ req_type: 'create_room', room_id: ROOM, key: 'k1' });
  assert.equal(url, `https://h/?x=1&room=${ROOM}&key=k1`);
  assert.equal(intent.link(), url);
  assert.equal(intent.acked({ req_type: 'leave_room' }), null, 'no room id: ignored');
  assert.equal(intent.joinFailed(ROOM), null, 'a join failing while we are in the room (an invitation) keeps it');
  assert.equal(intent.gone(), 'https://h/?x=1');
  assert.equal(intent.link(), null);
  const opened = new RoomIntent(`https://h/?room=${ROOM}`);
  opened.connected();
  opened.joinRequest(null);
  assert.equal(opened.joinFailed(null), 'https://h/', 'Room not found: the link is dropped');
  opened.connected();
  assert.equal(opened.joinRequest(null), null, 'and not tried again');
  const invited = new RoomIntent('https://h/');
  assert.equal(invited.acked({ req_type: 'join_room', room_id: ROOM.toUpperCase(), key: 'k2' }), `https://h/?room=${ROOM}&key=k2`,
    'joining by invitation gives the key for the link');
});
