// The connection-quality verdict (lib/quality.js).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { QualityMeter } from '../lib/quality.js';

const EXPECT = { videoFps: 15, audioFps: 20, videoOn: true };

/**
 * Drives a meter one update per second. Rates are per update; losses are per second and added
 * up into the cumulative counters MediaStats keeps.
 */
class Call {
  constructor() {
    this.q = new QualityMeter();
    this.t = 0;
    this.totals = { droppedFrames: 0, concealedFrames: 0, videoFramesLost: 0, videoFramesReceived: 0 };
  }

  second({ video = 15, audio = 20, depth = 90, audioLost = 0, videoLost = 0, expect = {} } = {}) {
    this.totals.droppedFrames += audioLost;
    this.totals.videoFramesLost += videoLost;
    this.totals.videoFramesReceived += video;
    const summary = { videoFpsReceived: video, audioFpsReceived: audio, jitterDepthMs: depth, ...this.totals };
    this.t += 1000;
    return this.q.update(summary, this.t, { ...EXPECT, videoOn: video > 0, ...expect });
  }

  seconds(n, o) {
    let r;
    for (let i = 0; i < n; i++) r = this.second(o);
    return r;
  }
}

test('the first second of media is not judged: its rate window is only partly filled', () => {
  const c = new Call();
  assert.equal(c.second({ video: 3, audio: 6 }).level, 'idle');
  assert.deepEqual(c.second(), { level: 'good', reasons: [] });
  assert.equal(c.seconds(5, { video: 12, audio: 19 }).level, 'good', 'a busy sender is still good');
});

test('a low video rate: fair, and poor once it stays very low', () => {
  const c = new Call();
  c.second();
  const fair = c.second({ video: 8 });
  assert.equal(fair.level, 'fair');
  assert.match(fair.reasons[0], /video 8 of 15 fps/);
  assert.equal(c.second({ video: 3 }).level, 'fair', 'the figures are taken over a few seconds');
  assert.equal(c.seconds(3, { video: 3 }).level, 'poor');
});

test('video frames lost on the way lower the verdict', () => {
  const c = new Call();
  c.second();
  assert.equal(c.second({ videoLost: 2 }).level, 'fair'); // 2 of 17
  const poor = c.second({ videoLost: 12 });
  assert.equal(poor.level, 'poor');
  assert.match(poor.reasons.join(), /% of video frames lost/);
});

test('audio: a low frame rate, losses and a deep buffer count', () => {
  let c = new Call();
  c.second();
  assert.equal(c.second({ audio: 16 }).level, 'fair');
  assert.equal(c.seconds(3, { audio: 10 }).level, 'poor');

  c = new Call();
  c.second();
  assert.equal(c.seconds(3, { audioLost: 2 }).level, 'fair'); // 10 %
  const poor = c.seconds(3, { audioLost: 4 });
  assert.equal(poor.level, 'poor');
  assert.match(poor.reasons.join(), /20 % of audio lost or late/);

  c = new Call();
  c.second();
  assert.equal(c.seconds(3, { depth: 300 }).level, 'fair');
  assert.match(c.seconds(3, { depth: 450 }).reasons.join(), /audio delayed 450 ms/);
  assert.equal(c.q.level, 'poor');
});

test('one late burst does not paint the call red', () => {
  const c = new Call();
  c.seconds(4);
  assert.equal(c.second({ audioLost: 4 }).level, 'fair'); // 4 frames over 3 s: 7 %
});

test('worse at once, better only after a few better verdicts in a row', () => {
  const c = new Call();
  c.seconds(4);
  assert.equal(c.seconds(4, { video: 2, audio: 8 }).level, 'poor');
  const seen = [];
  for (let i = 0; i < 8; i++) seen.push(c.second().level);
  // The figures improve over the 3 s window; the shown level follows each 3 verdicts later.
  assert.deepEqual(seen, ['poor', 'poor', 'fair', 'fair', 'fair', 'good', 'good', 'good']);
});

test('what the peer does not send does not count; nothing at all is idle', () => {
  const c = new Call();
  c.second();
  assert.equal(c.second({ video: 0 }).level, 'good', 'camera off: no video expected');
  assert.equal(c.second({ audio: 0, video: 0 }).level, 'idle', 'muted too: nothing to judge');
  assert.equal(c.second({ audio: 0 }).level, 'idle', 'video back, its first second not judged');
  assert.equal(c.second({ audio: 0, video: 4 }).level, 'poor', 'then the video alone decides');
});

test('no connection to the server is poor whatever the last figures say', () => {
  const c = new Call();
  c.second();
  const r = c.second({ expect: { connected: false } });
  assert.equal(r.level, 'poor');
  assert.match(r.reasons[0], /not connected/);
});

test('room mode: the audio rate is not judged (members send only while they speak), its losses are', () => {
  const q = new QualityMeter();
  const totals = { audioFramesReceived: 0, droppedFrames: 0, concealedFrames: 0 };
  let t = 0;
  const second = (audio, lost = 0) => {
    totals.audioFramesReceived += audio;
    totals.droppedFrames += lost;
    t += 1000;
    return q.update({ audioFpsReceived: audio, jitterDepthMs: 90, ...totals }, t,
      { videoFps: 0, audioFps: 20, videoOn: false, audioRate: false });
  };
  second(20);
  assert.equal(second(7).level, 'good', 'a short phrase is not a poor connection');
  assert.equal(second(35).level, 'good', 'two people talking at once');
  assert.equal(second(30, 6).level, 'fair', '6 of 78 frames over the last 3 s');
  const r = second(30, 20);
  assert.equal(r.level, 'poor');
  assert.match(r.reasons.join(), /% of audio lost or late/);
});
