/**
 * What a call and a room both capture and send (protocol.md §3.1, §8.3; protocol-rooms.md §4).
 * Browser only.
 *
 * Owns: the camera (getUserMedia at the configured size) or, while the screen is shared, the
 * screen instead (getDisplayMedia; the camera comes back when sharing stops, also when the
 * browser's own "stop sharing" ends the track); switching camera or microphone (a new track
 * replaces the old one); mute and camera-off; the microphone capture (the `pcm-capture` worklet →
 * Resampler → audio_frame_ms frames at audio_target_sample_rate, handed to `_sendAudio`); the
 * camera clock (every 1/video_fps s `_videoTick(source)` is called with the element showing what
 * is sent, unless the camera is off and nothing is shared); the AudioContext receivers play on.
 * Subclasses decide what is sent and how received media is shown: CallMedia (media.js) for a
 * 1:1 call, RoomMedia (roommedia.js) for a room.
 * Does not own: framing or headers, receiving, device lists (devices.js), the page layout.
 *
 * Hooks a subclass implements: `_onStart()` (once the AudioContext exists, before capture),
 * `_onStop()`, `_sendAudio(samples)`, `_videoTick(source)`, `_receive({kind, header, payload})`.
 */

import { withDevice } from './devices.js';
import { Resampler } from './resample.js';
import { fitWithin, screenBudget } from './video.js';

const VIDEO_KEYS = ['video_width', 'video_height', 'video_fps', 'video_jpeg_quality'];
export const AUDIO_CONSTRAINTS = Object.freeze({
  echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1,
});

export function videoConstraints(s) {
  return { width: { ideal: s.video_width }, height: { ideal: s.video_height }, frameRate: { ideal: s.video_fps } };
}

export class MediaCapture {
  /**
   * @param {object} o
   * @param {import('./client.js').RelayClient} o.client
   * @param {object} o.settings      parsed media_settings (state.js parseSettings)
   * @param {boolean} o.video        capture and send video
   * @param {HTMLVideoElement} [o.localVideo]  preview; also the element frames are drawn from
   * @param {import('./stats.js').MediaStats} o.stats
   * @param {(message: string) => void} [o.onError]
   * @param {() => void} [o.onChange]  something the page shows changed
   * @param {string} [o.cameraId]      preferred camera (devices.js), '' for the default
   * @param {string} [o.microphoneId]  preferred microphone
   */
  constructor({ client, settings, video, localVideo, stats, onError, onChange, cameraId = '', microphoneId = '' }) {
    this.client = client;
    this.settings = settings;
    this.video = Boolean(video);
    this.localVideo = localVideo ?? null;
    this.stats = stats;
    this.onError = onError ?? (() => {});
    this.onChange = onChange ?? (() => {});
    this.micMuted = false;
    this.cameraOff = false;
    this.sharing = false; // the screen is the sent video
    this.screenTrack = null;
    this._preferred = { videoinput: cameraId, audioinput: microphoneId };
    this._stopped = false;
    this._onMedia = (ev) => this._receive(ev.detail);
    client.addEventListener('media', this._onMedia);
  }

  /** Whether this browser can share a screen at all. */
  static get screenShareSupported() {
    return Boolean(globalThis.navigator?.mediaDevices?.getDisplayMedia);
  }

  /** Acquire devices and start sending; receiving works even if capture fails. */
  async start() {
    this.ctx = new AudioContext();
    this._onStart();
    this.ctx.resume().catch(() => {});
    this.stream = await this._getStream();
    if (this._stopped) return this._releaseStream();
    if (this.stream && this.stream.getAudioTracks().length) {
      try {
        await this._startAudio();
      } catch (err) {
        this.onError(`Microphone capture failed: ${err.message}`);
      }
    }
    if (this.video) {
      this._capture = this.localVideo ?? document.createElement('video');
      this._capture.muted = true;
      this._capture.playsInline = true;
      this._showCamera();
      if (this._cameraTrack()) this._startVideo();
    }
    this.onChange();
  }

  setMicMuted(muted) {
    this.micMuted = Boolean(muted);
    for (const t of this.stream?.getAudioTracks() ?? []) t.enabled = !this.micMuted;
  }

  setCameraOff(off) {
    this.cameraOff = Boolean(off);
    for (const t of this.stream?.getVideoTracks() ?? []) t.enabled = !this.cameraOff;
  }

  /** The device id of the camera ('videoinput') or microphone ('audioinput') in use, or ''. */
  deviceInUse(kind) {
    const track = kind === 'videoinput' ? this._cameraTrack() : this.stream?.getAudioTracks()[0];
    return track?.getSettings?.().deviceId ?? '';
  }

  /** What is sent as video now (the camera or the shared screen), for a preview; or null. */
  get previewStream() {
    return this._capture?.srcObject ?? null;
  }

  /** 'camera' or 'screen': what previewStream shows. */
  get previewSource() {
    return this.sharing ? 'screen' : 'camera';
  }

  /** Capture from another camera; the old one is released. Rejects if it cannot be opened. */
  async setCamera(deviceId) {
    if (!this.video || this._stopped) return;
    try {
      await this._openTrack('video', deviceId);
    } finally {
      this._attach('video');
    }
  }

  /** Capture from another microphone; the old one is released. Rejects if it cannot be opened. */
  async setMicrophone(deviceId) {
    if (this._stopped) return;
    try {
      await this._openTrack('audio', deviceId);
    } finally {
      this._attach('audio');
    }
    if (!this._node && this.stream?.getAudioTracks().length) await this._startAudio();
  }

  /**
   * Send the screen instead of the camera. Must run from a click (browsers require a user
   * gesture). Resolves false when the user cancels the picker.
   */
  async startScreenShare() {
    if (!this.video || this.sharing || this._stopped) return false;
    let screen;
    try {
      screen = await navigator.mediaDevices.getDisplayMedia({
        video: { frameRate: { ideal: this.settings.video_fps } },
        audio: false,
      });
    } catch (err) {
      if (err?.name === 'NotAllowedError' || err?.name === 'AbortError') return false; // cancelled
      throw err;
    }
    const track = screen.getVideoTracks()[0];
    if (this._stopped || this.sharing || !track) {
      for (const t of screen.getTracks()) t.stop();
      return false;
    }
    this._screen = screen;
    this.screenTrack = track;
    // The browser's own "Stop sharing" ends the track: the camera comes back.
    this._onScreenEnded = () => this.stopScreenShare();
    track.addEventListener('ended', this._onScreenEnded);
    this.sharing = true;
    this._showSource(screen, 'screen');
    if (!this._videoTimer) this._startVideo();
    this.onChange();
    return true;
  }

  /** Back to the camera (or to no video if there is none). */
  stopScreenShare() {
    if (!this.sharing) return;
    this.sharing = false;
    this._releaseScreen();
    if (!this._stopped) {
      this._showCamera();
      this.onChange();
    }
  }

  /** New media_settings: live fields apply at once, the camera clock restarts if needed. */
  updateSettings(settings) {
    const old = this.settings;
    this.settings = settings;
    this._settingsChanged(old, settings);
    if (this._videoTimer && VIDEO_KEYS.some((k) => old[k] !== settings[k])) {
      this._stopVideo();
      this._startVideo();
    }
  }

  stop() {
    if (this._stopped) return;
    this._stopped = true;
    this.client.removeEventListener('media', this._onMedia);
    this._stopVideo();
    if (this._node) {
      this._node.port.postMessage('stop');
      this._node.disconnect();
    }
    this._source?.disconnect();
    this._onStop();
    this.ctx?.close().catch(() => {});
    this.sharing = false;
    this._releaseScreen();
    this._releaseStream();
    if (this.localVideo) {
      this.localVideo.srcObject = null;
      delete this.localVideo.dataset.source;
    }
  }

  // -- hooks -----------------------------------------------------------------------------------

  _onStart() {}

  _onStop() {}

  _settingsChanged() {}

  _sendAudio() {}

  _videoTick() {}

  _receive() {}

  // -- capture ---------------------------------------------------------------------------------

  async _getStream() {
    const s = this.settings;
    const audio = withDevice(AUDIO_CONSTRAINTS, this._preferred.audioinput);
    const video = this.video ? withDevice(videoConstraints(s), this._preferred.videoinput) : false;
    try {
      return await navigator.mediaDevices.getUserMedia({ audio, video });
    } catch (err) {
      if (!video) {
        this.onError(`Microphone unavailable: ${err.message}`);
        return null;
      }
      // No camera (or it is refused): still talk.
      this.onError(`Camera unavailable: ${err.message}`);
      try {
        return await navigator.mediaDevices.getUserMedia({ audio, video: false });
      } catch (err2) {
        this.onError(`Microphone unavailable: ${err2.message}`);
        return null;
      }
    }
  }

  /**
   * Open `deviceId` for `kind` ('audio' | 'video') and put its track in place of the current
   * one. Some systems let only one program hold a camera: if opening fails while the old track
   * runs, the old one is released and opening is tried again; if that fails too, the previous
   * device is reopened and the error is passed on. The caller then calls _attach(kind).
   */
  async _openTrack(kind, deviceId) {
    const base = kind === 'video' ? videoConstraints(this.settings) : AUDIO_CONSTRAINTS;
    const open = async (id, exact) => {
      const s = await navigator.mediaDevices.getUserMedia({ [kind]: withDevice(base, id, { exact }) });
      return kind === 'video' ? s.getVideoTracks()[0] : s.getAudioTracks()[0];
    };
    const current = kind === 'video' ? this._cameraTrack() : this.stream?.getAudioTracks()[0];
    const previousId = current?.getSettings?.().deviceId ?? '';
    let track;
    try {
      track = await open(deviceId, true);
    } catch (first) {
      if (!current) throw first;
      this._removeTracks(kind);
      try {
        track = await open(deviceId, true);
      } catch (err) {
        track = await open(previousId, false).catch(() => null);
        if (track && !this._stopped) this._addTrack(track);
        else track?.stop();
        throw err;
      }
    }
    if (this._stopped) {
      track.stop();
      return;
    }
    this._removeTracks(kind);
    this._addTrack(track);
    this.onChange();
  }

  /** Wire the current track of `kind` in: enabled state, preview, capture, worklet input. */
  _attach(kind) {
    if (this._stopped) return;
    if (kind === 'video') {
      const track = this._cameraTrack();
      if (track) track.enabled = !this.cameraOff;
      if (!this.sharing) this._showCamera();
      if (track && !this._videoTimer) this._startVideo();
      return;
    }
    const track = this.stream?.getAudioTracks()[0];
    if (!track) return;
    track.enabled = !this.micMuted;
    if (this._node && this._sourceTrack !== track) {
      this._source?.disconnect();
      this._source = this.ctx.createMediaStreamSource(new MediaStream([track]));
      this._source.connect(this._node);
      this._sourceTrack = track;
    }
  }

  _removeTracks(kind) {
    for (const t of (kind === 'video' ? this.stream?.getVideoTracks() : this.stream?.getAudioTracks()) ?? []) {
      this.stream.removeTrack(t);
      t.stop();
    }
  }

  _addTrack(track) {
    if (!this.stream) this.stream = new MediaStream();
    this.stream.addTrack(track);
  }

  _cameraTrack() {
    return this.stream?.getVideoTracks()[0] ?? null;
  }

  _showCamera() {
    const track = this._cameraTrack();
    this._showSource(track ? new MediaStream([track]) : null, 'camera');
  }

  /** Point the capture element (also the local preview) at what is sent now. */
  _showSource(stream, kind) {
    const el = this._capture;
    if (!el) return;
    el.srcObject = stream;
    el.dataset.source = kind;
    if (stream) el.play().catch(() => {});
  }

  _releaseStream() {
    for (const t of this.stream?.getTracks() ?? []) t.stop();
    this.stream = null;
  }

  _releaseScreen() {
    if (this.screenTrack && this._onScreenEnded) this.screenTrack.removeEventListener('ended', this._onScreenEnded);
    for (const t of this._screen?.getTracks() ?? []) t.stop();
    this._screen = null;
    this.screenTrack = null;
  }

  async _startAudio() {
    const ctx = this.ctx;
    await ctx.audioWorklet.addModule(new URL('./capture-worklet.js', import.meta.url));
    if (this._stopped || this._node) return;
    const target = this.settings.audio_target_sample_rate;
    const frameSamples = Math.round((target * this.settings.audio_frame_ms) / 1000);
    const resampler = new Resampler(ctx.sampleRate, target);
    let frame = new Float32Array(frameSamples);
    let fill = 0;
    const track = this.stream.getAudioTracks()[0];
    const source = ctx.createMediaStreamSource(new MediaStream([track]));
    const node = new AudioWorkletNode(ctx, 'pcm-capture', { numberOfInputs: 1, numberOfOutputs: 1 });
    // The node must be pulled by the graph to run; route it through a muted gain.
    const sink = ctx.createGain();
    sink.gain.value = 0;
    source.connect(node).connect(sink).connect(ctx.destination);
    this._source = source;
    this._sourceTrack = track;
    this._node = node;
    node.port.onmessage = (ev) => {
      const out = resampler.process(ev.data);
      let offset = 0;
      while (offset < out.length) {
        const n = Math.min(out.length - offset, frameSamples - fill);
        frame.set(out.subarray(offset, offset + n), fill);
        fill += n;
        offset += n;
        if (fill === frameSamples) {
          if (!this.micMuted && !this._stopped) this._sendAudio(frame);
          frame = new Float32Array(frameSamples);
          fill = 0;
        }
      }
    };
  }

  /** Nothing to send: the camera is off (a shared screen is still sent). */
  _videoPaused() {
    return !this.sharing && this.cameraOff;
  }

  _startVideo() {
    const tick = () => {
      const src = this._capture;
      if (this._stopped || this._videoPaused() || !src || src.readyState < 2 || !src.videoWidth) return;
      this._videoTick(src);
    };
    this._videoTimer = setInterval(tick, Math.max(1, Math.floor(1000 / Math.max(1, this.settings.video_fps))));
  }

  _stopVideo() {
    clearInterval(this._videoTimer);
    this._videoTimer = null;
  }

  /**
   * The picture size of a frame whose longer side may be `maxLong` at `scale` (JPEG budget):
   * the camera at width×height when it fits, cropped to that shape; a shared screen at its own
   * aspect ratio.
   */
  _fitSource(src, width, height, scale = 1) {
    if (this.sharing) return fitWithin(src.videoWidth, src.videoHeight, Math.max(width, height), scale);
    if (scale >= 1) return { width, height };
    return fitWithin(width, height, Math.max(width, height), scale);
  }

  /** The configured frame's longer side. */
  _longSide() {
    return screenBudget(this.settings);
  }
}

/**
 * Draws the capture element onto a canvas and encodes it as JPEG, one picture at a time.
 * encode() returns false (and does nothing) while the previous picture is still being encoded
 * or sent; `then(blob)` runs when the JPEG is ready, and the encoder is free once it settles.
 */
export class FrameEncoder {
  constructor() {
    this.canvas = document.createElement('canvas');
    this.g = this.canvas.getContext('2d');
    this.pending = false;
  }

  /** `whole`: draw the whole source fitted (a screen); else crop it to fill (a camera). */
  encode(src, width, height, { whole, quality }, then) {
    if (this.pending) return false;
    const { canvas, g } = this;
    if (canvas.width !== width) canvas.width = width;
    if (canvas.height !== height) canvas.height = height;
    this.pending = true;
    if (whole) g.drawImage(src, 0, 0, width, height);
    else drawCover(g, src, width, height);
    canvas.toBlob((blob) => {
      Promise.resolve()
        .then(() => then(blob))
        .catch(() => {})
        .finally(() => (this.pending = false));
    }, 'image/jpeg', quality);
    return true;
  }
}

/** Draw the camera image filling w×h, cropping the excess so nothing is stretched. */
function drawCover(g, video, w, h) {
  const vw = video.videoWidth;
  const vh = video.videoHeight;
  const scale = Math.max(w / vw, h / vh);
  const sw = w / scale;
  const sh = h / scale;
  g.drawImage(video, (vw - sw) / 2, (vh - sh) / 2, sw, sh, 0, 0, w, h);
}
