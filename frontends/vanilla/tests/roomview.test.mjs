// What a room page shows (lib/roomview.js) and what a member sends (lib/roomsend.js).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { HANGOVER_MS, SilenceGate, layersForTick, thumbSize } from '../lib/roomsend.js';
import { chooseMain, gridShape, memberFlags, pickLayer, preferredLayer, speakerLayout } from '../lib/roomview.js';

const [ME, A, B, C] = ['me', 'a', 'b', 'c'];

test('main: my pin, else the speaker, else the full frames I get, else the previous speaker, else the first', () => {
  const members = [A, ME, B, C];
  assert.equal(chooseMain({ members, me: ME }), A, 'the first who joined');
  assert.equal(chooseMain({ members: [ME, B, C], me: ME }), B, 'never myself');
  assert.equal(chooseMain({ members, me: ME, previousSpeaker: C }), C);
  assert.equal(chooseMain({ members, me: ME, previousSpeaker: C, fullFrom: B }), B);
  assert.equal(chooseMain({ members, me: ME, speaker: C, fullFrom: B }), C);
  assert.equal(chooseMain({ members, me: ME, speaker: ME, previousSpeaker: B }), B, 'I speak: the one before me');
  assert.equal(chooseMain({ members, me: ME, speaker: C, pinned: B }), B);
  assert.equal(chooseMain({ members, me: ME, pinned: 'gone', speaker: 'gone too' }), A, 'people who left are skipped');
  assert.equal(chooseMain({ members: [ME], me: ME, speaker: ME }), null, 'alone');
});

test('speaker view: the main large, me first in the strip; alone I am the main tile', () => {
  assert.deepEqual(speakerLayout([A, ME, B, C], ME, B), { main: B, strip: [ME, A, C] });
  assert.deepEqual(speakerLayout([ME], ME, null), { main: ME, strip: [] });
});

test('grid shape: the columns that give the largest 16:9 tiles', () => {
  assert.deepEqual(gridShape(1, 1600, 900), { cols: 1, rows: 1 });
  assert.deepEqual(gridShape(2, 1600, 900), { cols: 2, rows: 1 });
  assert.deepEqual(gridShape(2, 600, 900), { cols: 1, rows: 2 }, 'a tall box stacks them');
  assert.deepEqual(gridShape(3, 1600, 900), { cols: 2, rows: 2 });
  assert.deepEqual(gridShape(4, 1600, 900), { cols: 2, rows: 2 });
  assert.deepEqual(gridShape(5, 1600, 900), { cols: 3, rows: 2 });
  assert.deepEqual(gridShape(9, 1600, 900), { cols: 3, rows: 3 });
  assert.deepEqual(gridShape(16, 1600, 900), { cols: 4, rows: 4 });
  assert.deepEqual(gridShape(0, 100, 100), { cols: 1, rows: 1 }, 'nothing still gets a shape');
});

test('layer shown: the preferred one while fresh, else the newest', () => {
  assert.equal(pickLayer('thumb', { full: null, thumb: null }, 1000), null);
  assert.equal(pickLayer('thumb', { full: 900, thumb: null }, 1000), 'full', 'a small room sends no thumbnails');
  assert.equal(pickLayer('thumb', { full: 900, thumb: 950 }, 1000), 'thumb');
  assert.equal(pickLayer('full', { full: 900, thumb: 950 }, 1000), 'full');
  assert.equal(pickLayer('full', { full: null, thumb: 950 }, 1000), 'thumb', 'the new main: its thumbnail until the full layer comes');
  assert.equal(pickLayer('full', { full: 100, thumb: 1900 }, 2000), 'thumb', 'the full layer stopped');
  assert.equal(pickLayer('full', { full: 1000, thumb: 100 }, 2500), 'full', 'both stale: the newest');
  assert.equal(preferredLayer({ isMain: true, large: true }), 'full');
  assert.equal(preferredLayer({ isMain: false, large: true }), 'thumb');
  assert.equal(preferredLayer({ isMain: false, large: false }), 'full');
});

test('member flags from the row; missing columns read as their defaults', () => {
  assert.deepEqual(memberFlags({ mic: false, camera: true, screen: true, hand: true, pinned: A }),
    { mic: false, camera: true, screen: true, hand: true, pinned: A });
  assert.deepEqual(memberFlags({}), { mic: true, camera: true, screen: false, hand: false, pinned: null });
  assert.deepEqual(memberFlags(undefined), { mic: true, camera: true, screen: false, hand: false, pinned: null });
});

test('silence gate: opens on a loud frame, stays open for the hangover, closes after it', () => {
  const gate = new SilenceGate({ threshold: 0.01 });
  const frames = [];
  // 50 ms frames: silence, one loud burst of 3 frames, a 100 ms dip, loud again, then silence.
  const levels = [0, 0.001, 0.2, 0.3, 0.2, 0.002, 0.003, 0.15, 0, 0, 0, 0, 0, 0, 0, 0];
  levels.forEach((level, i) => frames.push(gate.update(level, i * 50) ? 1 : 0));
  // Last loud frame at 350 ms: open through 350 + 300 = 650 ms (frame 13), closed from 700 ms.
  assert.deepEqual(frames, [0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0]);
  assert.equal(HANGOVER_MS, 300);
  assert.equal(gate.open, false);
  assert.equal(gate.update(0.01, 2000), true, 'the threshold itself opens it');
  gate.reset();
  assert.equal(gate.open, false);
  assert.equal(gate.update(0.005, 2010), false, 'reset forgets the last loud frame');
  assert.equal(gate.update(Number.NaN, 2020), false, 'a broken level is silence');
});

test('layers per camera tick: full on every tick when wanted, the thumbnail on every second', () => {
  const ticks = (layers) => [0, 1, 2, 3].map((t) => layersForTick(t, layers));
  assert.deepEqual(ticks(null).map((l) => [l.full, l.thumb]), [[true, false], [true, false], [true, false], [true, false]],
    'before room_layers: the full layer, as in a small room');
  assert.deepEqual(ticks({ full: true, thumb: false }).map((l) => l.thumb), [false, false, false, false]);
  assert.deepEqual(ticks({ full: false, thumb: true }).map((l) => [l.full, l.thumb]),
    [[false, true], [false, false], [false, true], [false, false]]);
  assert.deepEqual(ticks({ full: true, thumb: true }).map((l) => [l.full, l.thumb]),
    [[true, true], [true, false], [true, true], [true, false]]);
});

test('thumbnail size: about 160 x 90, the aspect ratio of what is sent', () => {
  assert.deepEqual(thumbSize(640, 360), { width: 160, height: 90 });
  assert.deepEqual(thumbSize(480, 360), { width: 160, height: 120 });
  assert.deepEqual(thumbSize(1280, 720), { width: 160, height: 90 });
  assert.deepEqual(thumbSize(1080, 1920), { width: 90, height: 160 }, 'a portrait screen');
  assert.deepEqual(thumbSize(120, 68), { width: 120, height: 68 }, 'never enlarged');
});
