/**
 * Web Audio playback of received audio frames (protocol.md §4.6, §8.4).
 *
 * Owns: turning PCM16LE payloads into AudioBuffers at the header's `sample_rate` and starting an
 * AudioBufferSourceNode for each decision of the JitterBuffer; polling the buffer every 20 ms so
 * gaps are concealed on time; stopping everything on close.
 * Does not own: the scheduling rules (jitter.js) or which frames belong to the call (media.js).
 */

import { JitterBuffer } from './jitter.js';
import { pcm16ToFloat } from './pcm.js';

export class AudioPlayer {
  constructor(audioContext, { destination = audioContext.destination, jitter = {}, pollMs = 20 } = {}) {
    this.ctx = audioContext;
    this.destination = destination;
    this.jitter = new JitterBuffer(jitter);
    this._sources = new Set();
    this._timer = setInterval(() => this._play(this.jitter.poll(this.ctx.currentTime)), pollMs);
  }

  /** One received audio frame: header {seq, sample_rate, channels}, payload PCM16LE bytes. */
  push(header, payload) {
    let samples = pcm16ToFloat(payload);
    const channels = Number(header.channels) || 1;
    // Interleaved multi-channel PCM (§2) is played as its first channel.
    if (channels > 1) samples = samples.filter((_, i) => i % channels === 0);
    const frame = { seq: Number(header.seq), samples, sampleRate: Number(header.sample_rate) };
    this._play(this.jitter.push(frame, this.ctx.currentTime));
  }

  statistics() {
    return this.jitter.statistics(this.ctx.currentTime);
  }

  close() {
    clearInterval(this._timer);
    for (const source of this._sources) {
      try {
        source.stop();
      } catch {
        // already stopped
      }
    }
    this._sources.clear();
  }

  _play(decisions) {
    for (const d of decisions) {
      let buffer;
      try {
        buffer = this.ctx.createBuffer(1, d.samples.length, d.sampleRate);
      } catch {
        continue; // a sample rate the browser cannot represent: skip rather than stall
      }
      buffer.copyToChannel(d.samples, 0);
      const source = this.ctx.createBufferSource();
      source.buffer = buffer;
      source.connect(this.destination);
      source.onended = () => this._sources.delete(source);
      this._sources.add(source);
      source.start(d.startTime);
    }
  }
}
