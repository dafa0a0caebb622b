/**
 * PCM16LE conversions and signal level (protocol.md §2: audio payload is signed 16-bit
 * little-endian, mono).
 *
 * Owns: float32 <-> PCM16LE and the RMS level sent in the audio header (§3.1 `rms`).
 * Does not own: resampling (resample.js) or framing (protocol.js).
 */

/** Float samples in [-1, 1] to PCM16LE bytes: clamp, scale by 32767 (positive) / 32768
 * (negative) so both ends of the int16 range are reachable, round to nearest. */
export function floatToPcm16(samples) {
  const out = new Uint8Array(samples.length * 2);
  const view = new DataView(out.buffer);
  for (let i = 0; i < samples.length; i++) {
    const s = clamp(samples[i]);
    const v = s < 0 ? Math.round(s * 32768) : Math.round(s * 32767);
    view.setInt16(i * 2, v, true);
  }
  return out;
}

/** PCM16LE bytes to float samples (÷32768). A trailing odd byte is ignored. */
export function pcm16ToFloat(bytes) {
  const u8 = bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : bytes;
  const count = Math.floor(u8.byteLength / 2);
  const view = new DataView(u8.buffer, u8.byteOffset, count * 2);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = view.getInt16(i * 2, true) / 32768;
  return out;
}

/** Root mean square of the clamped samples; 0 for an empty block. */
export function rms(samples) {
  if (samples.length === 0) return 0;
  let sum = 0;
  for (let i = 0; i < samples.length; i++) {
    const s = clamp(samples[i]);
    sum += s * s;
  }
  return Math.sqrt(sum / samples.length);
}

function clamp(s) {
  // NaN from a broken source becomes silence rather than poisoning the whole frame.
  if (Number.isNaN(s)) return 0;
  return s > 1 ? 1 : s < -1 ? -1 : s;
}
