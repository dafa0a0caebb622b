// Runs the shared media runtime (CallMedia from the vanilla frontend's media.js) for the active
// call, and exposes what the call view shows: talking, mute, camera-off, screen sharing, the
// peer's video state, connection quality, the device menus, stats.
//
// Owns: starting one CallMedia when a call becomes active and stopping it when the call ends,
// passing settings changes on, the camera/microphone menus (mediacontrols.js, over the shared
// devices.js), the page's one MediaStats object, published as window.pgcallStats (browser tests
// read its counters, which add up over all calls of the page, as in the vanilla app) and the
// current CallMedia as window.pgcallMedia, and the rows of the stats overlay. Does not own:
// capture, encoding, playback, the jitter buffer, the quality verdict or the peer's video state
// (all in the shared modules), nor the markup.

import { CallMedia } from '$vanilla/media.js';
import { MediaStats } from '$vanilla/stats.js';
import { DEFAULT_SETTINGS } from '$vanilla/state.js';
import * as controls from './mediacontrols.js';

export class CallRuntime {
  talking = $state(false);
  muted = $state(false);
  cameraOff = $state(false);
  sharing = $state(false);
  remoteVideo = $state('waiting'); // waiting | on | off | none (voice call)
  quality = $state.raw({ level: 'idle', reasons: [] });
  cameras = $state.raw([]); // [{id, label}]
  microphones = $state.raw([]);
  cameraId = $state('');
  microphoneId = $state('');
  statsRows = $state.raw([]);

  #media = null;
  #sessionId = null;
  #statsTimer = null;
  #devices = [];

  constructor({ onError } = {}) {
    this.onError = onError ?? (() => {});
    this.stats = new MediaStats();
    publish('pgcallStats', this.stats);
    globalThis.navigator?.mediaDevices?.addEventListener?.('devicechange', () => {
      if (this.#media) this.refreshDevices();
    });
  }

  get sessionId() {
    return this.#sessionId;
  }

  get screenShareSupported() {
    return CallMedia.screenShareSupported;
  }

  /**
   * Start the media of `call` (stopping any other). `remoteVideo`/`localVideo` are the <img> and
   * <video> of the call view; a voice call has none.
   */
  start({ client, call, settings, remoteVideo, localVideo }) {
    this.stop();
    this.#sessionId = call.session_id;
    this.talking = false;
    this.muted = false;
    this.cameraOff = false;
    const media = new CallMedia({
      client,
      call,
      settings: settings ?? DEFAULT_SETTINGS,
      remoteVideo,
      localVideo,
      stats: this.stats,
      onTalking: (on) => (this.talking = on),
      onError: (message) => this.onError(message),
      onChange: () => this.#mirror(media),
      ...controls.rememberedDevices()
    });
    this.#media = media;
    publish('pgcallMedia', media);
    this.#mirror(media);
    media.start().then(
      () => this.#media === media && this.refreshDevices(),
      (err) => {
        if (this.#media === media) this.onError(`Media failed to start: ${err?.message ?? err}`);
      }
    );
  }

  stop() {
    if (this.#media) this.#media.stop();
    this.#media = null;
    publish('pgcallMedia', null);
    this.#sessionId = null;
    this.talking = false;
    this.sharing = false;
    this.remoteVideo = 'waiting';
    this.quality = { level: 'idle', reasons: [] };
    this.statsRows = [];
  }

  updateSettings(settings) {
    if (this.#media && settings) this.#media.updateSettings(settings);
  }

  toggleMute() {
    this.muted = !this.muted;
    this.#media?.setMicMuted(this.muted);
  }

  toggleCamera() {
    this.cameraOff = !this.cameraOff;
    this.#media?.setCameraOff(this.cameraOff);
  }

  /** Start or stop sharing the screen; must run from a click. */
  async toggleScreenShare() {
    await controls.toggleScreenShare(this.#media, (message) => this.onError(message));
  }

  /** Re-read the device lists (labels appear once the browser has given access). */
  async refreshDevices() {
    this.#devices = await controls.listDevices();
    this.#mirrorDevices();
  }

  /** Use (and remember) another camera ('videoinput') or microphone ('audioinput'). */
  async chooseDevice(kind, deviceId) {
    await controls.useDevice(this.#media, kind, deviceId, (message) => this.onError(message));
    this.#mirrorDevices();
  }

  /** Refresh the overlay rows every `everyMs` while `on`; returns a stop function. */
  watchStats(everyMs = 500) {
    const refresh = () => (this.statsRows = this.#media ? formatSummary(this.stats.summary(performance.now())) : []);
    refresh();
    clearInterval(this.#statsTimer);
    this.#statsTimer = setInterval(refresh, everyMs);
    return () => clearInterval(this.#statsTimer);
  }

  #mirror(media) {
    if (this.#media !== media) return;
    this.sharing = media.sharing;
    this.remoteVideo = media.remoteVideoState;
    if (media.quality.level !== this.quality.level || media.quality.reasons.join() !== this.quality.reasons.join()) {
      this.quality = media.quality;
    }
    this.#mirrorDevices();
  }

  #mirrorDevices() {
    const menus = controls.deviceMenus(this.#devices, this.#media);
    this.cameras = menus.cameras;
    this.microphones = menus.microphones;
    this.cameraId = menus.cameraId;
    this.microphoneId = menus.microphoneId;
  }
}

function publish(name, value) {
  if (typeof window !== 'undefined') window[name] = value;
}

const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KB`;
const fps = (n) => n.toFixed(1);

/** The overlay's rows, in reading order. */
export function formatSummary(s) {
  return [
    { key: 'videoFpsSent', label: 'Video sent', value: `${fps(s.videoFpsSent)} fps` },
    { key: 'videoFpsReceived', label: 'Video received', value: `${fps(s.videoFpsReceived)} fps` },
    { key: 'videoAvgSentBytes', label: 'Frame size out', value: `${kb(s.videoLastSentBytes)} (avg ${kb(s.videoAvgSentBytes)})` },
    { key: 'videoAvgReceivedBytes', label: 'Frame size in', value: `${kb(s.videoLastReceivedBytes)} (avg ${kb(s.videoAvgReceivedBytes)})` },
    { key: 'videoSentSize', label: 'Picture out / in', value: `${s.videoSentSize.join('×')} / ${s.videoReceivedSize.join('×')}` },
    { key: 'audioFpsSent', label: 'Audio sent', value: `${fps(s.audioFpsSent)} fr/s` },
    { key: 'audioFpsReceived', label: 'Audio received', value: `${fps(s.audioFpsReceived)} fr/s` },
    { key: 'jitterDepthMs', label: 'Jitter buffer', value: `${s.jitterDepthMs} ms` },
    { key: 'droppedFrames', label: 'Dropped (late/dup)', value: String(s.droppedFrames) },
    { key: 'concealedFrames', label: 'Concealed', value: String(s.concealedFrames) },
    { key: 'skippedFrames', label: 'Not sent (skipped)', value: String(s.skippedFrames) },
    { key: 'framesTotal', label: 'Frames out / in', value: `${s.videoFramesSent + s.audioFramesSent} / ${s.videoFramesReceived + s.audioFramesReceived}` }
  ];
}
