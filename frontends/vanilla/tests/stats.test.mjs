// MediaStats / RateMeter with a fake clock (milliseconds).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { MediaStats, RateMeter, StreamRates } from '../lib/stats.js';

test('rate meter counts events in a sliding one-second window', () => {
  const m = new RateMeter(1000);
  for (let t = 0; t < 2000; t += 100) m.add(t, t);
  assert.equal(m.rate(1950), 10);
  assert.equal(m.last, 1900);
  assert.equal(m.averageBytes(1950), (1000 + 1900) / 2);
  assert.equal(m.rate(3000), 0);
  assert.equal(m.averageBytes(3000), 0);
});

test('media stats: counters, fps, sizes and jitter figures', () => {
  const s = new MediaStats();
  for (let i = 0; i < 15; i++) s.videoSent(i * 66, 20000 + i);
  for (let i = 0; i < 5; i++) s.videoReceived(500 + i * 100, 1000 * (i + 1));
  s.audioSent(0, 1600);
  s.audioReceived(10, 1600);
  s.updateJitter({ depthMs: 87.4, late: 1, duplicates: 2, dropped: 3, concealed: 4 });
  const sum = s.summary(990);
  assert.equal(sum.videoFpsSent, 15);
  assert.equal(sum.videoFpsReceived, 5);
  assert.equal(sum.videoLastReceivedBytes, 5000);
  assert.equal(sum.videoAvgReceivedBytes, 3000);
  assert.equal(sum.jitterDepthMs, 87);
  assert.equal(sum.droppedFrames, 6);
  assert.equal(sum.concealedFrames, 4);
  assert.equal(s.videoFramesSent, 15);
  assert.equal(s.videoFramesReceived, 5);
  assert.equal(s.audioFramesSent, 1);
  assert.equal(s.audioFramesReceived, 1);
});

test('media stats: picture size of the last frame each way', () => {
  const s = new MediaStats();
  assert.deepEqual(s.summary(0).videoSentSize, [0, 0]);
  s.videoSent(0, 1000, 640, 360);
  s.videoSent(10, 1000, 480, 270);
  s.videoReceived(20, 1000, 320, 240);
  assert.deepEqual(s.summary(30).videoSentSize, [480, 270]);
  assert.deepEqual(s.summary(30).videoReceivedSize, [320, 240]);
  assert.equal(s.videoReceivedWidth, 320);
  assert.equal(s.videoReceivedHeight, 240);
  s.videoReceived(40, 1000, 'x');
  assert.deepEqual([s.videoReceivedWidth, s.videoReceivedHeight], [0, 0], 'bad header fields read as 0');
});

test('media stats: frames lost on the way are the gaps in seq, per kind and per call', () => {
  const s = new MediaStats();
  for (const seq of [0, 1, 2, 5, 6, 6, 4, 10]) s.videoReceived(0, 100, 640, 360, seq);
  assert.equal(s.videoFramesLost, 2 + 3, 'gaps 3-4 and 7-9; the duplicate and the late 4 add nothing');
  for (const seq of [7, 8, 9]) s.audioReceived(0, 1600, seq);
  assert.equal(s.audioFramesLost, 0, 'the first frame of a stream is not compared with anything');
  s.resetSequences();
  s.videoReceived(0, 100, 640, 360, 0);
  s.videoReceived(0, 100, 640, 360, 1);
  assert.equal(s.videoFramesLost, 5, 'a new call starts from 0 again');
  // A sender restarting its counter within a call is followed, not counted as loss.
  for (const seq of [500, 501, 3, 4, 6]) s.audioReceived(0, 1600, seq);
  assert.equal(s.audioFramesLost, 1, 'only seq 5 is missing');
  s.audioReceived(0, 1600, 'x');
  assert.equal(s.summary(0).audioFramesLost, 1);
});

test('room streams: losses per sender and layer; a gap after a pause is no loss', () => {
  const s = new MediaStats();
  // Two senders interleaved, each with its own seq: nothing lost.
  for (let i = 0; i < 5; i++) {
    s.videoReceived(i * 66, 100, 640, 360, i, 'a', 'full');
    s.videoReceived(i * 66 + 1, 100, 160, 90, 10 + i, 'b', 'thumb');
  }
  assert.equal(s.videoFramesLost, 0);
  assert.deepEqual(s.videoFramesFrom, { a: 5, b: 5 });
  assert.equal(s.thumbFramesReceived, 5);
  assert.equal(s.videoFramesReceived, 10);
  assert.deepEqual([s.videoReceivedWidth, s.videoReceivedHeight], [640, 360], 'the size is the full picture\'s');
  s.videoReceived(400, 100, 640, 360, 7, 'a', 'full');
  assert.equal(s.videoFramesLost, 2, 'seq 5 and 6 of a went missing');
  s.videoReceived(3000, 100, 640, 360, 90, 'a', 'full');
  assert.equal(s.videoFramesLost, 2, 'a full layer resumed after a pause (main switched back)');
  // Audio with silence suppression: the seq counts what was sent, the server forwards the loudest.
  for (const [t, seq] of [[0, 0], [50, 1], [100, 3], [2000, 40], [2050, 41]]) s.audioReceived(t, 1600, seq, 'a');
  assert.equal(s.audioFramesLost, 1);
  assert.deepEqual(s.audioFramesFrom, { a: 5 });
  s.videoSent(0, 900, 160, 90, 'thumb');
  s.videoSent(10, 9000, 640, 360, 'full');
  assert.equal(s.thumbFramesSent, 1);
  assert.equal(s.videoFramesSent, 1, 'thumbnails are counted apart');
  assert.deepEqual(s.summary(20).thumbSentSize, [160, 90]);
  assert.deepEqual(s.summary(20).videoSentSize, [640, 360]);
});

test('stream rates: steady streams against their nominal rate; a stopped stream is no slow one', () => {
  const r = new StreamRates();
  assert.equal(r.share(0), null);
  for (let t = 0; t <= 3000; t += 1000 / 15) r.add('a/full', t, 15);
  for (let t = 0; t <= 3000; t += 1000 / 3.75) r.add('b/thumb', t, 7.5);
  assert.ok(Math.abs(r.share(3000) - (1 + 0.5) / 2) < 0.05, `share ${r.share(3000)}`);
  // b stops; its last second still counts at its own rate, then it is dropped.
  assert.ok(Math.abs(r.share(3500) - 0.75) < 0.05);
  for (let t = 3000 + 1000 / 15; t <= 5000; t += 1000 / 15) r.add('a/full', t, 15);
  assert.ok(Math.abs(r.share(5000) - 1) < 0.05, `share ${r.share(5000)}`);
  r.add('c/full', 5000, 15);
  assert.ok(Math.abs(r.share(5000) - 1) < 0.05, 'a stream that just started is not judged yet');
});
