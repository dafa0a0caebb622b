// The connection-quality verdict (lib/quality.js).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { QualityMeter } from '../lib/quality.js';

const EXPECT = { videoFps: 15, audioFps: 20, videoOn: true };
const summary = (o = {}) => ({
  videoFpsReceived: 15, audioFpsReceived: 20, jitterDepthMs: 90, droppedFrames: 0, concealedFrames: 0,
  videoFramesReceived: 0, videoFramesLost: 0, ...o,
});

/** A meter that has already seen one second of audio and video flowing. */
function flowing() {
  const q = new QualityMeter();
  q.update(summary(), 0, EXPECT);
  return q;
}

test('the first second of media is not judged: its rate window is only partly filled', () => {
  const q = new QualityMeter();
  const first = q.update(summary({ videoFpsReceived: 3, audioFpsReceived: 6 }), 0, EXPECT);
  assert.equal(first.level, 'idle');
  assert.equal(q.update(summary(), 1000, EXPECT).level, 'good');
});

test('full rates, no loss: good', () => {
  const q = flowing();
  assert.deepEqual(q.update(summary(), 1000, EXPECT), { level: 'good', reasons: [] });
  assert.equal(q.update(summary({ videoFpsReceived: 12, audioFpsReceived: 19 }), 2000, EXPECT).level, 'good');
});

test('low video rate: fair, then poor', () => {
  const q = flowing();
  const fair = q.update(summary({ videoFpsReceived: 8 }), 1000, EXPECT);
  assert.equal(fair.level, 'fair');
  assert.match(fair.reasons[0], /video 8 of 15 fps/);
  assert.equal(q.update(summary({ videoFpsReceived: 3 }), 2000, EXPECT).level, 'poor');
});

test('video frames lost on the way lower the verdict', () => {
  const q = flowing();
  q.update(summary({ videoFramesReceived: 100, videoFramesLost: 0 }), 1000, EXPECT);
  assert.equal(q.update(summary({ videoFramesReceived: 113, videoFramesLost: 2 }), 2000, EXPECT).level, 'fair');
  const poor = q.update(summary({ videoFramesReceived: 120, videoFramesLost: 8 }), 3000, EXPECT);
  assert.equal(poor.level, 'poor');
  assert.match(poor.reasons.join(), /46 % of video frames lost/);
});

test('audio gaps and losses count; the loss is a rate between updates', () => {
  const q = flowing();
  assert.equal(q.update(summary({ audioFpsReceived: 16 }), 1000, EXPECT).level, 'fair');
  assert.equal(q.update(summary({ audioFpsReceived: 10 }), 2000, EXPECT).level, 'poor');
  // 1 lost frame a second of 20 (5 %) is fair; 4 a second (20 %) poor.
  q.update(summary({ concealedFrames: 100 }), 3000, EXPECT);
  assert.equal(q.update(summary({ concealedFrames: 101 }), 4000, EXPECT).level, 'fair');
  const poor = q.update(summary({ concealedFrames: 101, droppedFrames: 4 }), 5000, EXPECT);
  assert.equal(poor.level, 'poor');
  assert.match(poor.reasons.join(), /20 % of audio lost or late/);
  assert.equal(q.update(summary({ concealedFrames: 101, droppedFrames: 4 }), 6000, EXPECT).level, 'good');
});

test('a deep jitter buffer is a delay worth showing', () => {
  const q = flowing();
  assert.equal(q.update(summary({ jitterDepthMs: 300 }), 1000, EXPECT).level, 'fair');
  assert.equal(q.update(summary({ jitterDepthMs: 450 }), 2000, EXPECT).level, 'poor');
});

test('what the peer does not send does not count; nothing at all is idle', () => {
  const q = flowing();
  // Camera off: no video expected.
  assert.equal(q.update(summary({ videoFpsReceived: 0 }), 1000, { ...EXPECT, videoOn: false }).level, 'good');
  // Muted: no audio; the video alone decides (once it has been on for a whole update again).
  assert.equal(q.update(summary({ audioFpsReceived: 0 }), 2000, EXPECT).level, 'idle');
  assert.equal(q.update(summary({ audioFpsReceived: 0, videoFpsReceived: 4 }), 3000, EXPECT).level, 'poor');
  const idle = q.update(summary({ audioFpsReceived: 0, videoFpsReceived: 0 }), 4000, { ...EXPECT, videoOn: false });
  assert.equal(idle.level, 'idle');
  assert.equal(q.level, 'idle');
});

test('no connection to the server is poor whatever the last figures say', () => {
  const q = flowing();
  const r = q.update(summary(), 1000, { ...EXPECT, connected: false });
  assert.equal(r.level, 'poor');
  assert.match(r.reasons[0], /not connected/);
});
