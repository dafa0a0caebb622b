/**
 * Media counters for the stats overlay and for tests (`window.pgcallStats`).
 *
 * Owns: frames sent / received per kind, frames per second over a sliding 1 s window, last and
 * average video frame sizes over that window, the picture size of the last video frame each way
 * (from the frame headers), frames lost on the way (gaps in the senders' `seq`; pgcall keeps one
 * connection's frames in order, and drops the oldest video for a reader that falls behind),
 * jitter-buffer depth and dropped-frame counts; in a room also per sender (frames from each
 * member, each member's streams' seq gaps, thumbnails apart from full pictures) and how steadily
 * each incoming stream arrives against its nominal rate (StreamRates, for the quality verdict).
 * Pure: every method takes the current time in milliseconds, so tests drive it with a fake clock.
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

const PAUSE_MS = 1000; // a room stream silent this long paused; the seq it resumes with is no loss

/**
 * Seq gaps of many streams at once (a room: one stream per sender and layer). Senders in a room
 * pause (silence suppression; a full layer sent only while somebody's main; audio forwarded only
 * while among the loudest), and their seq counts what they sent to everybody, so a gap after a
 * pause of PAUSE_MS or more is not loss.
 */
export class StreamGaps {
  constructor(pauseMs = PAUSE_MS) {
    this.pauseMs = pauseMs;
    this.lost = 0;
    this._streams = new Map(); // key -> {gaps: SeqGaps, lastMs}
  }

  reset() {
    this._streams.clear();
  }

  add(key, seq, nowMs) {
    let s = this._streams.get(key);
    if (!s) {
      s = { gaps: new SeqGaps(), lastMs: nowMs };
      this._streams.set(key, s);
    }
    if (nowMs - s.lastMs >= this.pauseMs) s.gaps.reset();
    s.lastMs = nowMs;
    const before = s.gaps.lost;
    s.gaps.add(seq);
    this.lost += s.gaps.lost - before;
  }

  /** Forget a stream (its sender left). */
  forget(prefix) {
    for (const key of [...this._streams.keys()]) if (key.startsWith(prefix)) this._streams.delete(key);
  }
}

/**
 * How steadily incoming streams arrive against their nominal frame rates. A stream counts while
 * it is steady: it started at least `settleMs` ago and its last frame is at most `staleMs` old.
 * Its rate is taken over the second before its last frame, so a stream that just stopped (the
 * camera turned off, the layer no longer wanted) does not read as a slow one. share() is the
 * mean of rate / nominal over the steady streams (at most 1 each), or null when none is steady.
 */
export class StreamRates {
  constructor({ windowMs = 1000, settleMs = 1500, staleMs = 1000 } = {}) {
    this.windowMs = windowMs;
    this.settleMs = settleMs;
    this.staleMs = staleMs;
    this._streams = new Map(); // key -> {firstMs, nominal, times: []}
  }

  add(key, nowMs, nominalFps) {
    let s = this._streams.get(key);
    if (!s || nowMs - s.times.at(-1) > this.staleMs) {
      s = { firstMs: nowMs, nominal: nominalFps, times: [] };
      this._streams.set(key, s);
    }
    s.nominal = nominalFps;
    s.times.push(nowMs);
    while (s.times.length && s.times[0] <= nowMs - this.windowMs) s.times.shift();
  }

  share(nowMs) {
    const shares = [];
    for (const [key, s] of this._streams) {
      const last = s.times.at(-1);
      if (last === undefined || nowMs - last > this.staleMs) {
        if (last === undefined || nowMs - last > this.staleMs + this.windowMs) this._streams.delete(key);
        continue;
      }
      if (nowMs - s.firstMs < this.settleMs || !(s.nominal > 0)) continue;
      const count = s.times.filter((t) => t > last - this.windowMs).length;
      shares.push(Math.min(1, (count * 1000) / this.windowMs / s.nominal));
    }
    if (!shares.length) return null;
    return shares.reduce((a, b) => a + b, 0) / shares.length;
  }
}

export class MediaStats {
  // Private, so JSON.stringify(window.pgcallStats) shows only the counters.
  #videoOut;
  #videoIn;
  #audioOut;
  #audioIn;
  #thumbOut;
  #videoGaps = new SeqGaps();
  #audioGaps = new SeqGaps();
  #roomVideoGaps = new StreamGaps();
  #roomAudioGaps = new StreamGaps();

  constructor(windowMs = 1000) {
    // Plain numeric fields: a browser test reads these straight off window.pgcallStats.
    this.videoFramesSent = 0;
    this.videoFramesReceived = 0;
    this.audioFramesSent = 0;
    this.audioFramesReceived = 0;
    this.videoFramesSkipped = 0; // too large, encoder busy, or socket backed up
    this.audioFramesSkipped = 0;
    this.audioFramesSuppressed = 0; // silence not sent (rooms)
    this.videoFramesLost = 0; // gaps in the received seq numbers
    this.audioFramesLost = 0;
    this.jitterDepthMs = 0;
    this.audioDropped = 0; // late + duplicate + over the latency cap, from the jitter buffer
    this.audioConcealed = 0;
    this.videoSentWidth = 0; // picture size of the last frame sent / received (header fields)
    this.videoSentHeight = 0;
    this.videoReceivedWidth = 0;
    this.videoReceivedHeight = 0;
    // Rooms: thumbnails (counted apart from full pictures both ways; the received ones are also
    // in videoFramesReceived) and the frames from each member, by identity.
    this.thumbFramesSent = 0;
    this.thumbFramesReceived = 0;
    this.thumbSentWidth = 0;
    this.thumbSentHeight = 0;
    this.videoFramesFrom = {};
    this.audioFramesFrom = {};
    this.#thumbOut = new RateMeter(windowMs);
    this.#videoOut = new RateMeter(windowMs);
    this.#videoIn = new RateMeter(windowMs);
    this.#audioOut = new RateMeter(windowMs);
    this.#audioIn = new RateMeter(windowMs);
  }

  /** A frame sent; a room's thumbnail (`layer` 'thumb') is counted apart. */
  videoSent(nowMs, bytes, width = 0, height = 0, layer = 'full') {
    if (layer === 'thumb') {
      this.thumbFramesSent++;
      this.thumbSentWidth = Number(width) || 0;
      this.thumbSentHeight = Number(height) || 0;
      this.#thumbOut.add(nowMs, bytes);
      return;
    }
    this.videoFramesSent++;
    this.videoSentWidth = Number(width) || 0;
    this.videoSentHeight = Number(height) || 0;
    this.#videoOut.add(nowMs, bytes);
  }

  /**
   * A frame received. In a room `from` is the sender and `layer` 'full' or 'thumb': losses are
   * counted per sender and layer, and the frame in videoFramesFrom[from].
   */
  videoReceived(nowMs, bytes, width = 0, height = 0, seq = null, from = null, layer = 'full') {
    this.videoFramesReceived++;
    if (layer === 'thumb') {
      this.thumbFramesReceived++;
    } else {
      this.videoReceivedWidth = Number(width) || 0;
      this.videoReceivedHeight = Number(height) || 0;
    }
    this.#videoIn.add(nowMs, bytes);
    if (from === null) {
      this.#videoGaps.add(seq);
    } else {
      this.videoFramesFrom[from] = (this.videoFramesFrom[from] ?? 0) + 1;
      this.#roomVideoGaps.add(`${from}/${layer}`, seq, nowMs);
    }
    this.videoFramesLost = this.#videoGaps.lost + this.#roomVideoGaps.lost;
  }

  /** A new call: its senders count seq from 0 again. */
  resetSequences() {
    this.#videoGaps.reset();
    this.#audioGaps.reset();
    this.#roomVideoGaps.reset();
    this.#roomAudioGaps.reset();
  }

  audioSent(nowMs, bytes) {
    this.audioFramesSent++;
    this.#audioOut.add(nowMs, bytes);
  }

  /** An audio frame received; in a room from member `from` (losses counted per sender). */
  audioReceived(nowMs, bytes, seq = null, from = null) {
    this.audioFramesReceived++;
    this.#audioIn.add(nowMs, bytes);
    if (from === null) {
      this.#audioGaps.add(seq);
    } else {
      this.audioFramesFrom[from] = (this.audioFramesFrom[from] ?? 0) + 1;
      this.#roomAudioGaps.add(from, seq, nowMs);
    }
    this.audioFramesLost = this.#audioGaps.lost + this.#roomAudioGaps.lost;
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
      thumbFpsSent: this.#thumbOut.rate(nowMs),
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
      suppressedFrames: this.audioFramesSuppressed, // silence, not sent (rooms)
      concealedFrames: this.audioConcealed,
      videoFramesLost: this.videoFramesLost,
      audioFramesLost: this.audioFramesLost,
      videoFramesSent: this.videoFramesSent,
      videoFramesReceived: this.videoFramesReceived,
      thumbFramesSent: this.thumbFramesSent,
      thumbFramesReceived: this.thumbFramesReceived,
      thumbSentSize: [this.thumbSentWidth, this.thumbSentHeight],
      audioFramesSent: this.audioFramesSent,
      audioFramesReceived: this.audioFramesReceived,
    };
  }
}
