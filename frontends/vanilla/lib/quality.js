/**
 * A connection-quality verdict for the call view (good / fair / poor), from the figures the
 * stats overlay already shows (stats.js): the received video frame rate against video_fps and
 * the share of video frames lost on the way, the received audio frame rate against
 * 1000 / audio_frame_ms, the audio frames the jitter buffer had to drop or conceal, and its depth
 * (the playout delay it adds).
 *
 * Only what the peer is sending counts: a muted microphone sends no audio and a camera turned
 * off no video, which is not a bad connection. A kind's rates are judged once it has been arriving
 * for a whole update (the rate window of the first second after a start is only partly filled).
 * With nothing to judge the verdict is 'idle' (the peer is silent and dark, or media has only
 * just started). pgcall's protocol
 * carries no timestamps, so the network delay itself is not measured.
 *
 * Pure: call update() about once a second with the current summary and the time (ms).
 * Does not own the counters (stats.js) or how the verdict is shown.
 */

export const LEVELS = ['good', 'fair', 'poor'];

// A rate below these shares of the expected one, or losses above them, lowers the verdict.
const FAIR = { video: 0.6, videoLoss: 0.1, audio: 0.85, loss: 0.03, depthMs: 220 };
const POOR = { video: 0.3, videoLoss: 0.3, audio: 0.6, loss: 0.12, depthMs: 400 };

export class QualityMeter {
  constructor() {
    this._last = null; // {nowMs, lost, videoLost, videoIn, audioOn, videoOn} of the last update
    this.level = 'idle';
    this.reasons = [];
  }

  /**
   * @param {object} summary  MediaStats.summary()
   * @param {number} nowMs
   * @param {object} o
   * @param {number} o.videoFps      expected video frame rate (media_settings.video_fps)
   * @param {number} o.audioFps      expected audio frames per second (1000 / audio_frame_ms)
   * @param {boolean} o.videoOn      the peer's video is arriving (VideoActivity says 'on')
   * @param {boolean} [o.connected]  our WebSocket is open
   * @returns {{level: string, reasons: string[]}}
   */
  update(summary, nowMs, { videoFps, audioFps, videoOn, connected = true }) {
    const lost = (summary.droppedFrames ?? 0) + (summary.concealedFrames ?? 0);
    const videoLost = summary.videoFramesLost ?? 0;
    const videoIn = summary.videoFramesReceived ?? 0;
    const audioIn = summary.audioFpsReceived ?? 0;
    const prev = this._last;
    this._last = { nowMs, lost, videoLost, videoIn, audioOn: audioIn > 0, videoOn };
    const reasons = [];
    let level = 0; // index into LEVELS
    const worse = (to, why) => {
      level = Math.max(level, to);
      reasons.push(why);
    };
    if (!connected) {
      worse(2, 'not connected to the server');
      return this._set(level, reasons);
    }
    const audioOn = audioIn > 0 && Boolean(prev?.audioOn);
    const judgeVideo = videoOn && Boolean(prev?.videoOn);
    if (!audioOn && !judgeVideo) return this._set(null, ['nothing received from the peer yet']);

    if (judgeVideo && videoFps > 0) {
      const share = (summary.videoFpsReceived ?? 0) / videoFps;
      const why = `video ${fmt(summary.videoFpsReceived)} of ${fmt(videoFps)} fps`;
      if (share < POOR.video) worse(2, why);
      else if (share < FAIR.video) worse(1, why);
      if (prev) {
        const missing = videoLost - prev.videoLost;
        const came = videoIn - prev.videoIn;
        const lostShare = missing > 0 ? missing / (missing + Math.max(0, came)) : 0;
        const whyLost = `${Math.round(lostShare * 100)} % of video frames lost`;
        if (lostShare > POOR.videoLoss) worse(2, whyLost);
        else if (lostShare > FAIR.videoLoss) worse(1, whyLost);
      }
    }
    if (audioOn && audioFps > 0) {
      const share = audioIn / audioFps;
      const why = `audio ${fmt(audioIn)} of ${fmt(audioFps)} frames/s`;
      if (share < POOR.audio) worse(2, why);
      else if (share < FAIR.audio) worse(1, why);
      if (prev && nowMs > prev.nowMs) {
        const perSecond = ((lost - prev.lost) * 1000) / (nowMs - prev.nowMs);
        const lossShare = Math.max(0, perSecond) / audioFps;
        const whyLoss = `${Math.round(lossShare * 100)} % of audio lost or late`;
        if (lossShare > POOR.loss) worse(2, whyLoss);
        else if (lossShare > FAIR.loss) worse(1, whyLoss);
      }
      const depth = summary.jitterDepthMs ?? 0;
      if (depth > POOR.depthMs) worse(2, `audio delayed ${depth} ms`);
      else if (depth > FAIR.depthMs) worse(1, `audio delayed ${depth} ms`);
    }
    return this._set(level, reasons);
  }

  _set(level, reasons) {
    this.level = level === null ? 'idle' : LEVELS[level];
    this.reasons = reasons;
    return { level: this.level, reasons };
  }
}

function fmt(n) {
  return Number(n ?? 0).toFixed(Number.isInteger(n) ? 0 : 1);
}
