/**
 * The media runtime of one call (protocol.md §3.1, §4.6, §8.3–§8.6). Browser only.
 *
 * Owns, while a call is active: camera capture (getUserMedia at the configured size, drawn onto
 * a canvas of exactly video_width × video_height, JPEG via canvas.toBlob at video_fps, frames
 * over video_max_frame_bytes skipped, a tick skipped while the previous encode is pending);
 * microphone capture (the `pcm-capture` worklet → Resampler → audio_frame_ms frames at
 * audio_target_sample_rate → PCM16LE + rms); the receive side (JPEG → object URL in an <img>,
 * audio → AudioPlayer, talking indicator from rms with a 250 ms hold); counters in MediaStats.
 * Mute and camera-off stop sending that kind. Capture rate and frame length are fixed for the
 * call; size limits and the talking threshold are read live; video restarts on video changes.
 * Does not own: call signalling (client.js) or the page layout (app.js).
 */

import { AudioPlayer } from './player.js';
import { floatToPcm16, rms } from './pcm.js';
import { Resampler } from './resample.js';
import { isVideoCall } from './state.js';

const TALKING_HOLD_MS = 250; // §8.5
const VIDEO_KEYS = ['video_width', 'video_height', 'video_fps', 'video_jpeg_quality'];

export class CallMedia {
  /**
   * @param {object} o
   * @param {import('./client.js').RelayClient} o.client
   * @param {object} o.call          the active call_sessions row
   * @param {object} o.settings      parsed media_settings (state.js parseSettings)
   * @param {HTMLVideoElement} [o.localVideo]  local preview
   * @param {HTMLImageElement} [o.remoteVideo] remote frames
   * @param {import('./stats.js').MediaStats} o.stats
   * @param {(talking: boolean) => void} [o.onTalking]
   * @param {(message: string) => void} [o.onError]
   */
  constructor({ client, call, settings, localVideo, remoteVideo, stats, onTalking, onError }) {
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
    this.micMuted = false;
    this.cameraOff = false;
    this._stopped = false;
    this._audioSeq = 0;
    this._videoSeq = 0;
    this._remoteUrl = null;
    this._talkingTimer = null;
    this._onMedia = (ev) => this._receive(ev.detail);
    client.addEventListener('media', this._onMedia);
  }

  /** Acquire devices and start sending; receiving works even if capture fails. */
  async start() {
    this.ctx = new AudioContext();
    this.player = new AudioPlayer(this.ctx);
    this._statsTimer = setInterval(() => this.stats.updateJitter(this.player.statistics()), 250);
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
    if (this.video && this.stream && this.stream.getVideoTracks().length) this._startVideo();
  }

  setMicMuted(muted) {
    this.micMuted = Boolean(muted);
    for (const t of this.stream?.getAudioTracks() ?? []) t.enabled = !this.micMuted;
  }

  setCameraOff(off) {
    this.cameraOff = Boolean(off);
    for (const t of this.stream?.getVideoTracks() ?? []) t.enabled = !this.cameraOff;
  }

  /** New media_settings during the call: live fields apply at once, video restarts if needed. */
  updateSettings(settings) {
    const old = this.settings;
    this.settings = settings;
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
    clearInterval(this._statsTimer);
    clearTimeout(this._talkingTimer);
    this.onTalking(false);
    if (this._node) {
      this._node.port.postMessage('stop');
      this._node.disconnect();
    }
    this.player?.close();
    this.ctx?.close().catch(() => {});
    this._releaseStream();
    if (this.localVideo) this.localVideo.srcObject = null;
    if (this.remoteVideo) this.remoteVideo.removeAttribute('src');
    if (this._remoteUrl) URL.revokeObjectURL(this._remoteUrl);
    this._remoteUrl = null;
  }

  async _getStream() {
    const s = this.settings;
    const audio = { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 };
    const video = this.video
      ? { width: { ideal: s.video_width }, height: { ideal: s.video_height }, frameRate: { ideal: s.video_fps } }
      : false;
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

  _releaseStream() {
    for (const t of this.stream?.getTracks() ?? []) t.stop();
    this.stream = null;
  }

  async _startAudio() {
    const ctx = this.ctx;
    await ctx.audioWorklet.addModule(new URL('./capture-worklet.js', import.meta.url));
    if (this._stopped) return;
    const target = this.settings.audio_target_sample_rate;
    const frameSamples = Math.round((target * this.settings.audio_frame_ms) / 1000);
    const resampler = new Resampler(ctx.sampleRate, target);
    let frame = new Float32Array(frameSamples);
    let fill = 0;
    const source = ctx.createMediaStreamSource(this.stream);
    const node = new AudioWorkletNode(ctx, 'pcm-capture', { numberOfInputs: 1, numberOfOutputs: 1 });
    // The node must be pulled by the graph to run; route it through a muted gain.
    const sink = ctx.createGain();
    sink.gain.value = 0;
    source.connect(node).connect(sink).connect(ctx.destination);
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

  _startVideo() {
    const s = this.settings;
    const width = s.video_width;
    const height = s.video_height;
    const canvas = document.createElement('canvas');
    canvas.width = width;
    canvas.height = height;
    const g = canvas.getContext('2d');
    const camera = this.localVideo ?? document.createElement('video');
    camera.muted = true;
    camera.playsInline = true;
    camera.srcObject = new MediaStream(this.stream.getVideoTracks());
    camera.play().catch(() => {});
    let pending = false;
    const tick = () => {
      if (this.cameraOff || camera.readyState < 2 || !camera.videoWidth) return;
      if (pending) {
        this.stats.videoFramesSkipped++;
        return;
      }
      pending = true;
      drawCover(g, camera, width, height);
      canvas.toBlob((blob) => this._sendVideo(blob, width, height).finally(() => (pending = false)),
        'image/jpeg', s.video_jpeg_quality);
    };
    this._videoTimer = setInterval(tick, Math.max(1, Math.floor(1000 / Math.max(1, s.video_fps))));
  }

  _stopVideo() {
    clearInterval(this._videoTimer);
    this._videoTimer = null;
  }

  async _sendVideo(blob, width, height) {
    if (!blob || this._stopped || this.cameraOff) return;
    if (blob.size > this.settings.video_max_frame_bytes) {
      this.stats.videoFramesSkipped++;
      return;
    }
    const bytes = new Uint8Array(await blob.arrayBuffer());
    const header = { session_id: this.call.session_id, to: this.peer, seq: this._videoSeq, width, height };
    if (this.client.sendMedia('video', header, bytes)) {
      this._videoSeq++;
      this.stats.videoSent(performance.now(), bytes.length);
    } else {
      this.stats.videoFramesSkipped++;
    }
  }

  _receive({ kind, header, payload }) {
    // §8.4: only frames of this call from its peer.
    if (this._stopped || header.session_id !== this.call.session_id || header.from !== this.peer) return;
    const now = performance.now();
    if (kind === 'video') {
      this.stats.videoReceived(now, payload.length);
      if (!this.remoteVideo) return;
      const url = URL.createObjectURL(new Blob([payload], { type: 'image/jpeg' }));
      this.remoteVideo.src = url;
      if (this._remoteUrl) URL.revokeObjectURL(this._remoteUrl);
      this._remoteUrl = url;
    } else if (kind === 'audio') {
      this.stats.audioReceived(now, payload.length);
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
