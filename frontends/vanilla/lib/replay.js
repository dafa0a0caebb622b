/**
 * Replaying a recording, decided apart from the browser so it runs in Node with a fake clock
 * (docs/recording.md "Replay in the browser").
 *
 * Owns: ChunkPlanner — which stretch of the recording to ask for next (`get_recording` from_ms /
 * to_ms, one request at a time, at most CHUNK_MAX_MS, sized so a chunk stays near
 * CHUNK_TARGET_BYTES, AHEAD_MS kept fetched ahead of the playhead) and what a seek keeps; Replay —
 * the frames fetched (in `t` order), the one playback clock (the audio context's time: the
 * playhead is where `t` meets it), play, pause, seek, waiting for data (buffering) and the end;
 * on each tick the requests to send, the audio frames to start and when (in time order by `t`,
 * each sender's frames back to back while they are continuous, so replayed speech does not
 * click), the latest video frame of each member and layer at the playhead, who is speaking
 * (the loudest `rms` over the last second, kept through pauses) and so which member is shown
 * large (roomview.js chooseMain, as live: the speaker, else the member whose full layer is
 * present in a large room, else the first), which members are talking and which show video.
 * Pure: no I/O, no DOM, no Web Audio; times are passed in (seconds on the audio clock).
 * Does not own: the socket, decoding PCM or showing pictures (replayer.js).
 */

import { FRESH_MS, chooseMain, pickLayer, speakerLayout } from './roomview.js';

export const CHUNK_MAX_MS = 3000; // the server's longest get_recording window
export const CHUNK_MIN_MS = 250;
export const FIRST_CHUNK_MS = 1000; // small, so playback starts soon
export const AHEAD_MS = 6000; // fetched ahead of the playhead
export const BEHIND_MS = 2000; // frames further behind the playhead are let go
export const CHUNK_TARGET_BYTES = 4 << 20; // a chunk's frames all wait in the server's queue for us
export const HORIZON_S = 0.4; // audio is handed to the audio clock this far ahead
export const START_LEAD_S = 0.1; // playing starts this long after the click (time to schedule)
export const LATE_S = 0.005; // audio whose start is closer than this is too late to play
export const CONTINUOUS_S = 0.12; // a sender's next frame joins the last one within this of its `t`
export const SPEAKER_WINDOW_MS = 1000;
export const TALKING_HOLD_MS = 300;
export const VIDEO_OFF_MS = 1500; // a member without a frame for this long shows its avatar

/** Which chunks to fetch, one at a time, keeping AHEAD_MS fetched ahead of the playhead. */
export class ChunkPlanner {
  constructor({ durationMs = null, firstChunkMs = FIRST_CHUNK_MS, aheadMs = AHEAD_MS, maxChunkMs = CHUNK_MAX_MS,
    targetBytes = CHUNK_TARGET_BYTES } = {}) {
    this.durationMs = finite(durationMs);
    this.chunkMs = Math.min(firstChunkMs, maxChunkMs);
    this.aheadMs = aheadMs;
    this.maxChunkMs = maxChunkMs;
    this.targetBytes = targetBytes;
    this.start = 0; // the frames of [start, until) are fetched
    this.until = 0;
    this.pending = null; // {from, to, stale, bytes, frames}
    this.exhausted = false; // (length unknown: still recording) a chunk came back empty
  }

  /** Everything up to the end is fetched. */
  get complete() {
    return this.durationMs !== null ? this.until > this.durationMs : this.exhausted;
  }

  /** The request to send now ({from_ms, to_ms}) or null. */
  next(positionMs) {
    if (this.pending || this.complete || this.until >= positionMs + this.aheadMs) return null;
    const from = this.until;
    let to = from + this.chunkMs;
    // A frame written the moment the recording stopped is at t = duration: the last window ends
    // just after it.
    if (this.durationMs !== null) to = Math.min(to, this.durationMs + 1);
    if (to <= from) return null;
    this.pending = { from, to, stale: false, bytes: 0, frames: 0 };
    return { from_ms: from, to_ms: to };
  }

  /** Whether a frame arriving now belongs to a request still wanted (and count it). */
  accept(bytes) {
    if (!this.pending || this.pending.stale) return false;
    this.pending.bytes += bytes;
    this.pending.frames++;
    return true;
  }

  /** The ack closing the request; true if its frames count (it was not made stale by a seek). */
  done(ack) {
    const p = this.pending;
    this.pending = null;
    const duration = finite(ack?.duration_ms);
    if (duration !== null) this.durationMs = duration;
    if (!p || p.stale) return false;
    this.until = Math.max(this.until, p.to);
    if (this.durationMs === null && p.frames === 0) this.exhausted = true;
    const span = p.to - p.from;
    if (p.bytes > 0 && span > 0) {
      const fits = Math.floor(this.targetBytes / (p.bytes / span));
      this.chunkMs = Math.max(CHUNK_MIN_MS, Math.min(this.maxChunkMs, fits));
    } else {
      this.chunkMs = this.maxChunkMs;
    }
    return true;
  }

  /** The request failed (an error reply): it may be asked again. */
  failed() {
    this.pending = null;
  }

  /**
   * The playhead jumps to `ms`: true if what is fetched (or being fetched) covers it; else the
   * request in flight is no longer wanted and fetching starts over at `ms`.
   */
  seek(ms) {
    const p = this.pending && !this.pending.stale ? this.pending : null;
    if (ms >= this.start && ms < Math.max(this.until, p ? p.to : 0)) return true;
    if (this.pending) this.pending.stale = true;
    this.start = ms;
    this.until = ms;
    this.exhausted = false;
    return false;
  }

  /** Frames before `ms` were let go. */
  trim(ms) {
    this.start = Math.max(this.start, Math.min(ms, this.until));
  }
}

/**
 * The replay of one recording. Feed it the frames (`add`) and the acks (`chunkDone`) of its
 * requests; call tick(now) often (now: the audio clock, seconds) and carry out what it returns.
 */
export class Replay {
  /**
   * @param {object} o
   * @param {number|null} [o.durationMs]     null while the recording goes on
   * @param {string[]} [o.participants]      in the order they joined
   * @param {number} [o.talkingThreshold]    rms over which a member is talking
   */
  constructor({ durationMs = null, participants = [], talkingThreshold = 0.02, planner = {} } = {}) {
    this.planner = new ChunkPlanner({ durationMs, ...planner });
    this.members = [...new Set(participants)];
    this.talkingThreshold = talkingThreshold;
    this.state = 'paused'; // paused | playing | buffering | ended | error
    this.error = null;
    this.audio = []; // {t, from, seq, sampleRate, channels, rms, payload}, by t
    this.video = []; // {t, from, layer, width, height, payload}, by t
    this.latest = new Map(); // member -> {full, thumb}: the last frame at the playhead
    this.speaker = null;
    this.previousSpeaker = null;
    this.large = false; // thumbnails were recorded: a large room, where only mains sent full
    this._anchorMs = 0; // the playhead at _anchorCtx
    this._anchorCtx = 0;
    this._audioAt = 0; // next audio frame to schedule
    this._videoAt = 0; // next video frame to show
    this._levelAt = 0; // next audio frame whose level counts for the speaker
    this._loud = new Map(); // member -> {t, energy}
    this._lines = new Map(); // member -> end of its last scheduled audio (audio clock)
    this._videoFrom = new Set(); // members with video in what was fetched
    this.lastT = 0; // the latest t fetched
  }

  get durationMs() {
    return this.planner.durationMs;
  }

  /** Where the timeline ends: the duration, or (still recording) the last frame fetched. */
  get endMs() {
    if (this.planner.durationMs !== null) return this.planner.durationMs;
    return this.planner.exhausted ? this.lastT : Math.max(this.lastT, this.planner.until);
  }

  /** The playhead (ms into the recording) at audio time `now`. */
  position(now) {
    if (this.state !== 'playing') return this._anchorMs;
    return Math.min(this.endMs, this._anchorMs + Math.max(0, now - this._anchorCtx) * 1000);
  }

  play(now) {
    if (this.state === 'playing' || this.state === 'buffering' || this.state === 'error') return;
    if (this.state === 'ended') this._jump(0);
    this._start(now, this._haveData() ? 'playing' : 'buffering');
  }

  pause(now) {
    if (this.state !== 'playing' && this.state !== 'buffering') return;
    this._anchorMs = this.position(now);
    this.state = 'paused';
    this._rewindAudio();
  }

  /** Jump to `ms`; keeps playing (or waiting for the data) if it was. */
  seek(ms, now) {
    const target = Math.max(0, Math.min(Number(ms) || 0, this.planner.durationMs ?? Infinity));
    const wasPlaying = this.state === 'playing' || this.state === 'buffering';
    this._jump(target);
    if (this.state === 'ended') this.state = 'paused';
    if (wasPlaying) this._start(now, this._haveData() ? 'playing' : 'buffering');
  }

  /**
   * One replayed frame (a media message of the recording): kind 'audio' or 'video', its header
   * and payload. False if it belongs to a request made stale by a seek.
   */
  add(kind, header, payload) {
    const t = Number(header?.t);
    if (!Number.isFinite(t) || typeof header.from !== 'string') return false;
    if (!this.planner.accept(payload?.byteLength ?? 0)) return false;
    if (!this.members.includes(header.from)) this.members.push(header.from);
    if (kind === 'audio') {
      insertByT(this.audio, {
        t, from: header.from, seq: Number(header.seq), sampleRate: Number(header.sample_rate),
        channels: Number(header.channels) || 1, rms: Number(header.rms) || 0, payload,
      });
    } else if (kind === 'video') {
      const layer = header.layer === 'thumb' ? 'thumb' : 'full';
      if (layer === 'thumb') this.large = true;
      this._videoFrom.add(header.from);
      insertByT(this.video, { t, from: header.from, layer, width: Number(header.width) || 0,
        height: Number(header.height) || 0, payload });
    } else {
      return false;
    }
    this.lastT = Math.max(this.lastT, t);
    return true;
  }

  /** The ack of a get_recording. */
  chunkDone(ack, now) {
    this.planner.done(ack);
    if (this.state === 'buffering' && this._haveData()) this._start(now, 'playing');
  }

  /** An error reply to a get_recording: replay stops with it. */
  chunkFailed(message) {
    this.planner.failed();
    this.error = message || 'Replay failed';
    this.state = 'error';
    this._rewindAudio();
  }

  /**
   * The connection dropped, or a request could not be sent: the request in flight will not be
   * answered. What of it arrived goes (it is asked for again, whole).
   */
  connectionLost() {
    if (!this.planner.pending) return;
    const from = this.planner.until;
    this.planner.failed();
    this.audio.length = firstAtOrAfter(this.audio, from);
    this.video.length = firstAtOrAfter(this.video, from);
    this._audioAt = Math.min(this._audioAt, this.audio.length);
    this._levelAt = Math.min(this._levelAt, this.audio.length);
    this._videoAt = Math.min(this._videoAt, this.video.length);
  }

  /**
   * What to do at audio time `now`: {request: {from_ms, to_ms} | null, audio: [{frame, when}],
   * changed: Set of members whose picture changed, speakerChanged, stateChanged}.
   */
  tick(now) {
    const before = this.state;
    const out = { request: null, audio: [], changed: new Set(), speakerChanged: false, stateChanged: false };
    let pos = this.position(now);
    if (this.state === 'playing') {
      if (this.planner.complete && pos >= this.endMs) {
        this._anchorMs = this.endMs;
        this.state = 'ended';
        this._rewindAudio();
      } else if (!this.planner.complete && pos >= this.planner.until) {
        // Ran ahead of the data: hold the clock until the next chunk is in.
        this._anchorMs = this.planner.until;
        this.state = 'buffering';
        this._rewindAudio();
      }
      pos = this.position(now);
    }
    if (this.state === 'playing') out.audio = this._scheduleAudio(now, pos);
    this._showVideo(pos, out.changed);
    out.speakerChanged = this._listen(pos);
    if (this.state !== 'error') out.request = this.planner.next(pos);
    this._trim(pos);
    out.stateChanged = before !== this.state;
    return out;
  }

  /** The member shown large and the strip, as the live speaker view (roomview.js). */
  layout(pinned = null) {
    const fullFrom = this.large ? this._freshFull() : null;
    const main = chooseMain({ members: this.members, me: null, pinned, speaker: this.speaker,
      previousSpeaker: this.previousSpeaker, fullFrom });
    return speakerLayout(this.members, null, main);
  }

  /** The frame a tile of `member` preferring `prefer` ('full' or 'thumb') shows at `pos`, or null. */
  frameFor(member, prefer, pos) {
    const latest = this.latest.get(member);
    if (!latest) return null;
    const last = { full: latest.full ? latest.full.t : null, thumb: latest.thumb ? latest.thumb.t : null };
    const layer = pickLayer(prefer, last, pos, FRESH_MS);
    return layer ? latest[layer] : null;
  }

  /** 'on' while `member`'s frames keep coming at `pos`, else 'off'; 'none' if it sent none. */
  videoState(member, pos) {
    const latest = this.latest.get(member);
    const t = Math.max(latest?.full?.t ?? -Infinity, latest?.thumb?.t ?? -Infinity);
    if (t === -Infinity) return this._videoFrom.has(member) ? 'off' : 'none';
    return pos - t <= VIDEO_OFF_MS ? 'on' : 'off';
  }

  /** Whether `member` was loud just before `pos`. */
  isTalking(member, pos) {
    const loud = this._loud.get(member);
    return Boolean(loud) && pos - loud.t <= TALKING_HOLD_MS && loud.t <= pos;
  }

  // -- internals -------------------------------------------------------------------------------

  _haveData() {
    return this.planner.complete || this.planner.until > this._anchorMs;
  }

  _start(now, state) {
    this._anchorCtx = now + START_LEAD_S;
    this.state = state;
    this._rewindAudio();
  }

  _jump(ms) {
    if (!this.planner.seek(ms)) {
      this.audio = [];
      this.video = [];
    }
    this._anchorMs = ms;
    this.latest = new Map();
    this._loud = new Map();
    this._videoAt = firstAtOrAfter(this.video, ms - FRESH_MS);
    this._levelAt = firstAtOrAfter(this.audio, ms - SPEAKER_WINDOW_MS);
    this._rewindAudio();
  }

  /** Audio is scheduled afresh from the playhead (after a pause, seek, or stall). */
  _rewindAudio() {
    this._audioAt = firstAtOrAfter(this.audio, this._anchorMs);
    this._lines = new Map();
  }

  _scheduleAudio(now, pos) {
    const out = [];
    const horizonMs = pos + HORIZON_S * 1000;
    while (this._audioAt < this.audio.length && this.audio[this._audioAt].t <= horizonMs) {
      const frame = this.audio[this._audioAt++];
      if (!(frame.sampleRate > 0)) continue;
      const ideal = this._anchorCtx + (frame.t - this._anchorMs) / 1000;
      const length = frame.payload.byteLength / 2 / frame.channels / frame.sampleRate;
      const end = this._lines.get(frame.from);
      // Back to back with the sender's last frame while that keeps it near its own time.
      const when = end !== undefined && Math.abs(end - ideal) <= CONTINUOUS_S ? end : ideal;
      if (when < now + LATE_S) continue;
      this._lines.set(frame.from, when + length);
      out.push({ frame, when });
    }
    return out;
  }

  _showVideo(pos, changed) {
    while (this._videoAt < this.video.length && this.video[this._videoAt].t <= pos) {
      const frame = this.video[this._videoAt++];
      let latest = this.latest.get(frame.from);
      if (!latest) {
        latest = { full: null, thumb: null };
        this.latest.set(frame.from, latest);
      }
      latest[frame.layer] = frame;
      changed.add(frame.from);
    }
  }

  /** The loudest member over the last second becomes the speaker (kept while nobody is). */
  _listen(pos) {
    while (this._levelAt < this.audio.length && this.audio[this._levelAt].t <= pos) {
      const f = this.audio[this._levelAt++];
      if (f.rms <= this.talkingThreshold) continue;
      const loud = this._loud.get(f.from);
      const decay = loud ? Math.exp(-Math.max(0, f.t - loud.t) / SPEAKER_WINDOW_MS) : 0;
      this._loud.set(f.from, { t: f.t, energy: (loud ? loud.energy * decay : 0) + f.rms });
    }
    let best = null;
    let bestEnergy = 0;
    for (const [member, loud] of this._loud) {
      if (pos - loud.t > SPEAKER_WINDOW_MS) continue;
      const energy = loud.energy * Math.exp(-Math.max(0, pos - loud.t) / SPEAKER_WINDOW_MS);
      if (energy > bestEnergy) {
        best = member;
        bestEnergy = energy;
      }
    }
    if (best === null || best === this.speaker) return false;
    if (this.speaker !== null) this.previousSpeaker = this.speaker;
    this.speaker = best;
    return true;
  }

  _freshFull() {
    let best = null;
    let bestT = -Infinity;
    for (const [member, latest] of this.latest) {
      if (latest.full && latest.full.t > bestT) {
        best = member;
        bestT = latest.full.t;
      }
    }
    return best;
  }

  _trim(pos) {
    const keep = pos - BEHIND_MS;
    if (this.planner.start >= keep - 1000) return;
    // Never past a cursor: what is still to be played stays.
    const a = Math.min(firstAtOrAfter(this.audio, keep), this._audioAt, this._levelAt);
    const v = Math.min(firstAtOrAfter(this.video, keep), this._videoAt);
    this.audio.splice(0, a);
    this._audioAt -= a;
    this._levelAt -= a;
    this.video.splice(0, v);
    this._videoAt -= v;
    this.planner.trim(keep);
  }
}

function finite(value) {
  if (value === null || value === undefined || value === '') return null;
  const n = Number(value);
  return Number.isFinite(n) ? n : null;
}

/** Index of the first frame with t >= ms (frames sorted by t). */
export function firstAtOrAfter(frames, ms) {
  let lo = 0;
  let hi = frames.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (frames[mid].t < ms) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Frames come in time order; one out of order (same t) goes after its equals. */
function insertByT(frames, frame) {
  if (!frames.length || frames[frames.length - 1].t <= frame.t) {
    frames.push(frame);
    return;
  }
  frames.splice(firstAtOrAfter(frames, frame.t + 1e-9), 0, frame);
}
