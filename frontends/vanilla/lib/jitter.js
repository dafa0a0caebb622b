/**
 * Receive-side audio scheduling (protocol.md §8.4 describes the original, which plays frames in
 * arrival order with no reordering, loss handling or late-frame dropping).
 *
 * Owns: the decisions of when each received audio frame starts, as pure logic on a clock that
 * the caller passes in (seconds, like AudioContext.currentTime), so it runs in Node with a fake
 * clock. Frames are played in `seq` order; late frames (seq already played or skipped) and
 * duplicates are dropped; a short gap (up to `maxConcealFrames` missing frames) is filled with a
 * faded repeat of the last frame and then silence instead of stalling; each frame starts at
 * max(pointer, now + lead), but never more than `maxAheadMs` after now — the original's rule that
 * keeps audio in step with video. A frame that does not fit yet waits (about one frame at most);
 * beyond that the oldest queued frames are dropped.
 * Does not own: Web Audio nodes (player.js) or PCM decoding (pcm.js).
 *
 * Usage: call push(frame, now) for every arriving frame and poll(now) every ~10–20 ms; both
 * return the frames to start now, as {seq, samples, sampleRate, startTime, concealed}.
 */

const DEFAULTS = {
  leadMs: 20, // earliest start: now + lead (time to hand the buffer to the audio thread)
  maxAheadMs: 150, // no frame starts later than now + this
  startDelayMs: 100, // the first frame after a (re)start gets this cushion (≤ maxAheadMs)
  concealAtMs: 30, // a missing frame is given up once less than this much audio is queued
  maxConcealFrames: 2, // longer gaps are skipped (resync) instead of concealed
  restartAfterFrames: 100, // a seq this far behind means the sender restarted its counter
};

export class JitterBuffer {
  constructor(options = {}) {
    this.options = { ...DEFAULTS, ...options };
    this.played = 0;
    this.late = 0; // seq already played or skipped
    this.duplicates = 0; // seq already queued
    this.dropped = 0; // invalid frames and frames dropped to respect maxAheadMs
    this.concealed = 0; // filler frames generated for missing seqs
    this.lost = 0; // missing seqs skipped without concealment
    this.reset();
  }

  /** Forget the stream (new call, or the sender restarted); counters are kept. */
  reset() {
    this._queue = new Map(); // seq -> {seq, samples, sampleRate}
    this._nextSeq = null; // next seq to play; null before the first frame
    this._pointer = null; // end time of the last scheduled audio, or null (idle)
    this._last = null; // last played frame, source of the concealment repeat
    this._concealRun = 0;
  }

  /** Accept one frame {seq, samples: Float32Array, sampleRate}; returns frames to start. */
  push(frame, now) {
    const seq = frame.seq;
    if (!Number.isInteger(seq) || !(frame.sampleRate > 0) || frame.samples.length === 0) {
      this.dropped++;
      return this.poll(now);
    }
    if (this._nextSeq !== null && seq < this._nextSeq) {
      if (this._nextSeq - seq >= this.options.restartAfterFrames) {
        this.reset();
      } else {
        this.late++;
        return this.poll(now);
      }
    }
    if (this._queue.has(seq)) {
      this.duplicates++;
      return this.poll(now);
    }
    this._queue.set(seq, frame);
    if (this._nextSeq === null) this._nextSeq = seq;
    return this.poll(now);
  }

  /** Schedule whatever is due; call it periodically so gaps are concealed in time. */
  poll(now) {
    const o = this.options;
    const maxAhead = o.maxAheadMs / 1000;
    const out = [];
    if (this._pointer !== null && this._pointer < now) this._pointer = null; // ran dry
    this._enforceCap(now);
    while (this._queue.size > 0) {
      const frame = this._queue.get(this._nextSeq);
      if (frame) {
        const start = this._startTime(now);
        if (start > now + maxAhead + 1e-9) break; // due later; keep it queued
        this._queue.delete(frame.seq);
        out.push(this._schedule(frame, start, false));
        this._nextSeq = frame.seq + 1;
        this._last = frame;
        this._concealRun = 0;
        this.played++;
        continue;
      }
      // nextSeq is missing but later frames are here. Wait for it while audio is still queued.
      const buffered = this._pointer === null ? 0 : this._pointer - now;
      if (buffered >= o.concealAtMs / 1000 + 1e-9) break;
      const first = this._minQueuedSeq();
      const gap = first - this._nextSeq;
      if (this._pointer !== null && this._last && gap <= o.maxConcealFrames) {
        // Playback is continuous: fill the hole so the stream does not stall or click.
        for (let s = this._nextSeq; s < first; s++) {
          const filler = this._concealment(s);
          out.push(this._schedule(filler, this._startTime(now), true));
          this.concealed++;
        }
      } else {
        // Already silent (or the hole is long): resync on the oldest frame we have.
        this.lost += gap;
      }
      this._nextSeq = first;
    }
    return out;
  }

  /** Counters and the current depth (scheduled-but-unplayed plus queued audio) in ms. */
  statistics(now) {
    let queuedMs = 0;
    for (const f of this._queue.values()) queuedMs += (1000 * f.samples.length) / f.sampleRate;
    const scheduledMs = this._pointer === null ? 0 : Math.max(0, (this._pointer - now) * 1000);
    return {
      depthMs: scheduledMs + queuedMs,
      queued: this._queue.size,
      played: this.played,
      late: this.late,
      duplicates: this.duplicates,
      dropped: this.dropped,
      concealed: this.concealed,
      lost: this.lost,
    };
  }

  _startTime(now) {
    // After running dry the stream restarts with a cushion (the original used call start +
    // 100 ms); while playing, back-to-back at the pointer, but never sooner than now + lead.
    const o = this.options;
    const earliest = now + o.leadMs / 1000;
    if (this._pointer === null) {
      return Math.max(earliest, now + Math.min(o.startDelayMs, o.maxAheadMs) / 1000);
    }
    return Math.max(this._pointer, earliest);
  }

  _schedule(frame, start, concealed) {
    this._pointer = start + frame.samples.length / frame.sampleRate;
    const { seq, samples, sampleRate } = frame;
    return { seq, samples, sampleRate, startTime: start, concealed };
  }

  _concealment(seq) {
    const last = this._last;
    const samples = new Float32Array(last.samples.length);
    if (this._concealRun === 0) {
      // First missing frame: the last frame again, faded out to zero; later ones are silence.
      const n = samples.length;
      for (let i = 0; i < n; i++) samples[i] = last.samples[i] * (1 - i / n);
    }
    this._concealRun++;
    return { seq, samples, sampleRate: last.sampleRate };
  }

  _minQueuedSeq() {
    let min = Infinity;
    for (const s of this._queue.keys()) if (s < min) min = s;
    return min;
  }

  _enforceCap(now) {
    // A frame that would start after now + maxAhead waits in the queue until the clock catches
    // up, but only for about one frame: if the newest queued frame, played back to back after
    // everything before it, would start later than now + maxAhead + one frame, the oldest queued
    // frames are dropped. Stale audio is worth less than staying in step with the video, so the
    // total depth stays under maxAhead plus two frames (250 ms with the defaults).
    const o = this.options;
    let queued = 0;
    let frameLen = 0;
    for (const f of this._queue.values()) {
      queued += f.samples.length / f.sampleRate;
      frameLen = Math.max(frameLen, f.samples.length / f.sampleRate);
    }
    const limit = now + o.maxAheadMs / 1000 + frameLen;
    let start = this._startTime(now);
    while (this._queue.size > 0 && start + queued - frameLen > limit + 1e-9) {
      const oldest = this._minQueuedSeq();
      const f = this._queue.get(oldest);
      this._queue.delete(oldest);
      queued -= f.samples.length / f.sampleRate;
      this.dropped++;
      this._nextSeq = Math.max(this._nextSeq, oldest + 1);
      if (this._queue.size > 0) this._nextSeq = Math.max(this._nextSeq, this._minQueuedSeq());
      start = this._startTime(now);
    }
  }
}
