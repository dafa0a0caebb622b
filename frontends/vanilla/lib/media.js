/**
 * The media runtime of one call (protocol.md §3.1, §4.6, §8.3–§8.6). Browser only.
 *
 * Owns, while a call is active: camera capture (getUserMedia at the configured size, drawn onto
 * a canvas of video_width × video_height, JPEG via canvas.toBlob at video_fps, a tick skipped
 * while the previous encode is pending) or, while the screen is shared, the screen instead
 * (getDisplayMedia, sent at its own aspect ratio with the longer side within the configured
 * frame's; the camera comes back when sharing stops, also when the browser's own "stop sharing"
 * ends the track); the JPEG budget (video.js: frames stay under video_max_frame_bytes);
 * switching camera or microphone during the call (a new track replaces the old one); microphone
 * capture (the `pcm-capture` worklet → Resampler → audio_frame_ms frames at
 * audio_target_sample_rate → PCM16LE + rms); the receive side (JPEG → object URL in an <img>,
 * audio → AudioPlayer, talking indicator from rms with a 250 ms hold, whether the peer's video is
 * live or off, video.js VideoActivity); the connection-quality verdict (quality.js); counters in
 * MediaStats. Mute and camera-off stop sending that kind. Capture rate and frame length are
 * fixed for the call; size limits and the talking threshold are read live; video restarts on
 * video changes.
 * Tells the page about changes it shows (sharing, devices, the peer's video, quality) through
 * `onChange`; the page reads the properties.
 * Does not own: call signalling (client.js), device lists (devices.js) or the page layout.
 */

import { withDevice } from './devices.js';
import { AudioPlayer } from './player.js';
import { floatToPcm16, rms } from './pcm.js';
import { QualityMeter } from './quality.js';
import { Resampler } from './resample.js';
import { isVideoCall } from './state.js';
import { JpegBudget, VideoActivity, fitWithin, screenBudget } from './video.js';

const TALKING_HOLD_MS = 250; // §8.5
const VIDEO_KEYS = ['video_width', 'video_height', 'video_fps', 'video_jpeg_quality'];
const WATCH_MS = 250; // jitter figures and the peer's video state
const QUALITY_EVERY = 4; // watch ticks per quality verdict (1 s)
const AUDIO_CONSTRAINTS = Object.freeze({
  echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1,
});

function videoConstraints(s) {
  return { width: { ideal: s.video_width }, height: { ideal: s.video_height }, frameRate: { ideal: s.video_fps } };
}

export class CallMedia {
  /**
   * @param {object} o
   * @param {import('./client.js').RelayClient} o.client
   * @param {object} o.call          the active call_sessions row
   * @param {object} o.settings      parsed media_settings (state.js parseSettings)
   * @param {HTMLVideoElement} [o.localVideo]  local preview (shows what is sent)
   * @param {HTMLImageElement} [o.remoteVideo] remote frames
   * @param {import('./stats.js').MediaStats} o.stats
   * @param {(talking: boolean) => void} [o.onTalking]
   * @param {(message: string) => void} [o.onError]
   * @param {() => void} [o.onChange]  sharing, devices, remoteVideoState or quality changed
   * @param {string} [o.cameraId]      preferred camera (devices.js), '' for the default
   * @param {string} [o.microphoneId]  preferred microphone
   */
  constructor({ client, call, settings, localVideo, remoteVideo, stats, onTalking, onError, onChange,
    cameraId = '', microphoneId = '' }) {
    this.client = client;
    this.call = call;
    this.peer = client.peerOf(call);
    this.settings = settings;
    this.video = isVideoCall(call);
    this.localVideo = localVideo ?? null;
    this.remoteVideo = remoteVideo ?? null;
    this.stats = stats;
    this.onTalking = onTalking ?? (() => {});
    this.onError = onError ?? (() => {});
    this.onChange = onChange ?? (() => {});
    this.micMuted = false;
    this.cameraOff = false;
    this.sharing = false; // the screen is the sent video
    this.screenTrack = null;
    this.remoteVideoState = this.video ? 'waiting' : 'none'; // waiting | on | off (video.js)
    this.quality = { level: 'idle', reasons: [] };
    this._preferred = { videoinput: cameraId, audioinput: microphoneId };
    this._stopped = false;
    this._audioSeq = 0;
    this._videoSeq = 0;
    this._remoteUrl = null;
    this._talkingTimer = null;
    this._activity = new VideoActivity();
    this._qualityMeter = new QualityMeter();
    this._budget = new JpegBudget({ quality: settings.video_jpeg_quality, maxBytes: settings.video_max_frame_bytes });
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
    this.player = new AudioPlayer(this.ctx);
    this.stats.resetSequences();
    if (this.video) this._activity.start(performance.now());
    let ticks = 0;
    this._watchTimer = setInterval(() => this._watch(++ticks % QUALITY_EVERY === 0), WATCH_MS);
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

  /** New media_settings during the call: live fields apply at once, video restarts if needed. */
  updateSettings(settings) {
    const old = this.settings;
    this.settings = settings;
    this._budget.configure({ quality: settings.video_jpeg_quality, maxBytes: settings.video_max_frame_bytes });
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
    clearInterval(this._watchTimer);
    clearTimeout(this._talkingTimer);
    this.onTalking(false);
    if (this._node) {
      this._node.port.postMessage('stop');
      this._node.disconnect();
    }
    this._source?.disconnect();
    this.player?.close();
    this.ctx?.close().catch(() => {});
    this.sharing = false;
    this._releaseScreen();
    this._releaseStream();
    if (this.localVideo) {
      this.localVideo.srcObject = null;
      delete this.localVideo.dataset.source;
    }
    if (this.remoteVideo) this.remoteVideo.removeAttribute('src');
    if (this._remoteUrl) URL.revokeObjectURL(this._remoteUrl);
    this._remoteUrl = null;
  }

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
          this._sendAudio(frame);
          frame = new Float32Array(frameSamples);
          fill = 0;
        }
      }
    };
  }

  _sendAudio(samples) {
    if (this.micMuted || this._stopped) return;
    const pcm = floatToPcm16(samples);
    if (pcm.length > this.settings.audio_max_frame_bytes) {
      this.stats.audioFramesSkipped++;
      return;
    }
    const header = {
      session_id: this.call.session_id,
      to: this.peer,
      seq: this._audioSeq,
      sample_rate: this.settings.audio_target_sample_rate,
      channels: 1,
      rms: rms(samples),
    };
    if (this.client.sendMedia('audio', header, pcm)) {
      this._audioSeq++;
      this.stats.audioSent(performance.now(), pcm.length);
    } else {
      this.stats.audioFramesSkipped++;
    }
  }

  /** Nothing to send: the camera is off (a shared screen is still sent). */
  _videoPaused() {
    return !this.sharing && this.cameraOff;
  }

  /** The picture size of the next frame: the configured one for the camera, fitted for a screen. */
  _frameSize(src) {
    const s = this.settings;
    const scale = this._budget.scale;
    if (this.sharing) return fitWithin(src.videoWidth, src.videoHeight, screenBudget(s), scale);
    if (scale >= 1) return { width: s.video_width, height: s.video_height };
    return fitWithin(s.video_width, s.video_height, screenBudget(s), scale);
  }

  _startVideo() {
    const canvas = document.createElement('canvas');
    const g = canvas.getContext('2d');
    let pending = false;
    const tick = () => {
      const src = this._capture;
      if (this._videoPaused() || !src || src.readyState < 2 || !src.videoWidth) return;
      if (pending) {
        this.stats.videoFramesSkipped++;
        return;
      }
      const { width, height } = this._frameSize(src);
      if (!width || !height) return;
      if (canvas.width !== width) canvas.width = width;
      if (canvas.height !== height) canvas.height = height;
      pending = true;
      if (this.sharing) g.drawImage(src, 0, 0, width, height); // fitted: nothing cropped
      else drawCover(g, src, width, height);
      canvas.toBlob((blob) => this._sendVideo(blob, width, height).finally(() => (pending = false)),
        'image/jpeg', this._budget.quality);
    };
    this._videoTimer = setInterval(tick, Math.max(1, Math.floor(1000 / Math.max(1, this.settings.video_fps))));
  }

  _stopVideo() {
    clearInterval(this._videoTimer);
    this._videoTimer = null;
  }

  async _sendVideo(blob, width, height) {
    if (!blob || this._stopped || this._videoPaused()) return;
    if (!this._budget.fits(blob.size)) {
      this.stats.videoFramesSkipped++;
      return;
    }
    const bytes = new Uint8Array(await blob.arrayBuffer());
    const header = { session_id: this.call.session_id, to: this.peer, seq: this._videoSeq, width, height };
    if (this.client.sendMedia('video', header, bytes)) {
      this._videoSeq++;
      this.stats.videoSent(performance.now(), bytes.length, width, height);
    } else {
      this.stats.videoFramesSkipped++;
    }
  }

  /** Every WATCH_MS: jitter figures, the peer's video state; every second also the quality. */
  _watch(withQuality) {
    if (this._stopped) return;
    const now = performance.now();
    this.stats.updateJitter(this.player.statistics());
    let changed = this._setRemoteVideo(this.video ? this._activity.state(now) : 'none');
    if (withQuality) {
      const s = this.settings;
      const before = this.quality.level;
      this.quality = this._qualityMeter.update(this.stats.summary(now), now, {
        videoFps: this.video ? s.video_fps : 0,
        audioFps: 1000 / Math.max(1, s.audio_frame_ms),
        videoOn: this.remoteVideoState === 'on',
        connected: this.client.connected,
      });
      changed = changed || before !== this.quality.level;
    }
    if (changed) this.onChange();
  }

  _setRemoteVideo(state) {
    if (state === this.remoteVideoState) return false;
    this.remoteVideoState = state;
    return true;
  }

  _receive({ kind, header, payload }) {
    // §8.4: only frames of this call from its peer.
    if (this._stopped || header.session_id !== this.call.session_id || header.from !== this.peer) return;
    const now = performance.now();
    if (kind === 'video') {
      this.stats.videoReceived(now, payload.length, header.width, header.height, header.seq);
      this._activity.frame(now);
      if (this.remoteVideo) {
        const url = URL.createObjectURL(new Blob([payload], { type: 'image/jpeg' }));
        this.remoteVideo.src = url;
        if (this._remoteUrl) URL.revokeObjectURL(this._remoteUrl);
        this._remoteUrl = url;
      }
      if (this.video && this._setRemoteVideo('on')) this.onChange();
    } else if (kind === 'audio') {
      this.stats.audioReceived(now, payload.length, header.seq);
      this.player?.push(header, payload);
      if (Number(header.rms) > this.settings.audio_talking_rms_threshold) {
        this.onTalking(true);
        clearTimeout(this._talkingTimer);
        this._talkingTimer = setTimeout(() => this.onTalking(false), TALKING_HOLD_MS);
      }
    }
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
