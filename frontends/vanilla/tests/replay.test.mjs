// Replay of a recording with a fake audio clock: fetching chunks, one clock for audio and video,
// pause, seek, waiting for data, the end, and the speaker view.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { AHEAD_MS, CHUNK_MAX_MS, ChunkPlanner, FIRST_CHUNK_MS, Replay, START_LEAD_S } from '../lib/replay.js';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const C = 'c'.repeat(64);
const RATE = 16000;
const PCM = new Uint8Array(1600); // 50 ms at 16 kHz, mono
const near = (x, y) => Math.abs(x - y) < 1e-6;

const audio = (from, t, rms = 0.1) => ['audio', { from, t, seq: t / 50, sample_rate: RATE, channels: 1, rms }, PCM];
const video = (from, t, layer = 'full', size = 100) =>
  ['video', { from, t, seq: t, width: 640, height: 360, layer }, new Uint8Array(size)];

/** Everything each member sent in [from, to): audio every 50 ms, video every 100 ms. */
function frames(members, from, to, { loud = null, layers = { } } = {}) {
  const out = [];
  for (let t = from; t < to; t += 50) {
    for (const m of members) {
      out.push(audio(m, t, m === loud ? 0.5 : 0.001));
      if (t % 100 === 0) for (const layer of layers[m] ?? ['full']) out.push(video(m, t, layer));
    }
  }
  return out;
}

/** Answer every request the replay makes at `now`. */
function fetchAll(replay, all, now) {
  for (let req = replay.tick(now).request; req; req = replay.tick(now).request) answer(replay, req, all, now);
}

/** Answer the request the replay made, as the server does: the frames, then the ack. */
function answer(replay, request, all, now, durationMs = replay.durationMs) {
  for (const [kind, header, payload] of all) {
    if (header.t >= request.from_ms && header.t < request.to_ms) replay.add(kind, header, payload);
  }
  replay.chunkDone({ req_type: 'get_recording', ...request, duration_ms: durationMs }, now);
}

test('chunks: one request at a time, small first, then as long as the server allows, ahead of the playhead', () => {
  const p = new ChunkPlanner({ durationMs: 20000 });
  const first = p.next(0);
  assert.deepEqual(first, { from_ms: 0, to_ms: FIRST_CHUNK_MS });
  assert.equal(p.next(0), null, 'one in flight');
  for (let i = 0; i < 10; i++) p.accept(1000);
  assert.equal(p.done({ duration_ms: 20000 }), true);
  assert.deepEqual(p.next(0), { from_ms: 1000, to_ms: 1000 + CHUNK_MAX_MS });
  p.done({});
  assert.deepEqual(p.next(0), { from_ms: 4000, to_ms: 7000 });
  p.done({});
  assert.equal(p.next(0), null, `${AHEAD_MS} ms ahead of the playhead is enough`);
  assert.deepEqual(p.next(2000), { from_ms: 7000, to_ms: 10000 });
  p.done({});
  // The last window ends just after the duration (a frame at t = duration is the last one).
  p.until = 19000;
  assert.deepEqual(p.next(18000), { from_ms: 19000, to_ms: 20001 });
  p.done({});
  assert.equal(p.complete, true);
  assert.equal(p.next(19999), null);
});

test('chunks: heavy frames make the next chunks shorter', () => {
  const p = new ChunkPlanner({ durationMs: 60000, targetBytes: 4 << 20 });
  p.next(0);
  for (let i = 0; i < 100; i++) p.accept(80 << 10); // 8 MB in 1 s: a room of many
  p.done({});
  const next = p.next(0);
  assert.equal(next.to_ms - next.from_ms, 512, 'about 4 MB a chunk');
});

test('a seek outside what is fetched drops the request in flight and starts over there', () => {
  const r = new Replay({ durationMs: 20000, participants: [A, B] });
  r.play(0);
  assert.equal(r.state, 'buffering', 'nothing fetched yet');
  const req = r.tick(0).request;
  assert.deepEqual(req, { from_ms: 0, to_ms: 1000 });
  r.seek(12000, 0.01);
  // The stale request's frames still arrive: not kept. Its ack frees the line.
  assert.equal(r.add(...audio(A, 0)), false);
  r.chunkDone({ ...req, duration_ms: 20000 }, 0.02);
  assert.equal(r.audio.length, 0);
  const next = r.tick(0.03).request;
  assert.deepEqual(next, { from_ms: 12000, to_ms: 13000 });
  answer(r, next, frames([A, B], 12000, 13000), 0.05);
  assert.equal(r.state, 'playing', 'data at the playhead: playing');
  const t = r.tick(0.05 + START_LEAD_S + 0.2);
  assert.ok(Math.abs(r.position(0.05 + START_LEAD_S + 0.2) - 12200) < 1e-6);
  assert.ok(t.audio.every((a) => a.frame.t >= 12000), 'audio from the seek point on');
  assert.ok(t.changed.has(A) && r.latest.get(A).full.t === 12200, 'the picture at the playhead');
});

test('one clock: audio starts where its t meets the audio clock; video shows the frame at the playhead', () => {
  const r = new Replay({ durationMs: 2000, participants: [A, B] });
  const all = frames([A, B], 0, 2001);
  r.play(1.0);
  answer(r, r.tick(1.0).request, all, 1.0);
  assert.equal(r.state, 'playing');
  const start = 1.0 + START_LEAD_S; // the clock: t = 0 at `start`
  const tick = r.tick(1.02);
  // Audio up to 400 ms ahead is handed over, each at start + t.
  assert.deepEqual([...new Set(tick.audio.map((a) => a.frame.t))], [0, 50, 100, 150, 200, 250, 300, 350, 400]);
  for (const { frame, when } of tick.audio) assert.ok(near(when, start + frame.t / 1000), `${frame.t} at ${when}`);
  assert.equal(r.tick(1.03).audio.length, 0, 'nothing twice');
  // Video: the newest frame at or before the playhead.
  r.tick(start + 0.25);
  assert.equal(r.latest.get(B).full.t, 200);
  assert.equal(r.frameFor(B, 'full', r.position(start + 0.25)).t, 200);
  assert.equal(r.videoState(B, r.position(start + 0.25)), 'on');
});

test("a sender's frames play back to back when their t wobble, and resync after a gap", () => {
  const r = new Replay({ durationMs: 3000, participants: [A] });
  // Arrival times with jitter: 0, 47, 103, 151 ms, then a pause (silence suppression), 900 ms.
  const all = [0, 47, 103, 151, 900].map((t) => audio(A, t));
  r.play(0);
  answer(r, r.tick(0).request, all, 0);
  const got = [...r.tick(0).audio, ...r.tick(START_LEAD_S + 0.6).audio];
  const whens = got.map((a) => Math.round((a.when - START_LEAD_S) * 1000));
  assert.deepEqual(whens, [0, 50, 100, 150, 900]);
});

test('audio already due is skipped rather than played late', () => {
  const r = new Replay({ durationMs: 3000, participants: [A] });
  r.play(0);
  fetchAll(r, frames([A], 0, 3001), 0);
  // The page was busy for a second: the first tick comes late.
  const late = r.tick(START_LEAD_S + 1.0);
  assert.ok(late.audio.length > 0);
  assert.ok(late.audio.every((a) => a.when >= START_LEAD_S + 1.0), 'nothing scheduled in the past');
  assert.ok(late.audio[0].frame.t >= 1000);
});

test('pause holds the playhead and silences; resume plays on from there', () => {
  const r = new Replay({ durationMs: 5000, participants: [A, B] });
  const all = frames([A, B], 0, 5001);
  r.play(0);
  fetchAll(r, all, 0);
  r.tick(START_LEAD_S + 1.0);
  r.pause(START_LEAD_S + 1.0);
  assert.equal(r.state, 'paused');
  assert.ok(near(r.position(START_LEAD_S + 1.0), 1000));
  assert.ok(near(r.position(50), 1000), 'the clock runs on, the playhead does not');
  assert.equal(r.tick(50).audio.length, 0);
  r.play(50);
  const resumed = r.tick(50);
  assert.equal(resumed.audio[0].frame.t, 1000, 'from the pause point, not before');
  assert.ok(near(resumed.audio[0].when, 50 + START_LEAD_S));
  assert.ok(near(r.position(50 + START_LEAD_S + 0.5), 1500));
});

test('running out of data waits for it, then plays on; the end stops, play starts over', () => {
  const r = new Replay({ durationMs: 1500, participants: [A] });
  const all = frames([A], 0, 1501);
  r.play(0);
  const first = r.tick(0).request;
  answer(r, first, all, 0);
  const second = r.tick(0).request;
  assert.deepEqual(second, { from_ms: 1000, to_ms: 1501 });
  // The second chunk is slow: the playhead reaches 1000 ms and waits there.
  const t = r.tick(START_LEAD_S + 1.2);
  assert.equal(r.state, 'buffering');
  assert.ok(t.stateChanged);
  assert.equal(r.position(START_LEAD_S + 1.3), 1000);
  answer(r, second, all, START_LEAD_S + 1.4);
  assert.equal(r.state, 'playing');
  assert.ok(near(r.position(2 * START_LEAD_S + 1.4 + 0.2), 1200));
  r.tick(2 * START_LEAD_S + 1.4 + 0.6);
  assert.equal(r.state, 'ended');
  assert.equal(r.position(99), 1500);
  r.play(100);
  assert.equal(r.state, 'playing', 'all of it is still here');
  assert.equal(r.position(100 + START_LEAD_S), 0);
});

test('a recording still going on ends where its frames end', () => {
  const r = new Replay({ durationMs: null, participants: [A] });
  const all = frames([A], 0, 1700);
  r.play(0);
  answer(r, r.tick(0).request, all, 0, null);
  const next = r.tick(0.01).request;
  assert.deepEqual(next, { from_ms: 1000, to_ms: 4000 });
  answer(r, next, all, 0.02, null);
  const empty = r.tick(0.03).request;
  answer(r, empty, all, 0.04, null);
  assert.equal(r.planner.complete, true, 'an empty chunk: nothing more yet');
  assert.equal(r.endMs, 1650);
  r.tick(START_LEAD_S + 5);
  assert.equal(r.state, 'ended');
});

test('seek within what is fetched keeps it and shows the picture at the new playhead', () => {
  const r = new Replay({ durationMs: 3000, participants: [A, B] });
  r.play(0);
  const all = frames([A, B], 0, 3001);
  answer(r, r.tick(0).request, all, 0);
  answer(r, r.tick(0).request, all, 0);
  r.pause(0.5);
  r.seek(2500, 1);
  assert.equal(r.tick(1).request, null, 'nothing to fetch: it is all here');
  assert.equal(r.latest.get(A).full.t, 2500);
  assert.equal(r.state, 'paused');
  assert.ok(r.audio.length > 0);
});

test('frames far behind the playhead are let go; seeking back there fetches them again', () => {
  const r = new Replay({ durationMs: 10000, participants: [A] });
  const all = frames([A], 0, 10001);
  r.play(0);
  let now = 0;
  while (r.position(now) < 6000) {
    const req = r.tick(now).request;
    if (req) answer(r, req, all, now);
    now += 0.05;
  }
  assert.ok(r.audio[0].t >= 3000, `kept from ${r.audio[0].t}`);
  r.seek(500, now);
  const req = r.tick(now).request;
  assert.equal(req.from_ms, 500);
});

test('speaker view: the loudest member is large, as live; thumbnails mark a large room', () => {
  const r = new Replay({ durationMs: 4000, participants: [A, B, C] });
  const all = [...frames([A, B, C], 0, 2000, { loud: B }), ...frames([A, B, C], 2000, 4001, { loud: C })]
    .sort((x, y) => x[1].t - y[1].t);
  r.play(0);
  let now = 0;
  const mains = [];
  while (r.state !== 'ended') {
    const t = r.tick(now);
    if (t.request) answer(r, t.request, all, now);
    mains.push(r.layout().main);
    now += 0.1;
  }
  assert.equal(mains.find((m) => m !== A), B, 'B talks first');
  assert.equal(mains.at(-1), C, 'then C');
  assert.deepEqual(r.layout().strip, [A, B]);
  assert.equal(r.previousSpeaker, B);
  assert.equal(r.isTalking(C, 4000), true);
  assert.equal(r.isTalking(A, 4000), false);
  assert.equal(r.layout(A).main, A, 'a pin wins');

  // Thumbnails (a large room): only mains sent their full picture; nobody talks.
  const big = new Replay({ durationMs: 1000, participants: [A, B, C] });
  big.play(0);
  answer(big, big.tick(0).request, frames([A, B, C], 0, 1001, { layers: { [A]: ['thumb'], [B]: ['thumb'], [C]: ['full', 'thumb'] } }), 0);
  big.tick(START_LEAD_S + 0.5);
  assert.equal(big.large, true);
  assert.equal(big.layout().main, C, 'the member whose full layer is there');
  assert.equal(big.frameFor(C, 'full', 500).layer, 'full');
  assert.equal(big.frameFor(B, 'thumb', 500).layer, 'thumb');
  assert.equal(big.frameFor(B, 'full', 500).layer, 'thumb', 'what there is');
});

test('voices only: no pictures; an error reply stops the replay', () => {
  const r = new Replay({ durationMs: 1000, participants: [A] });
  r.play(0);
  const req = r.tick(0).request;
  answer(r, req, frames([A], 0, 1001).filter(([kind]) => kind === 'audio'), 0);
  r.tick(START_LEAD_S + 0.3);
  assert.equal(r.videoState(A, 300), 'none');
  const other = new Replay({ durationMs: 1000, participants: [A] });
  other.play(0);
  other.tick(0);
  other.chunkFailed('Recording not found');
  assert.equal(other.state, 'error');
  assert.equal(other.error, 'Recording not found');
  assert.equal(other.tick(1).request, null);
  other.play(2);
  assert.equal(other.state, 'error');
});

test('a dropped connection: the chunk in flight is asked for again, without doubles', () => {
  const r = new Replay({ durationMs: 3000, participants: [A] });
  const all = frames([A], 0, 3001);
  r.play(0);
  const first = r.tick(0).request;
  for (const f of all.slice(0, 5)) r.add(...f); // part of it, then the socket closes
  r.connectionLost();
  assert.equal(r.audio.length, 0);
  const again = r.tick(0.5).request;
  assert.deepEqual(again, first);
  answer(r, again, all, 0.5);
  assert.equal(r.audio.length, 20, 'each frame once');
  assert.equal(r.state, 'playing');
});
