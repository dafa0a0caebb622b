/**
 * The media runtime of one call (protocol.md §3.1, §4.6, §8.3–§8.6). Browser only.
 *
 * Owns, while a call is active, on top of the capture it shares with rooms (capture.js: camera
 * or shared screen, microphone, device switching, mute and camera-off): sending the camera or
 * screen as JPEG at video_fps (drawn onto a canvas of video_width × video_height, a shared
 * screen at its own aspect ratio with the longer side within the configured frame's; a tick
 * skipped while the previous encode is pending) and the microphone's frames, with the call's
 * `session_id` and `to`; the JPEG budget (video.js: frames stay under video_max_frame_bytes);
 * the receive side (JPEG → object URL in an <img>, audio → AudioPlayer, talking indicator from
 * rms with a 250 ms hold, whether the peer's video is live or off, video.js VideoActivity); the
 * connection-quality verdict (quality.js); counters in MediaStats. Mute and camera-off stop
 * sending that kind. Capture rate and frame length are fixed for the call; size limits and the
 * talking threshold are read live; video restarts on video changes.
 * Tells the page about changes it shows (sharing, devices, the peer's video, quality) through
 * `onChange`; the page reads the properties.
 * Does not own: call signalling (client.js), device lists (devices.js) or the page layout.
 */

import { FrameEncoder, MediaCapture } from './capture.js';
import { AudioPlayer } from './player.js';
import { floatToPcm16, rms } from './pcm.js';
import { QualityMeter } from './quality.js';
import { isVideoCall } from './state.js';
import { JpegBudget, VideoActivity } from './video.js';

const TALKING_HOLD_MS = 250; // §8.5
const WATCH_MS = 250; // jitter figures and the peer's video state
const QUALITY_EVERY = 4; // watch ticks per quality verdict (1 s)

export class CallMedia extends MediaCapture {
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
    super({ client, settings, video: isVideoCall(call), localVideo, stats, onError, onChange, cameraId, microphoneId });
    this.call = call;
    this.peer = client.peerOf(call);
    this.remoteVideo = remoteVideo ?? null;
    this.onTalking = onTalking ?? (() => {});
    this.remoteVideoState = this.video ? 'waiting' : 'none'; // waiting | on | off (video.js)
    this.quality = { level: 'idle', reasons: [] };
    this._audioSeq = 0;
    this._videoSeq = 0;
    this._remoteUrl = null;
    this._talkingTimer = null;
    this._activity = new VideoActivity();
    this._qualityMeter = new QualityMeter();
    this._budget = new JpegBudget({ quality: settings.video_jpeg_quality, maxBytes: settings.video_max_frame_bytes });
    this._encoder = null;
  }

  _onStart() {
    this.player = new AudioPlayer(this.ctx);
    this.stats.resetSequences();
    if (this.video) this._activity.start(performance.now());
    let ticks = 0;
    this._watchTimer = setInterval(() => this._watch(++ticks % QUALITY_EVERY === 0), WATCH_MS);
  }

  _onStop() {
    clearInterval(this._watchTimer);
    clearTimeout(this._talkingTimer);
    this.onTalking(false);
    this.player?.close();
    if (this.remoteVideo) this.remoteVideo.removeAttribute('src');
    if (this._remoteUrl) URL.revokeObjectURL(this._remoteUrl);
    this._remoteUrl = null;
  }

  _settingsChanged(old, settings) {
    this._budget.configure({ quality: settings.video_jpeg_quality, maxBytes: settings.video_max_frame_bytes });
  }

  _sendAudio(samples) {
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

  /** The picture size of the next frame: the configured one for the camera, fitted for a screen. */
  _frameSize(src) {
    return this._fitSource(src, this.settings.video_width, this.settings.video_height, this._budget.scale);
  }

  _videoTick(src) {
    this._encoder ??= new FrameEncoder();
    if (this._encoder.pending) {
      this.stats.videoFramesSkipped++;
      return;
    }
    const { width, height } = this._frameSize(src);
    if (!width || !height) return;
    this._encoder.encode(src, width, height, { whole: this.sharing, quality: this._budget.quality },
      (blob) => this._sendVideo(blob, width, height));
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
