// Band-limited streaming resampler (resample.js).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Resampler } from '../lib/resample.js';

function tone(freq, rate, n, amplitude = 0.5) {
  return Float32Array.from({ length: n }, (_, i) => amplitude * Math.sin((2 * Math.PI * freq * i) / rate));
}

function inBlocks(resampler, input, sizes) {
  const parts = [];
  let at = 0;
  let k = 0;
  while (at < input.length) {
    const size = sizes[k++ % sizes.length];
    parts.push(resampler.process(input.subarray(at, at + size)));
    at += size;
  }
  return { parts, joined: concat(parts) };
}

function concat(parts) {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// Amplitude of a sine from its RMS, skipping the filter's start-up.
function amplitude(y, skip = 400) {
  let sum = 0;
  for (let i = skip; i < y.length; i++) sum += y[i] * y[i];
  return Math.sqrt((2 * sum) / (y.length - skip));
}

const dB = (ratio) => 20 * Math.log10(ratio);

for (const [inRate, outRate] of [[48000, 16000], [44100, 16000], [48000, 24000]]) {
  test(`${inRate} → ${outRate}: tones below the output Nyquist keep their amplitude`, () => {
    for (const freq of [440, 1000, 0.375 * outRate]) {
      const y = inBlocks(new Resampler(inRate, outRate), tone(freq, inRate, inRate), [2400]).joined;
      const gain = dB(amplitude(y) / 0.5);
      assert.ok(Math.abs(gain) < 0.1, `${freq} Hz: ${gain.toFixed(3)} dB`);
    }
  });

  test(`${inRate} → ${outRate}: tones above the output Nyquist are attenuated by > 30 dB`, () => {
    for (const freq of [0.55 * outRate, 0.75 * outRate, 0.45 * inRate]) {
      const y = inBlocks(new Resampler(inRate, outRate), tone(freq, inRate, inRate), [2400]).joined;
      const gain = dB(amplitude(y) / 0.5);
      assert.ok(gain < -30, `${freq} Hz: ${gain.toFixed(1)} dB`);
    }
  });
}

test('output length is exact across many blocks (no drift)', () => {
  // 50 ms blocks: exactly 800 samples at 16 kHz out of every block, for ever.
  for (const [inRate, block] of [[48000, 2400], [44100, 2205], [32000, 1600]]) {
    const r = new Resampler(inRate, 16000);
    const input = new Float32Array(block);
    for (let i = 0; i < 200; i++) assert.equal(r.process(input).length, 800, `${inRate} block ${i}`);
  }
  // Irregular blocks: after N inputs there are floor((N − 1)·out/in) + 1 outputs.
  const r = new Resampler(44100, 16000);
  const sizes = [128, 1, 77, 2205, 13, 999];
  let fed = 0;
  let made = 0;
  for (let i = 0; i < 300; i++) {
    const n = sizes[i % sizes.length];
    made += r.process(new Float32Array(n)).length;
    fed += n;
    assert.equal(made, Math.floor(((fed - 1) * 16000) / 44100) + 1, `after ${fed} inputs`);
  }
});

test('block edges: any split gives the same samples as one call (no clicks)', () => {
  for (const [inRate, outRate] of [[48000, 16000], [44100, 16000], [16000, 48000]]) {
    const x = tone(997, inRate, inRate / 2, 0.8);
    const whole = new Resampler(inRate, outRate).process(x);
    for (const sizes of [[128], [1, 2, 3, 500], [2400], [4097]]) {
      const { parts, joined } = inBlocks(new Resampler(inRate, outRate), x, sizes);
      assert.equal(joined.length, whole.length);
      let worst = 0;
      for (let i = 0; i < whole.length; i++) worst = Math.max(worst, Math.abs(joined[i] - whole[i]));
      assert.ok(worst < 1e-6, `${inRate}→${outRate} ${sizes}: ${worst}`);
      // And the step across each block boundary is no bigger than the signal's own steps.
      const maxStep = (2 * Math.PI * 997 * 0.8) / outRate;
      let at = 0;
      for (const p of parts) {
        at += p.length;
        if (at > 0 && at < joined.length) {
          assert.ok(Math.abs(joined[at] - joined[at - 1]) <= maxStep * 1.01, `edge at ${at}`);
        }
      }
    }
  }
});

test('constant input stays constant and upsampling keeps the band', () => {
  const r = new Resampler(44100, 16000);
  const y = r.process(new Float32Array(44100).fill(0.25));
  for (let i = 200; i < y.length; i++) assert.ok(Math.abs(y[i] - 0.25) < 1e-6, `sample ${i}`);
  const up = new Resampler(16000, 48000).process(tone(1000, 16000, 16000));
  assert.ok(Math.abs(dB(amplitude(up, 600) / 0.5)) < 0.1);
});

test('equal rates pass through; invalid rates are rejected', () => {
  const x = Float32Array.from([0.1, -0.2, 0.3]);
  assert.deepEqual([...new Resampler(16000, 16000).process(x)], [...x]);
  assert.throws(() => new Resampler(0, 16000), RangeError);
  assert.throws(() => new Resampler(48000, -1), RangeError);
});
