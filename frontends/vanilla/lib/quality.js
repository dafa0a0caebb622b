/**
 * A connection-quality verdict for the call view (good / fair / poor), from the figures the
 * stats overlay already shows (stats.js): the received video frame rate against video_fps and
 * the share of video frames lost on the way, the received audio frame rate against
 * 1000 / audio_frame_ms, the audio frames the jitter buffer had to drop or conceal, and its depth
 * (the playout delay it adds).
 *
 * The figures are taken over the last few seconds (WINDOW updates), so one late burst does not
 * paint the call red, and the shown level gets worse at once but better only after RECOVER_AFTER
 * better verdicts in a row, so it does not flicker.
 *
 * Only what the peer is sending counts: a muted microphone sends no audio and a camera turned
 * off no video, which is not a bad connection. A kind is judged once it has been arriving for a
 * whole update (the rate window of the first second after a start is only partly filled). With
 * nothing to judge the verdict is 'idle' (the peer is silent and dark, or media has only just
 * started). pgcall's protocol carries no timestamps, so the network delay itself is not measured.
 *
 * In a room (`audioRate: false`) members send audio only while they speak, so the audio rate
 * says nothing: audio is judged by the share of received frames lost, dropped or concealed, and
 * by the jitter buffer's depth; the room passes the video rate as the steady streams' share of
 * their nominal rates (stats.js StreamRates) times videoFps.
 *
 * Pure: call update() about once a second with the current summary and the time (ms).
 * Does not own the counters (stats.js) or how the verdict is shown.
 */

export const LEVELS = ['good', 'fair', 'poor'];
const WINDOW = 3; // updates (about seconds) the figures are taken over
const RECOVER_AFTER = 3; // better verdicts in a row before the shown level improves

// A rate below these shares of the expected one, or losses above them, lowers the verdict.
const FAIR = { video: 0.6, videoLoss: 0.1, audio: 0.85, loss: 0.05, depthMs: 220 };
const POOR = { video: 0.3, videoLoss: 0.3, audio: 0.6, loss: 0.15, depthMs: 400 };

export class QualityMeter {
  constructor() {
    this._samples = []; // the last WINDOW + 1 updates, oldest first
    this._better = 0; // better verdicts in a row while the shown level holds
    this._streak = null; // the worst of them: {level, reasons}
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
   * @param {boolean} [o.audioRate]  judge the audio frame rate (false in a room)
   * @returns {{level: string, reasons: string[]}}
   */
  update(summary, nowMs, { videoFps, audioFps, videoOn, connected = true, audioRate = true }) {
    const audioIn = summary.audioFpsReceived ?? 0;
    this._samples.push({
      nowMs,
      audioOn: audioIn > 0,
      videoOn: Boolean(videoOn),
      audioFps: audioIn,
      videoFps: summary.videoFpsReceived ?? 0,
      depthMs: summary.jitterDepthMs ?? 0,
      audioLost: (summary.droppedFrames ?? 0) + (summary.concealedFrames ?? 0),
      videoLost: summary.videoFramesLost ?? 0,
      videoIn: summary.videoFramesReceived ?? 0,
      audioIn: summary.audioFramesReceived ?? 0,
    });
    if (this._samples.length > WINDOW + 1) this._samples.shift();
    if (!connected) return this._show(2, ['not connected to the server'], true);

    const reasons = [];
    let level = 0; // index into LEVELS
    const worse = (to, why) => {
      level = Math.max(level, to);
      reasons.push(why);
    };
    const audio = this._run('audioOn');
    const video = this._run('videoOn');
    if (audio.length < 2 && video.length < 2) return this._show(null, ['nothing received from the peer yet'], true);

    if (video.length >= 2 && videoFps > 0) {
      const { first, last, recent } = ends(video);
      const rate = mean(recent.map((s) => s.videoFps));
      const why = `video ${fmt(rate)} of ${fmt(videoFps)} fps`;
      if (rate / videoFps < POOR.video) worse(2, why);
      else if (rate / videoFps < FAIR.video) worse(1, why);
      const missing = Math.max(0, last.videoLost - first.videoLost);
      const came = Math.max(0, last.videoIn - first.videoIn);
      const lostShare = missing ? missing / (missing + came) : 0;
      const whyLost = `${Math.round(lostShare * 100)} % of video frames lost`;
      if (lostShare > POOR.videoLoss) worse(2, whyLost);
      else if (lostShare > FAIR.videoLoss) worse(1, whyLost);
    }
    if (audio.length >= 2 && audioFps > 0) {
      const { first, last, recent } = ends(audio);
      const missing = Math.max(0, last.audioLost - first.audioLost);
      let lossShare;
      if (audioRate) {
        const rate = mean(recent.map((s) => s.audioFps));
        const why = `audio ${fmt(rate)} of ${fmt(audioFps)} frames/s`;
        if (rate / audioFps < POOR.audio) worse(2, why);
        else if (rate / audioFps < FAIR.audio) worse(1, why);
        lossShare = (missing * 1000) / Math.max(1, last.nowMs - first.nowMs) / audioFps;
      } else {
        const came = Math.max(0, last.audioIn - first.audioIn);
        lossShare = missing ? missing / (missing + came) : 0;
      }
      const whyLoss = `${Math.round(lossShare * 100)} % of audio lost or late`;
      if (lossShare > POOR.loss) worse(2, whyLoss);
      else if (lossShare > FAIR.loss) worse(1, whyLoss);
      const depth = Math.round(mean(recent.map((s) => s.depthMs)));
      if (depth > POOR.depthMs) worse(2, `audio delayed ${depth} ms`);
      else if (depth > FAIR.depthMs) worse(1, `audio delayed ${depth} ms`);
    }
    return this._show(level, reasons, false);
  }

  /** The newest samples in which `flag` holds without a break, oldest first. */
  _run(flag) {
    const run = [];
    for (let i = this._samples.length - 1; i >= 0 && this._samples[i][flag]; i--) run.unshift(this._samples[i]);
    return run;
  }

  /**
   * Show `level` (an index, or null for idle): at once if it is worse (or idle); if it is better,
   * only after RECOVER_AFTER better verdicts in a row, and then the worst of them.
   */
  _show(level, reasons, now) {
    const shown = LEVELS.indexOf(this.level); // -1 for idle
    if (now || level === null || shown < 0 || level >= shown) {
      this._set(level, reasons);
    } else {
      if (!this._streak || level > this._streak.level) this._streak = { level, reasons };
      if (++this._better >= RECOVER_AFTER) this._set(this._streak.level, this._streak.reasons);
    }
    return { level: this.level, reasons: this.reasons };
  }

  _set(level, reasons) {
    this._better = 0;
    this._streak = null;
    this.level = level === null ? 'idle' : LEVELS[level];
    this.reasons = reasons;
  }
}

function ends(run) {
  return { first: run[0], last: run.at(-1), recent: run.slice(1) };
}

function mean(values) {
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : 0;
}

function fmt(n) {
  const x = Number(n ?? 0);
  return Number.isInteger(x) ? String(x) : x.toFixed(1);
}
