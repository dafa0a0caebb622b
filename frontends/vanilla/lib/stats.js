/**
 * Media counters for the stats overlay and for tests (`window.pgcallStats`).
 *
 * Owns: frames sent / received per kind, frames per second over a sliding 1 s window, last and
 * average video frame sizes over that window, the picture size of the last video frame each way
 * (from the frame headers), frames lost on the way (gaps in the senders' `seq`; pgcall keeps one
 * connection's frames in order, and drops the oldest video for a reader that falls behind),
 * jitter-buffer depth and dropped-frame counts. Pure:
 * every method takes the current time in milliseconds, so tests drive it with a fake clock.
 * Does not own: measuring anything itself (media.js and player.js report into it).
 */

export class RateMeter {
  constructor(windowMs = 1000) {
    this.windowMs = windowMs;
    this._events = []; // [timeMs, bytes], oldest first
    this.last = 0;
  }

  add(nowMs, bytes = 0) {
    this._events.push([nowMs, bytes]);
    this.last = bytes;
    this._expire(nowMs);
  }

  /** Events per second within the window ending now. */
  rate(nowMs) {
    this._expire(nowMs);
    return (this._events.length * 1000) / this.windowMs;
  }

  /** Mean bytes per event within the window (0 when empty). */
  averageBytes(nowMs) {
    this._expire(nowMs);
    if (this._events.length === 0) return 0;
    let sum = 0;
    for (const [, bytes] of this._events) sum += bytes;
    return sum / this._events.length;
  }

  _expire(nowMs) {
    const cutoff = nowMs - this.windowMs;
    let drop = 0;
    while (drop < this._events.length && this._events[drop][0] <= cutoff) drop++;
    if (drop) this._events.splice(0, drop);
  }
}

const SEQ_RESTART = 100; // a seq this far behind the last one: the sender started counting again

/** Frames missing from a stream of `seq` numbers (frames arriving late or twice count nothing). */
export class SeqGaps {
  constructor() {
    this.lost = 0;
    this._last = null;
  }

  /** A new stream (a new call): the next seq is not compared with the old ones. */
  reset() {
    this._last = null;
  }

  add(seq) {
    if (!Number.isInteger(seq)) return;
    if (this._last !== null && seq > this._last + 1) this.lost += seq - this._last - 1;
    if (this._last === null || seq > this._last || this._last - seq >= SEQ_RESTART) this._last = seq;
  }
}

export class MediaStats {
  // Private, so JSON.stringify(window.pgcallStats) shows only the counters.
  #videoOut;
  #videoIn;
  #audioOut;
  #audioIn;
  #videoGaps = new SeqGaps();
  #audioGaps = new SeqGaps();

  constructor(windowMs = 1000) {
    // Plain numeric fields: a browser test reads these straight off window.pgcallStats.
    this.videoFramesSent = 0;
    this.videoFramesReceived = 0;
    this.audioFramesSent = 0;
    this.audioFramesReceived = 0;
    this.videoFramesSkipped = 0; // too large, encoder busy, or socket backed up
    this.audioFramesSkipped = 0;
    this.videoFramesLost = 0; // gaps in the received seq numbers
    this.audioFramesLost = 0;
    this.jitterDepthMs = 0;
    this.audioDropped = 0; // late + duplicate + over the latency cap, from the jitter buffer
    this.audioConcealed = 0;
    this.videoSentWidth = 0; // picture size of the last frame sent / received (header fields)
    this.videoSentHeight = 0;
    this.videoReceivedWidth = 0;
    this.videoReceivedHeight = 0;
    this.#videoOut = new RateMeter(windowMs);
    this.#videoIn = new RateMeter(windowMs);
    this.#audioOut = new RateMeter(windowMs);
    this.#audioIn = new RateMeter(windowMs);
  }

  videoSent(nowMs, bytes, width = 0, height = 0) {
    this.videoFramesSent++;
    this.videoSentWidth = Number(width) || 0;
    this.videoSentHeight = Number(height) || 0;
    this.#videoOut.add(nowMs, bytes);
  }

  videoReceived(nowMs, bytes, width = 0, height = 0, seq = null) {
    this.videoFramesReceived++;
    this.videoReceivedWidth = Number(width) || 0;
    this.videoReceivedHeight = Number(height) || 0;
    this.#videoIn.add(nowMs, bytes);
    this.#videoGaps.add(seq);
    this.videoFramesLost = this.#videoGaps.lost;
  }

  /** A new call: its senders count seq from 0 again. */
  resetSequences() {
    this.#videoGaps.reset();
    this.#audioGaps.reset();
  }

  audioSent(nowMs, bytes) {
    this.audioFramesSent++;
    this.#audioOut.add(nowMs, bytes);
  }

  audioReceived(nowMs, bytes, seq = null) {
    this.audioFramesReceived++;
    this.#audioIn.add(nowMs, bytes);
    this.#audioGaps.add(seq);
    this.audioFramesLost = this.#audioGaps.lost;
  }

  /** Copy the jitter buffer's statistics() in. */
  updateJitter(jitterStats) {
    this.jitterDepthMs = Math.round(jitterStats.depthMs);
    this.audioDropped = jitterStats.late + jitterStats.duplicates + jitterStats.dropped;
    this.audioConcealed = jitterStats.concealed;
  }

  /** Everything the overlay shows, computed for the window ending at nowMs. */
  summary(nowMs) {
    return {
      videoFpsSent: this.#videoOut.rate(nowMs),
      videoFpsReceived: this.#videoIn.rate(nowMs),
      audioFpsSent: this.#audioOut.rate(nowMs),
      audioFpsReceived: this.#audioIn.rate(nowMs),
      videoLastSentBytes: this.#videoOut.last,
      videoAvgSentBytes: Math.round(this.#videoOut.averageBytes(nowMs)),
      videoLastReceivedBytes: this.#videoIn.last,
      videoAvgReceivedBytes: Math.round(this.#videoIn.averageBytes(nowMs)),
      videoSentSize: [this.videoSentWidth, this.videoSentHeight],
      videoReceivedSize: [this.videoReceivedWidth, this.videoReceivedHeight],
      jitterDepthMs: this.jitterDepthMs,
      droppedFrames: this.audioDropped, // received audio the jitter buffer threw away
      skippedFrames: this.videoFramesSkipped + this.audioFramesSkipped, // never sent
      concealedFrames: this.audioConcealed,
      videoFramesLost: this.videoFramesLost,
      audioFramesLost: this.audioFramesLost,
      videoFramesSent: this.videoFramesSent,
      videoFramesReceived: this.videoFramesReceived,
      audioFramesSent: this.audioFramesSent,
      audioFramesReceived: this.audioFramesReceived,
    };
  }
}
