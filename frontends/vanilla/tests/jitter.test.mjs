// JitterBuffer scheduling with a fake clock (seconds, like AudioContext.currentTime).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { JitterBuffer } from '../lib/jitter.js';

const RATE = 16000;
const FRAME = 0.05; // 50 ms, 800 samples
const EPS = 1e-9;

function frame(seq, value = (seq + 1) / 100) {
  const samples = new Float32Array(800).fill(value);
  return { seq, samples, sampleRate: RATE };
}

const seqs = (decisions) => decisions.map((d) => d.seq);
const near = (a, b) => Math.abs(a - b) < 1e-9;

test('in-order frames play back to back after the start cushion', () => {
  const jb = new JitterBuffer();
  const a = jb.push(frame(0), 0);
  assert.deepEqual(seqs(a), [0]);
  assert.ok(near(a[0].startTime, 0.1), 'first frame gets the 100 ms cushion');
  const b = jb.push(frame(1), 0.05);
  assert.ok(near(b[0].startTime, 0.15), 'next frame starts where the last one ends');
  const c = jb.push(frame(2), 0.1);
  assert.ok(near(c[0].startTime, 0.2));
  assert.equal(jb.statistics(0.1).played, 3);
  assert.equal(c[0].concealed, false);
});

test('frames are played in seq order, waiting briefly for a missing one', () => {
  const jb = new JitterBuffer();
  jb.push(frame(0), 0);
  assert.deepEqual(seqs(jb.push(frame(2), 0.01)), [], '2 waits for 1 while audio is queued');
  const out = jb.push(frame(1), 0.02);
  assert.deepEqual(seqs(out), [1], '2 would start 180 ms ahead: it waits');
  assert.ok(near(out[0].startTime, 0.15));
  const later = jb.poll(0.05);
  assert.deepEqual(seqs(later), [2]);
  assert.ok(near(later[0].startTime, 0.2));
  assert.equal(jb.statistics(0.05).dropped, 0);
});

test('late frames and duplicates are dropped', () => {
  const jb = new JitterBuffer();
  jb.push(frame(0), 0);
  jb.push(frame(1), 0.01);
  assert.deepEqual(jb.push(frame(0), 0.02), [], 'seq already played');
  jb.push(frame(3), 0.03); // queued behind the missing 2
  assert.deepEqual(jb.push(frame(3), 0.04), [], 'seq already queued');
  const s = jb.statistics(0.04);
  assert.equal(s.late, 1);
  assert.equal(s.duplicates, 1);
  assert.equal(s.played, 2);
  assert.equal(s.queued, 1);
});

test('a one-frame gap is concealed with a faded repeat instead of stalling', () => {
  const jb = new JitterBuffer();
  jb.push(frame(0), 0); // 0.10–0.15
  jb.push(frame(1), 0.05); // 0.15–0.20
  assert.deepEqual(jb.push(frame(3), 0.1), []); // 2 is missing
  assert.deepEqual(jb.poll(0.15), [], 'still 50 ms queued: keep waiting for 2');
  const out = jb.poll(0.18); // 20 ms left: give up on 2
  assert.deepEqual(seqs(out), [2, 3]);
  assert.equal(out[0].concealed, true);
  assert.equal(out[1].concealed, false);
  assert.ok(near(out[0].startTime, 0.2) && near(out[1].startTime, 0.25), 'no hole in the timeline');
  const filler = out[0].samples;
  assert.ok(near(filler[0], 0.02), 'starts as the last frame');
  assert.ok(Math.abs(filler[filler.length - 1]) < 0.001, 'fades to silence');
  assert.equal(jb.statistics(0.18).concealed, 1);
  assert.deepEqual(jb.push(frame(2), 0.19), [], 'the missing frame is late now');
});

test('a two-frame gap is repeat then silence; a longer gap resyncs without filler', () => {
  const jb = new JitterBuffer();
  jb.push(frame(0), 0);
  jb.push(frame(1), 0.05);
  jb.push(frame(4), 0.1);
  const out = jb.poll(0.18);
  assert.deepEqual(seqs(out), [2, 3, 4]);
  assert.ok(out[1].samples.every((v) => v === 0), 'second filler frame is silence');

  const jb2 = new JitterBuffer();
  jb2.push(frame(0), 0);
  jb2.push(frame(1), 0.05);
  jb2.push(frame(5), 0.1);
  const out2 = jb2.poll(0.18);
  assert.deepEqual(seqs(out2), [5]);
  assert.ok(near(out2[0].startTime, 0.2));
  const s = jb2.statistics(0.18);
  assert.equal(s.concealed, 0);
  assert.equal(s.lost, 3);
});

test('after running dry, a gap is skipped and the stream restarts with the cushion', () => {
  const jb = new JitterBuffer();
  jb.push(frame(0), 0);
  jb.push(frame(1), 0.05);
  const out = jb.push(frame(3), 1.0); // long silence; 2 never came
  assert.deepEqual(seqs(out), [3]);
  assert.ok(near(out[0].startTime, 1.1));
  assert.equal(jb.statistics(1.0).lost, 1);
  assert.equal(jb.statistics(1.0).concealed, 0);
});

test('nothing starts more than 150 ms ahead; a burst drops its oldest frames', () => {
  const jb = new JitterBuffer();
  const started = [];
  for (let seq = 0; seq < 10; seq++) {
    for (const d of jb.push(frame(seq), 0)) started.push(d);
  }
  for (const d of started) assert.ok(d.startTime <= 0.15 + EPS, `seq ${d.seq} at ${d.startTime}`);
  const s = jb.statistics(0);
  assert.equal(s.played, 2); // 0.10 and 0.15
  assert.equal(s.queued, 1); // the newest waits for room
  assert.equal(s.dropped, 7); // the rest, oldest first
  assert.ok(s.depthMs <= 250 + EPS, `depth ${s.depthMs}`);
  const next = jb.poll(0.05);
  assert.deepEqual(seqs(next), [9]);
  assert.ok(near(next[0].startTime, 0.2));

  // Frames stuck behind a hole are dropped oldest first, keeping the newest.
  const jb2 = new JitterBuffer();
  jb2.push(frame(0), 0);
  let out = [];
  for (let seq = 2; seq <= 7; seq++) out = out.concat(jb2.push(frame(seq), 0.01));
  // 2 and 3 wait for 1; when 4 arrives there is no room, so 2 (the oldest) goes, 1 is given
  // up and 3 plays; each later arrival pushes out the oldest waiting frame; 7 waits.
  assert.deepEqual(seqs(out), [3]);
  assert.ok(out[0].startTime <= 0.01 + 0.15 + EPS);
  assert.equal(jb2.statistics(0.01).dropped, 4);
  assert.equal(jb2.statistics(0.01).queued, 1);
  assert.deepEqual(seqs(jb2.poll(0.06)), [7]);
  assert.deepEqual(jb2.push(frame(1), 0.02), []);
  assert.equal(jb2.statistics(0.02).late, 1);
});

test('steady stream with jitter and bursts never exceeds the cap', () => {
  const jb = new JitterBuffer();
  let now = 0;
  let seq = 0;
  const pattern = [0.05, 0.05, 0.09, 0.01, 0.05, 0.2, 0, 0, 0, 0.05, 0.03, 0.07];
  const pushed = 240;
  for (let i = 0; i < pushed; i++) {
    now += pattern[i % pattern.length];
    for (const d of jb.push(frame(seq++), now)) {
      assert.ok(d.startTime <= now + 0.15 + EPS, `seq ${d.seq} starts ${d.startTime - now}s ahead`);
      assert.ok(d.startTime >= now + 0.02 - EPS, 'never sooner than now + 20 ms');
    }
    assert.ok(jb.statistics(now).depthMs <= 250 + EPS);
    for (const d of jb.poll(now + 0.01)) assert.ok(d.startTime <= now + 0.01 + 0.15 + EPS);
  }
  const s = jb.statistics(now);
  // Every frame is accounted for exactly once.
  assert.equal(s.played + s.late + s.duplicates + s.dropped + s.queued, pushed);
  // Only the 200 ms stall of each 12-frame cycle costs frames (its burst overflows the cap).
  assert.ok(s.played >= 0.75 * pushed, `played ${s.played}, dropped ${s.dropped}`);
});

test('depth counts scheduled and queued audio', () => {
  const jb = new JitterBuffer();
  jb.push(frame(0), 0);
  assert.ok(near(jb.statistics(0).depthMs, 150));
  assert.ok(near(jb.statistics(0.1).depthMs, 50));
  jb.push(frame(2), 0.1); // queued behind the missing 1
  assert.ok(near(jb.statistics(0.1).depthMs, 100));
  assert.equal(jb.statistics(0.2).depthMs, 50, 'played out: only the queued frame is left');
});

test('a sender that restarts its seq counter is followed, bad frames are dropped', () => {
  const jb = new JitterBuffer();
  for (let s = 500; s < 503; s++) jb.push(frame(s), (s - 500) * 0.05);
  const out = jb.push(frame(0), 2.0);
  assert.deepEqual(seqs(out), [0]);
  assert.deepEqual(seqs(jb.push(frame(1), 2.05)), [1]);
  assert.deepEqual(jb.push({ seq: 1.5, samples: new Float32Array(800), sampleRate: RATE }, 2.06), []);
  assert.deepEqual(jb.push({ seq: 9, samples: new Float32Array(0), sampleRate: RATE }, 2.07), []);
  assert.equal(jb.statistics(2.07).dropped, 2);
});
