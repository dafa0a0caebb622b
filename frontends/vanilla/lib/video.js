/**
 * Pure decisions about video frames, kept apart from the browser code of media.js so they run in
 * Node with a fake clock.
 *
 * Owns: the size a shared screen is sent at (its own aspect ratio, the longer side within the
 * configured budget, never enlarged); the JPEG budget (lower the quality, then the size, while
 * frames come out over video_max_frame_bytes; climb back slowly once they fit with room to
 * spare); and whether the peer's video is live, not started yet, or stopped (camera off, or
 * frames no longer arriving), which the call view shows instead of a frozen last frame.
 * Does not own: capture, canvases or encoding (media.js), nor the markup.
 */

/**
 * Width and height for a source of srcWidth × srcHeight whose longer side may be at most
 * maxLong: same aspect ratio, never larger than the source, even numbers (JPEG's chroma
 * subsampling works on 2×2 blocks), at least 2.
 */
export function fitWithin(srcWidth, srcHeight, maxLong, scale = 1) {
  const w = Number(srcWidth);
  const h = Number(srcHeight);
  if (!(w > 0 && h > 0)) return { width: 0, height: 0 };
  const limit = Math.max(2, Number(maxLong) || 0) * Math.min(1, Math.max(0, scale));
  const factor = Math.min(1, limit / Math.max(w, h));
  const even = (n) => Math.max(2, 2 * Math.round((n * factor) / 2));
  return { width: even(w), height: even(h) };
}

/** The longer side a screen share may have: the configured frame's longer side. */
export function screenBudget(settings) {
  return Math.max(Number(settings.video_width) || 0, Number(settings.video_height) || 0);
}

const QUALITY_STEP = 0.1;
const MIN_QUALITY = 0.3;
const SCALE_STEP = 0.8;
const MIN_SCALE = 0.25;
const ROOM = 0.6; // a frame under 60 % of the limit leaves room to climb back
const CLIMB_AFTER = 30; // frames in a row with room before one step back up

/**
 * Keeps encoded frames under maxBytes. After each encode, report the size with fits(); a
 * frame over the limit is not sent and the next one is encoded smaller: quality first, down to
 * MIN_QUALITY, then the picture's size, down to MIN_SCALE of the configured one.
 */
export class JpegBudget {
  constructor({ quality, maxBytes }) {
    this.target = clampQuality(quality);
    this.maxBytes = Number(maxBytes) || Infinity;
    this.quality = this.target;
    this.scale = 1;
    this._roomy = 0;
  }

  /** New media_settings: the configured quality and limit change, the stepping is kept. */
  configure({ quality, maxBytes }) {
    const target = clampQuality(quality);
    if (target !== this.target) this.quality = target;
    this.target = target;
    this.maxBytes = Number(maxBytes) || Infinity;
  }

  /** An encoded frame of `bytes`; true if it may be sent. */
  fits(bytes) {
    if (bytes > this.maxBytes) {
      this._roomy = 0;
      if (this.quality > MIN_QUALITY + 1e-9) this.quality = Math.max(MIN_QUALITY, round2(this.quality - QUALITY_STEP));
      else this.scale = Math.max(MIN_SCALE, round2(this.scale * SCALE_STEP));
      return false;
    }
    if (bytes < this.maxBytes * ROOM && (this.scale < 1 || this.quality < this.target)) {
      if (++this._roomy >= CLIMB_AFTER) {
        this._roomy = 0;
        if (this.scale < 1) this.scale = Math.min(1, round2(this.scale / SCALE_STEP));
        else this.quality = Math.min(this.target, round2(this.quality + QUALITY_STEP));
      }
    } else {
      this._roomy = 0;
    }
    return true;
  }
}

function clampQuality(q) {
  const n = Number(q);
  return Number.isFinite(n) ? Math.min(1, Math.max(0.05, n)) : 0.65;
}

function round2(n) {
  return Math.round(n * 100) / 100;
}

export const REMOTE_VIDEO_OFF_AFTER_MS = 1500;
export const REMOTE_VIDEO_START_GRACE_MS = 4000;

/**
 * Whether the peer's video is 'waiting' (the call just started, no frame yet), 'on' (frames
 * arrive) or 'off' (none for offAfterMs: camera turned off, or the video stalled; or none at
 * all within startGraceMs of the start). Call start(now) once, frame(now) on each frame and
 * state(now) whenever it is wanted.
 */
export class VideoActivity {
  constructor({ offAfterMs = REMOTE_VIDEO_OFF_AFTER_MS, startGraceMs = REMOTE_VIDEO_START_GRACE_MS } = {}) {
    this.offAfterMs = offAfterMs;
    this.startGraceMs = startGraceMs;
    this._startMs = null;
    this._lastFrameMs = null;
  }

  start(nowMs) {
    this._startMs = nowMs;
    this._lastFrameMs = null;
  }

  frame(nowMs) {
    if (this._startMs === null) this._startMs = nowMs;
    this._lastFrameMs = nowMs;
  }

  state(nowMs) {
    if (this._lastFrameMs !== null) return nowMs - this._lastFrameMs > this.offAfterMs ? 'off' : 'on';
    if (this._startMs === null) return 'waiting';
    return nowMs - this._startMs > this.startGraceMs ? 'off' : 'waiting';
  }
}
