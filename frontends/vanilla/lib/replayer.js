/**
 * Playing a recording in the browser (docs/recording.md "Replay in the browser"). Browser only.
 *
 * Owns, for one recording: its own AudioContext (made on the click that opens the player, so the
 * browser lets it play), whose clock is the replay's one clock; the `get_recording` requests the
 * replay asks for (replay.js decides which) and the frames and acks answering them (media
 * messages carrying this `recording_id`); starting the audio frames it hands over as
 * AudioBufferSources at their time (several speakers mix in the output), stopping them on pause,
 * seek or the end; the pictures: each attached <img> shows its member's frame at the playhead (in
 * the layer it prefers while fresh, as live tiles do) as an object URL, with `data-t` (the
 * frame's ms into the recording) and `data-layer`; a level meter on the output; counters for
 * tests (`stats`). A tick every TICK_MS drives it; `onChange` tells the page when what it shows
 * (state, position, main member, members' video and talking) changed.
 * Does not own: what to fetch, when to play, who is large (replay.js), the markup.
 */

import { pcm16ToFloat } from './pcm.js';
import { Replay } from './replay.js';

const TICK_MS = 25;
const POSITION_STEP_MS = 100; // the page is told about the playhead moving this often

export class RecordingPlayer {
  /**
   * @param {object} o
   * @param {import('./client.js').RelayClient} o.client
   * @param {object} o.recording   an entry of list_recordings
   * @param {number} [o.talkingThreshold]  media_settings.audio_talking_rms_threshold
   * @param {() => void} [o.onChange]
   * @param {(message: string) => void} [o.onError]
   */
  constructor({ client, recording, talkingThreshold = 0.02, onChange, onError, AudioContextImpl = globalThis.AudioContext }) {
    this.client = client;
    this.recording = recording;
    this.recordingId = recording.recording_id;
    this.onChange = onChange ?? (() => {});
    this.onError = onError ?? (() => {});
    this._AudioContext = AudioContextImpl;
    this.replay = new Replay({
      durationMs: recording.duration_ms ?? null,
      participants: recording.participants ?? [],
      talkingThreshold,
    });
    this.pinned = null;
    this.stats = {
      requests: [], // from_ms of every get_recording sent
      chunks: 0,
      framesReceived: 0,
      bytesReceived: 0,
      videoFramesShown: 0,
      lastShownT: null, // t of the last picture put on screen
      audioFramesPlayed: 0,
      level: 0, // RMS of the output now
      peakLevel: 0,
    };
    this._tiles = new Map(); // <img> -> {identity, prefer, frame, url}
    this._sources = new Set();
    this._closed = false;
    this._viewKey = '';
    this._onMedia = (ev) => this._media(ev.detail);
    this._onAck = (ev) => this._ack(ev.detail);
    this._onError = (ev) => this._error(ev.detail);
    this._onStatus = (ev) => {
      if (ev.detail.status !== 'open') this.replay.connectionLost();
    };
  }

  /** Start: must run from a click (the AudioContext may only play after one). */
  open() {
    const ctx = new this._AudioContext();
    this.ctx = ctx;
    this._out = ctx.createGain();
    this._out.connect(ctx.destination);
    this._analyser = ctx.createAnalyser();
    this._analyser.fftSize = 1024;
    this._levelBuffer = new Float32Array(this._analyser.fftSize);
    this._out.connect(this._analyser);
    ctx.resume?.().catch(() => {});
    this.client.addEventListener('media', this._onMedia);
    this.client.addEventListener('ack', this._onAck);
    this.client.addEventListener('error', this._onError);
    this.client.addEventListener('status', this._onStatus);
    this._timer = setInterval(() => this._tick(), TICK_MS);
    this.play();
  }

  close() {
    if (this._closed) return;
    this._closed = true;
    clearInterval(this._timer);
    this.client.removeEventListener('media', this._onMedia);
    this.client.removeEventListener('ack', this._onAck);
    this.client.removeEventListener('error', this._onError);
    this.client.removeEventListener('status', this._onStatus);
    this._silence();
    for (const img of [...this._tiles.keys()]) this.detach(img);
    this.ctx?.close().catch(() => {});
  }

  // -- what the page reads ---------------------------------------------------------------------

  get state() {
    return this.replay.state;
  }

  get error() {
    return this.replay.error;
  }

  /** The playhead, ms into the recording. */
  position() {
    return this.ctx ? this.replay.position(this.ctx.currentTime) : 0;
  }

  /** The length of the timeline (ms). */
  get durationMs() {
    return this.replay.endMs;
  }

  /** {main, strip}: identities, as the live speaker view places them. */
  layout() {
    return this.replay.layout(this.pinned);
  }

  get members() {
    return this.replay.members;
  }

  /** Whether only thumbnails of most members were recorded (a large room). */
  get large() {
    return this.replay.large;
  }

  videoState(identity) {
    return this.replay.videoState(identity, this.position());
  }

  isTalking(identity) {
    return this.replay.isTalking(identity, this.position());
  }

  // -- what the page does ----------------------------------------------------------------------

  play() {
    if (this._closed) return;
    this.ctx.resume?.().catch(() => {});
    this.replay.play(this.ctx.currentTime);
    this._tick();
  }

  pause() {
    if (this._closed) return;
    this.replay.pause(this.ctx.currentTime);
    this._silence();
    this._tick();
  }

  toggle() {
    if (this.state === 'playing' || this.state === 'buffering') this.pause();
    else this.play();
  }

  seek(ms) {
    if (this._closed) return;
    this.replay.seek(ms, this.ctx.currentTime);
    this._silence();
    this._tick();
  }

  /** Keep `identity` large (null: whoever speaks). */
  pin(identity) {
    this.pinned = identity;
    this._tick();
  }

  /** Show `identity`'s pictures in `img`, preferring the layer `prefer` ('full' or 'thumb'). */
  attach(img, identity, prefer = 'full') {
    const tile = this._tiles.get(img);
    if (tile && tile.identity === identity && tile.prefer === prefer) return;
    this._tiles.set(img, { identity, prefer, frame: tile?.identity === identity ? tile.frame : null, url: tile?.url ?? null });
    if (this.ctx) this._paint(img, this._tiles.get(img), this.position());
  }

  detach(img) {
    const tile = this._tiles.get(img);
    this._tiles.delete(img);
    if (!tile?.url) return;
    // The picture may not be loaded yet: stop it loading before its URL goes.
    if (img.getAttribute('src') === tile.url) img.removeAttribute('src');
    URL.revokeObjectURL(tile.url);
  }

  // -- internals -------------------------------------------------------------------------------

  _tick() {
    if (this._closed || !this.ctx) return;
    const now = this.ctx.currentTime;
    const out = this.replay.tick(now);
    if (out.stateChanged && this.replay.state !== 'playing') this._silence();
    if (out.request) this._request(out.request);
    for (const a of out.audio) this._play(a);
    const pos = this.replay.position(now);
    for (const [img, tile] of this._tiles) this._paint(img, tile, pos);
    this._meter();
    const layout = this.replay.layout(this.pinned);
    const flags = this.replay.members
      .map((m) => `${this.replay.videoState(m, pos)[1]}${this.replay.isTalking(m, pos) ? 1 : 0}`).join('');
    const key = `${this.replay.state} ${Math.floor(pos / POSITION_STEP_MS)} ${layout.main} ${layout.strip.join()} ${flags} ${this.replay.endMs}`;
    if (key !== this._viewKey) {
      this._viewKey = key;
      this.onChange();
    }
  }

  _request(req) {
    const sent = this.client.send({ type: 'get_recording', recording_id: this.recordingId, ...req });
    if (sent) this.stats.requests.push(req.from_ms);
    else this.replay.connectionLost(); // asked again once connected
  }

  _media({ kind, header, payload }) {
    if (header?.recording_id !== this.recordingId) return;
    if (this.replay.add(kind, header, payload)) {
      this.stats.framesReceived++;
      this.stats.bytesReceived += payload.byteLength;
    }
  }

  _ack(ack) {
    if (ack.req_type !== 'get_recording' || ack.recording_id !== this.recordingId || !this.ctx) return;
    this.stats.chunks++;
    this.replay.chunkDone(ack, this.ctx.currentTime);
    this._tick();
  }

  _error(err) {
    if (err.req_type !== 'get_recording') return;
    this.replay.chunkFailed(err.message);
    this._silence();
    this.onError(err.message);
    this._tick();
  }

  _play({ frame, when }) {
    let samples = pcm16ToFloat(frame.payload);
    if (frame.channels > 1) samples = samples.filter((_, i) => i % frame.channels === 0);
    if (!samples.length) return;
    let buffer;
    try {
      buffer = this.ctx.createBuffer(1, samples.length, frame.sampleRate);
    } catch {
      return; // a rate the browser cannot play
    }
    buffer.copyToChannel(samples, 0);
    const source = this.ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(this._out);
    source.onended = () => this._sources.delete(source);
    this._sources.add(source);
    source.start(when);
    this.stats.audioFramesPlayed++;
  }

  /** Stop every audio frame handed over and not finished. */
  _silence() {
    for (const source of this._sources) {
      try {
        source.stop();
      } catch {
        // not started or already over
      }
    }
    this._sources.clear();
  }

  _paint(img, tile, pos) {
    const frame = this.replay.frameFor(tile.identity, tile.prefer, pos);
    if (!frame || frame === tile.frame) return;
    const url = URL.createObjectURL(new Blob([frame.payload], { type: 'image/jpeg' }));
    img.src = url;
    img.dataset.t = String(frame.t);
    img.dataset.layer = frame.layer;
    if (tile.url) URL.revokeObjectURL(tile.url);
    tile.url = url;
    tile.frame = frame;
    this.stats.videoFramesShown++;
    this.stats.lastShownT = frame.t;
  }

  _meter() {
    const data = this._levelBuffer;
    this._analyser.getFloatTimeDomainData(data);
    let sum = 0;
    for (let i = 0; i < data.length; i++) sum += data[i] * data[i];
    this.stats.level = Math.sqrt(sum / data.length);
    this.stats.peakLevel = Math.max(this.stats.peakLevel, this.stats.level);
  }
}
