/**
 * Streaming sample-rate conversion for microphone capture (protocol.md §8.3 describes the
 * original's per-block linear interpolation without a low-pass, which aliases and clicks).
 *
 * Owns: a band-limited (Kaiser-windowed sinc) resampler. Each output sample is the input
 * convolved with a low-pass kernel evaluated at the output instant, so filtering and fractional
 * resampling happen in one step. History is kept across calls, so splitting the input into
 * blocks gives exactly the same output as processing it in one piece.
 * Does not own: PCM conversion (pcm.js) or framing into 50 ms frames (media.js).
 *
 * Timing: output n corresponds to input time n·in/out − halfWidth, i.e. a fixed latency of
 * `halfWidth` input samples (about 1.4 ms at 48 kHz → 16 kHz). In exchange, the number of output
 * samples depends only on how many input samples were given: after N inputs there are exactly
 * floor((N − 1)·out/in) + 1 outputs (for N > 0).
 */

const STOPBAND_DB = 70; // ≈ 16-bit-ish rejection of aliases, for a cheap filter
const CUTOFF = 0.45; // -6 dB point as a fraction of the lower of the two rates
const TRANSITION = 0.1; // full transition width, as a fraction of the lower rate
const MAX_EXACT_PHASES = 1024; // rational ratios with a small denominator get exact kernels
const INTERP_PHASES = 512; // otherwise: kernel table interpolated between phases

export class Resampler {
  constructor(inRate, outRate) {
    inRate = Math.round(inRate);
    outRate = Math.round(outRate);
    if (!(inRate > 0 && outRate > 0)) throw new RangeError('sample rates must be positive');
    const g = gcd(inRate, outRate);
    this.inRate = inRate;
    this.outRate = outRate;
    // Time is tracked exactly as a fraction num/den of input samples, so there is no drift.
    this._step = inRate / g; // numerator increment per output sample
    this._den = outRate / g;
    this.passthrough = inRate === outRate;
    if (this.passthrough) return;

    const low = Math.min(inRate, outRate);
    const fc = (CUTOFF * low) / inRate; // cutoff in cycles per input sample
    const df = (TRANSITION * low) / inRate; // transition width, same units
    // Kaiser design formulas (Oppenheim & Schafer): length and beta from attenuation.
    const taps = Math.ceil((STOPBAND_DB - 7.95) / (14.36 * df)) + 1;
    this.halfWidth = Math.max(2, Math.ceil(taps / 2));
    const beta = 0.1102 * (STOPBAND_DB - 8.7);
    this._phases = this._den <= MAX_EXACT_PHASES ? this._den : INTERP_PHASES;
    this._table = buildTable(fc, this.halfWidth, beta, this._phases);

    // History holds input samples from absolute index `_base` on; it starts with 2·halfWidth
    // zeros standing for the silence before the stream.
    const w = this.halfWidth;
    this._hist = new Float32Array(4 * w + 4096);
    this._histLen = 2 * w;
    this._base = -2 * w;
    this._received = 0; // input samples seen
    this._num = 0; // next output time (input samples, before the latency shift) = _num / _den
    this._produced = 0; // output samples returned so far
  }

  /** Resample one block; returns the output samples it makes available (possibly none). */
  process(input) {
    if (this.passthrough) return Float32Array.from(input);
    this._append(input);
    const w = this.halfWidth;
    const den = this._den;
    const step = this._step;
    const phases = this._phases;
    const table = this._table;
    const rowLen = 2 * w;
    const hist = this._hist;
    // Output n needs inputs up to floor(n·in/out) (see the module docstring).
    const count = this._received > 0 ? Math.floor(((this._received - 1) * den) / step) + 1 : 0;
    const outputs = Math.max(0, count - this._produced);
    const out = new Float32Array(outputs);
    for (let k = 0; k < outputs; k++) {
      const whole = Math.floor(this._num / den); // floor(n·in/out)
      const rem = this._num - whole * den; // fractional part is rem / den
      // The kernel is centred on input time whole + frac − w; it spans samples
      // (whole − 2w + 1) … whole, i.e. row entries j = 0 … 2w − 1.
      const first = whole - 2 * w + 1 - this._base;
      // With exact phases the row index is rem itself (no rounding); otherwise interpolate.
      const p = phases === den ? rem : (rem * phases) / den;
      const p0 = Math.floor(p);
      const t = p - p0;
      const r0 = p0 * rowLen;
      let acc = 0;
      if (t === 0) {
        for (let j = 0; j < rowLen; j++) acc += hist[first + j] * table[r0 + j];
      } else {
        const r1 = r0 + rowLen;
        for (let j = 0; j < rowLen; j++) {
          const h = table[r0 + j] + t * (table[r1 + j] - table[r0 + j]);
          acc += hist[first + j] * h;
        }
      }
      out[k] = acc;
      this._num += step;
    }
    this._produced += outputs;
    this._trim();
    return out;
  }

  _append(input) {
    const need = this._histLen + input.length;
    if (need > this._hist.length) {
      const bigger = new Float32Array(Math.max(need, this._hist.length * 2));
      bigger.set(this._hist.subarray(0, this._histLen));
      this._hist = bigger;
    }
    this._hist.set(input, this._histLen);
    this._histLen += input.length;
    this._received += input.length;
  }

  _trim() {
    // Keep only what the next output can still touch: from floor(next time) − 2w + 1 on.
    const whole = Math.floor(this._num / this._den);
    const keepFrom = whole - 2 * this.halfWidth + 1 - this._base;
    if (keepFrom <= 0) return;
    const drop = Math.min(keepFrom, this._histLen);
    this._hist.copyWithin(0, drop, this._histLen);
    this._histLen -= drop;
    this._base += drop;
  }
}

function buildTable(fc, w, beta, phases) {
  // Row p holds the kernel for fractional offset frac = p / phases: entry j weights input sample
  // (whole − 2w + 1 + j), at distance d = (whole + frac − w) − (whole − 2w + 1 + j)
  // = frac + w − 1 − j from the kernel centre.
  const rowLen = 2 * w;
  const table = new Float64Array((phases + 1) * rowLen);
  const i0Beta = besselI0(beta);
  for (let p = 0; p <= phases; p++) {
    const frac = p / phases;
    let sum = 0;
    for (let j = 0; j < rowLen; j++) {
      const d = frac + w - 1 - j;
      const x = d / w;
      const win = Math.abs(x) >= 1 ? 0 : besselI0(beta * Math.sqrt(1 - x * x)) / i0Beta;
      const v = 2 * fc * sinc(2 * fc * d) * win;
      table[p * rowLen + j] = v;
      sum += v;
    }
    // Normalise every phase to unit DC gain so a constant input stays exactly constant.
    for (let j = 0; j < rowLen; j++) table[p * rowLen + j] /= sum;
  }
  return table;
}

function sinc(x) {
  if (x === 0) return 1;
  const px = Math.PI * x;
  return Math.sin(px) / px;
}

function besselI0(x) {
  // Power series of the modified Bessel function of the first kind, order 0.
  let sum = 1;
  let term = 1;
  const half = x / 2;
  for (let k = 1; k < 50; k++) {
    term *= (half / k) * (half / k);
    sum += term;
    if (term < sum * 1e-12) break;
  }
  return sum;
}

function gcd(a, b) {
  while (b) [a, b] = [b, a % b];
  return a;
}
