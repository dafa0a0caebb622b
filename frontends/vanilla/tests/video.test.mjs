// Screen-share sizing, the JPEG budget and the peer's video state (lib/video.js).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { JpegBudget, VideoActivity, fitWithin, screenBudget } from '../lib/video.js';

test('fitWithin keeps the aspect ratio, bounds the longer side, never enlarges', () => {
  assert.deepEqual(fitWithin(1920, 1080, 640), { width: 640, height: 360 });
  assert.deepEqual(fitWithin(1080, 1920, 640), { width: 360, height: 640 }, 'portrait');
  assert.deepEqual(fitWithin(2560, 1080, 480), { width: 480, height: 202 }, 'ultra-wide, even');
  assert.deepEqual(fitWithin(1280, 1024, 480), { width: 480, height: 384 });
  assert.deepEqual(fitWithin(300, 200, 640), { width: 300, height: 200 }, 'small source kept');
  assert.deepEqual(fitWithin(1920, 1080, 640, 0.5), { width: 320, height: 180 }, 'budget scale');
  assert.deepEqual(fitWithin(0, 1080, 640), { width: 0, height: 0 }, 'no picture yet');
  const { width, height } = fitWithin(1001, 1, 640);
  assert.ok(width % 2 === 0 && height >= 2);
});

test('screenBudget is the configured frame\'s longer side', () => {
  assert.equal(screenBudget({ video_width: 640, video_height: 360 }), 640);
  assert.equal(screenBudget({ video_width: 240, video_height: 320 }), 320);
});

test('JpegBudget: too large lowers quality, then size; room to spare climbs back slowly', () => {
  const b = new JpegBudget({ quality: 0.65, maxBytes: 10_000 });
  assert.equal(b.fits(9_000), true);
  assert.equal(b.fits(12_000), false);
  assert.equal(b.quality, 0.55);
  for (let i = 0; i < 3; i++) b.fits(12_000);
  assert.equal(b.quality, 0.3, 'quality bottoms out');
  assert.equal(b.scale, 1);
  assert.equal(b.fits(12_000), false);
  assert.equal(b.scale, 0.8, 'then the picture shrinks');
  for (let i = 0; i < 20; i++) b.fits(99_000);
  assert.equal(b.scale, 0.25, 'down to a floor');
  // Small frames: one step back up per 30 frames, size first.
  for (let i = 0; i < 29; i++) assert.equal(b.fits(1_000), true);
  assert.equal(b.scale, 0.25);
  b.fits(1_000);
  assert.equal(b.scale, 0.31);
  for (let i = 0; i < 30 * 20; i++) b.fits(1_000);
  assert.equal(b.scale, 1);
  assert.equal(b.quality, 0.65, 'back to the configured quality, never above');
});

test('JpegBudget: frames close to the limit hold the level; new settings apply', () => {
  const b = new JpegBudget({ quality: 0.65, maxBytes: 10_000 });
  b.fits(20_000);
  for (let i = 0; i < 100; i++) b.fits(8_000);
  assert.equal(b.quality, 0.55, 'no climb without room to spare');
  b.configure({ quality: 0.8, maxBytes: 50_000 });
  assert.equal(b.quality, 0.8);
  assert.equal(b.fits(40_000), true);
});

test('VideoActivity: waiting, on while frames arrive, off after 1.5 s without, on again', () => {
  const a = new VideoActivity();
  a.start(0);
  assert.equal(a.state(1000), 'waiting');
  a.frame(1200);
  assert.equal(a.state(1300), 'on');
  a.frame(1400);
  assert.equal(a.state(2900), 'on');
  assert.equal(a.state(2901), 'off');
  a.frame(9000);
  assert.equal(a.state(9001), 'on');
});

test('VideoActivity: no frame at all within the start grace means the camera is off', () => {
  const a = new VideoActivity({ startGraceMs: 4000 });
  assert.equal(a.state(0), 'waiting', 'not started');
  a.start(100);
  assert.equal(a.state(4100), 'waiting');
  assert.equal(a.state(4101), 'off');
});
