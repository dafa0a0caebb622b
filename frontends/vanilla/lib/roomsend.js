/**
 * What a room member sends, decided apart from the browser code so it runs in Node with a fake
 * clock (protocol-rooms.md §4).
 *
 * Owns: silence suppression (SilenceGate: audio is sent only while the microphone is loud, and
 * for a hangover after the last loud frame, so the ends of words are not clipped and a short
 * pause does not chop speech); which layers a camera tick encodes (the full layer on every tick
 * while the server says `full:true`, the thumbnail on every second tick while it says
 * `thumb:true`); the thumbnail's picture size (about 160 × 90).
 * Pure. Does not own capture or encoding (capture.js, roommedia.js).
 */

import { fitWithin } from './video.js';

export const HANGOVER_MS = 300;
export const THUMB_LONG = 160; // a 16:9 thumbnail is 160 × 90
export const THUMB_QUALITY = 0.6;

/**
 * Opens when a frame's RMS reaches `threshold` and stays open until `hangoverMs` have passed
 * since the last frame that did. update() takes each frame's level and the time (ms) and says
 * whether to send that frame.
 */
export class SilenceGate {
  constructor({ threshold = 0.01, hangoverMs = HANGOVER_MS } = {}) {
    this.threshold = threshold;
    this.hangoverMs = hangoverMs;
    this._lastLoudMs = null;
    this.open = false;
  }

  update(level, nowMs) {
    const loud = Number.isFinite(level) && level >= this.threshold;
    if (loud) this._lastLoudMs = nowMs;
    this.open = this._lastLoudMs !== null && nowMs - this._lastLoudMs <= this.hangoverMs;
    return this.open;
  }

  /** Closed at once (the microphone was muted or changed). */
  reset() {
    this._lastLoudMs = null;
    this.open = false;
  }
}

/**
 * The layers to encode on camera tick number `tick` (counting from 0) given the server's
 * `room_layers` ({full, thumb}; null before it said anything: the full layer, as in a small
 * room). The thumbnail goes on every second tick: half the camera's frame rate.
 */
export function layersForTick(tick, layers) {
  const wanted = layers ?? { full: true, thumb: false };
  return { full: wanted.full === true, thumb: wanted.thumb === true && tick % 2 === 0 };
}

/**
 * The thumbnail's size for a picture of width × height (the configured camera frame, or the
 * shared screen): the same aspect ratio with the longer side THUMB_LONG (160 × 90 for 16:9).
 */
export function thumbSize(width, height) {
  return fitWithin(width, height, THUMB_LONG);
}
