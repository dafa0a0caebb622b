// PCM16LE conversions (protocol.md §2) and the rms of §3.1.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { floatToPcm16, pcm16ToFloat, rms } from '../lib/pcm.js';

test('float to PCM16LE: clamp, ×32767 / ×32768, little-endian', () => {
  const out = floatToPcm16(Float32Array.from([0, 1, -1, 0.5, -0.5, 2, -3, Number.NaN]));
  assert.ok(out instanceof Uint8Array);
  assert.deepEqual(
    [...out],
    [
      0x00, 0x00, // 0
      0xff, 0x7f, // 1 → 32767
      0x00, 0x80, // -1 → -32768
      0x00, 0x40, // 0.5 → round(16383.5) = 16384
      0x00, 0xc0, // -0.5 → -16384
      0xff, 0x7f, // clamped
      0x00, 0x80, // clamped
      0x00, 0x00, // NaN → silence
    ],
  );
});

test('PCM16LE to float: ÷32768, odd trailing byte ignored, any offset', () => {
  const raw = new Uint8Array([0x77, 0x00, 0x80, 0xff, 0x7f, 0x01, 0x00, 0x05]);
  const view = raw.subarray(1); // odd byteOffset, 7 bytes → 3 samples
  assert.deepEqual([...pcm16ToFloat(view)], [-1, 32767 / 32768, 1 / 32768]);
  assert.deepEqual([...pcm16ToFloat(new Uint8Array([0x00, 0xc0]).buffer)], [-0.5]);
});

test('round trip is within the rounding step plus the 32767/32768 scale mismatch', () => {
  const x = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i / 7) * 0.9);
  const y = pcm16ToFloat(floatToPcm16(x));
  assert.equal(y.length, x.length);
  // Positive samples are scaled by 32767 and read back ÷32768: error ≤ (0.5 + |x|) / 32768.
  for (let i = 0; i < x.length; i++) {
    assert.ok(Math.abs(x[i] - y[i]) <= (0.5 + Math.abs(x[i])) / 32768 + 1e-9, `sample ${i}`);
  }
});

test('rms of constants, a sine, empty and clipped input', () => {
  assert.equal(rms(new Float32Array(0)), 0);
  assert.ok(Math.abs(rms(new Float32Array(100).fill(-0.5)) - 0.5) < 1e-9);
  const n = 16000;
  const sine = Float32Array.from({ length: n }, (_, i) => 0.3 * Math.sin((2 * Math.PI * 440 * i) / n));
  assert.ok(Math.abs(rms(sine) - 0.3 / Math.SQRT2) < 1e-4);
  assert.equal(rms(new Float32Array(10).fill(4)), 1); // clamped like the PCM
});
