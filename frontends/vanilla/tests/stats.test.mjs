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
