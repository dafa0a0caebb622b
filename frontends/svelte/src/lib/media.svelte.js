// Runs the shared media runtime (CallMedia from the vanilla frontend's media.js) for the active
// call, and exposes what the call view shows: talking, mute, camera-off, stats.
//
// Owns: starting one CallMedia when a call becomes active and stopping it when the call ends,
// passing settings changes on, the page's one MediaStats object, published as window.pgcallStats
// (browser tests read its counters, which add up over all calls of the page, as in the vanilla
// app), and the rows of the stats overlay. Does not own: capture, encoding,
// playback or the jitter buffer (all in the shared modules), nor the markup.

import { CallMedia } from '$vanilla/media.js';
import { MediaStats } from '$vanilla/stats.js';
import { DEFAULT_SETTINGS } from '$vanilla/state.js';

export class CallRuntime {
  talking = $state(false);
  muted = $state(false);
  cameraOff = $state(false);
  hasRemoteVideo = $state(false);
  statsRows = $state.raw([]);

  #media = null;
  #sessionId = null;
  #statsTimer = null;

  constructor({ onError } = {}) {
    this.onError = onError ?? (() => {});
    this.stats = new MediaStats();
    publish(this.stats);
  }

  get sessionId() {
    return this.#sessionId;
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
    this.hasRemoteVideo = false;
    if (remoteVideo) {
      remoteVideo.onload = () => (this.hasRemoteVideo = true);
    }
    const media = new CallMedia({
      client,
      call,
      settings: settings ?? DEFAULT_SETTINGS,
      remoteVideo,
      localVideo,
      stats: this.stats,
      onTalking: (on) => (this.talking = on),
      onError: (message) => this.onError(message)
    });
    this.#media = media;
    media.start().catch((err) => {
      if (this.#media === media) this.onError(`Media failed to start: ${err?.message ?? err}`);
    });
  }

  stop() {
    if (this.#media) this.#media.stop();
    this.#media = null;
    this.#sessionId = null;
    this.talking = false;
    this.hasRemoteVideo = false;
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

  /** Refresh the overlay rows every `everyMs` while `on`; returns a stop function. */
  watchStats(everyMs = 500) {
    const refresh = () => (this.statsRows = this.#media ? formatSummary(this.stats.summary(performance.now())) : []);
    refresh();
    clearInterval(this.#statsTimer);
    this.#statsTimer = setInterval(refresh, everyMs);
    return () => clearInterval(this.#statsTimer);
  }
}

function publish(stats) {
  if (typeof window !== 'undefined') window.pgcallStats = stats;
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
    { key: 'audioFpsSent', label: 'Audio sent', value: `${fps(s.audioFpsSent)} fr/s` },
    { key: 'audioFpsReceived', label: 'Audio received', value: `${fps(s.audioFpsReceived)} fr/s` },
    { key: 'jitterDepthMs', label: 'Jitter buffer', value: `${s.jitterDepthMs} ms` },
    { key: 'droppedFrames', label: 'Dropped (late/dup)', value: String(s.droppedFrames) },
    { key: 'concealedFrames', label: 'Concealed', value: String(s.concealedFrames) },
    { key: 'skippedFrames', label: 'Not sent (skipped)', value: String(s.skippedFrames) },
    { key: 'framesTotal', label: 'Frames out / in', value: `${s.videoFramesSent + s.audioFramesSent} / ${s.videoFramesReceived + s.audioFramesReceived}` }
  ];
}
