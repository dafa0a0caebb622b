// MediaStats / RateMeter with a fake clock (milliseconds).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { MediaStats, RateMeter } from '../lib/stats.js';

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
