/**
 * Media counters for the stats overlay and for tests (`window.pgcallStats`).
 *
 * Owns: frames sent / received per kind, frames per second over a sliding 1 s window, last and
 * average video frame sizes over that window, jitter-buffer depth and dropped-frame counts. Pure:
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

export class MediaStats {
  // Private, so JSON.stringify(window.pgcallStats) shows only the counters.
  #videoOut;
  #videoIn;
  #audioOut;
  #audioIn;

  constructor(windowMs = 1000) {
    // Plain numeric fields: a browser test reads these straight off window.pgcallStats.
    this.videoFramesSent = 0;
    this.videoFramesReceived = 0;
    this.audioFramesSent = 0;
    this.audioFramesReceived = 0;
    this.videoFramesSkipped = 0; // too large, encoder busy, or socket backed up
    this.audioFramesSkipped = 0;
    this.jitterDepthMs = 0;
    this.audioDropped = 0; // late + duplicate + over the latency cap, from the jitter buffer
    this.audioConcealed = 0;
    this.#videoOut = new RateMeter(windowMs);
    this.#videoIn = new RateMeter(windowMs);
    this.#audioOut = new RateMeter(windowMs);
    this.#audioIn = new RateMeter(windowMs);
  }

  videoSent(nowMs, bytes) {
    this.videoFramesSent++;
    this.#videoOut.add(nowMs, bytes);
  }

  videoReceived(nowMs, bytes) {
    this.videoFramesReceived++;
    this.#videoIn.add(nowMs, bytes);
  }

  audioSent(nowMs, bytes) {
    this.audioFramesSent++;
    this.#audioOut.add(nowMs, bytes);
  }

  audioReceived(nowMs, bytes) {
    this.audioFramesReceived++;
    this.#audioIn.add(nowMs, bytes);
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
      jitterDepthMs: this.jitterDepthMs,
      droppedFrames: this.audioDropped, // received audio the jitter buffer threw away
      skippedFrames: this.videoFramesSkipped + this.audioFramesSkipped, // never sent
      concealedFrames: this.audioConcealed,
      videoFramesSent: this.videoFramesSent,
      videoFramesReceived: this.videoFramesReceived,
      audioFramesSent: this.audioFramesSent,
      audioFramesReceived: this.audioFramesReceived,
    };
  }
}
