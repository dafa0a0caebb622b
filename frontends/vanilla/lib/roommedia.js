/**
 * The media runtime of one room (protocol-rooms.md §4). Browser only.
 *
 * Owns, while this client is a member, on top of the capture it shares with calls (capture.js:
 * camera or shared screen, microphone, device switching, mute and camera-off):
 * sending — the layers the server asks for (`room_layers`): the full picture (the configured
 * frame, or the screen at its aspect ratio, at video_fps, within the JPEG budget) while
 * `full:true`, a thumbnail of about 160 × 90 on every second camera tick while `thumb:true`,
 * each with its own `seq` and `layer`; audio only while the microphone is loud (roomsend.js
 * SilenceGate: RMS over half the talking threshold opens it, 300 ms of hangover), with `rms` in
 * the header for the server's speaker detection;
 * receiving — per member: a jitter-buffered AudioPlayer (created on its first frame, closed after
 * AUDIO_IDLE_MS of silence or when the member leaves), whether it is talking (rms over the
 * talking threshold, 250 ms hold), its video frames by layer as object URLs put into the <img>
 * tiles attached for it (each tile shows its preferred layer while fresh, else the latest:
 * roomview.js pickLayer), whether its video is live or off (video.js VideoActivity), who sends
 * the full-layer frames (`fullFrom`, which tells a large room's main); the connection-quality
 * verdict (quality.js, room mode); counters in MediaStats (per sender and layer).
 * Tells the page about changes it shows (members' video and talking, my speaking, sharing,
 * devices, quality, fullFrom) through `onChange`; the page reads the properties and methods.
 * Does not own: room signalling and state (client.js, rooms.js), set_room_state (the page sends
 * it), the layout (roomview.js and the page).
 */

import { FrameEncoder, MediaCapture } from './capture.js';
import { floatToPcm16, rms } from './pcm.js';
import { AudioPlayer } from './player.js';
import { QualityMeter } from './quality.js';
import { SilenceGate, THUMB_QUALITY, layersForTick, thumbSize } from './roomsend.js';
import { isVideoRoom } from './rooms.js';
import { pickLayer } from './roomview.js';
import { StreamRates } from './stats.js';
import { JpegBudget, VideoActivity } from './video.js';

const TALKING_HOLD_MS = 250;
const WATCH_MS = 250;
const QUALITY_EVERY = 4; // watch ticks per quality verdict (1 s)
const AUDIO_IDLE_MS = 10000; // a member's player is closed after this long without audio
const FULL_FROM_MS = 1500; // full frames from a member this recent: it is my main (large room)

export class RoomMedia extends MediaCapture {
  /**
   * @param {object} o
   * @param {import('./client.js').RelayClient} o.client
   * @param {object} o.room          the rooms row
   * @param {object} o.settings      parsed media_settings
   * @param {import('./stats.js').MediaStats} o.stats
   * @param {(message: string) => void} [o.onError]
   * @param {() => void} [o.onChange]
   * @param {string} [o.cameraId]
   * @param {string} [o.microphoneId]
   */
  constructor({ client, room, settings, stats, onError, onChange, cameraId = '', microphoneId = '' }) {
    // The capture element is not shown: previews are attached with attachPreview().
    super({ client, settings, video: isVideoRoom(room), localVideo: null, stats, onError, onChange, cameraId, microphoneId });
    this.roomId = room.room_id;
    this.layers = null; // {full, thumb} from room_layers
    this.speaking = false; // my silence gate is open: my audio is sent
    this.fullFrom = null; // who sends the full-layer frames I get (my main, in a large room)
    this.quality = { level: 'idle', reasons: [] };
    this._members = new Map(); // identity -> per-member receive state
    this._tiles = new Map(); // <img> -> {identity, prefer}
    this._previews = new Set(); // <video> elements showing what I send
    this._gate = new SilenceGate({ threshold: gateThreshold(settings) });
    this._seq = { audio: 0, full: 0, thumb: 0 };
    this._tick = 0;
    this._encoders = { full: null, thumb: null };
    this._budget = new JpegBudget({ quality: settings.video_jpeg_quality, maxBytes: settings.video_max_frame_bytes });
    this._rates = new StreamRates();
    this._qualityMeter = new QualityMeter();
    this._fullFromMs = 0;
    this._closedJitter = { late: 0, duplicates: 0, dropped: 0, concealed: 0 };
  }

  // -- what the page tells it ------------------------------------------------------------------

  /** The layers the server wants (room_layers); null sends the full layer only. */
  setLayers(layers) {
    this.layers = layers ? { full: layers.full === true, thumb: layers.thumb === true } : null;
  }

  /** The room's members now (identities): new ones are expected, those who left forgotten. */
  setMembers(identities) {
    const now = performance.now();
    const keep = new Set(identities);
    for (const id of keep) if (id !== this.client.identity) this._member(id, now);
    for (const [id, m] of this._members) {
      if (keep.has(id)) continue;
      this._closePlayer(m);
      for (const layer of ['full', 'thumb']) if (m.url[layer]) URL.revokeObjectURL(m.url[layer]);
      this._members.delete(id);
      if (this.fullFrom === id) this.fullFrom = null;
    }
  }

  /** Show `identity`'s frames in `img`, preferring `prefer` ('full' or 'thumb'). */
  attachTile(img, identity, prefer) {
    this._tiles.set(img, { identity, prefer });
    const m = this._members.get(identity);
    const layer = m ? pickLayer(prefer, m.last, performance.now()) : null;
    if (layer && m.url[layer] && img.src !== m.url[layer]) {
      img.src = m.url[layer];
      img.dataset.layer = layer;
    }
  }

  detachTile(img) {
    this._tiles.delete(img);
  }

  /** Show what I send (camera or screen) in `video`. */
  attachPreview(video) {
    this._previews.add(video);
    this._preview(video);
  }

  detachPreview(video) {
    this._previews.delete(video);
  }

  /** 'waiting' | 'on' | 'off' for a video room, 'none' for a voice room. */
  memberVideo(identity) {
    if (!this.video) return 'none';
    return this._members.get(identity)?.videoState ?? 'waiting';
  }

  /** Whether `identity`'s audio is loud now (for me: whether my audio is being sent). */
  isTalking(identity) {
    if (identity === this.client.identity) return this.speaking;
    return Boolean(this._members.get(identity)?.talking);
  }

  /** The picture size of the last frame of `layer` from `identity`: [width, height]. */
  frameSize(identity, layer) {
    return this._members.get(identity)?.size[layer] ?? [0, 0];
  }

  setMicMuted(muted) {
    super.setMicMuted(muted);
    if (this.micMuted) {
      this._gate.reset();
      this._setSpeaking(false);
    }
  }

  // -- hooks -----------------------------------------------------------------------------------

  _onStart() {
    this.stats.resetSequences();
    let ticks = 0;
    this._watchTimer = setInterval(() => this._watch(++ticks % QUALITY_EVERY === 0), WATCH_MS);
  }

  _onStop() {
    clearInterval(this._watchTimer);
    for (const m of this._members.values()) {
      this._closePlayer(m);
      for (const layer of ['full', 'thumb']) if (m.url[layer]) URL.revokeObjectURL(m.url[layer]);
    }
    this._members.clear();
    this._tiles.clear();
    for (const v of this._previews) v.srcObject = null;
    this._previews.clear();
    this.speaking = false;
  }

  _settingsChanged(old, settings) {
    this._budget.configure({ quality: settings.video_jpeg_quality, maxBytes: settings.video_max_frame_bytes });
    this._gate.threshold = gateThreshold(settings);
  }

  _showSource(stream, kind) {
    super._showSource(stream, kind);
    for (const v of this._previews) this._preview(v);
  }

  _sendAudio(samples) {
    const level = rms(samples);
    const open = this._gate.update(level, performance.now());
    this._setSpeaking(open);
    if (!open) {
      this.stats.audioFramesSuppressed++;
      return;
    }
    const pcm = floatToPcm16(samples);
    if (pcm.length > this.settings.audio_max_frame_bytes) {
      this.stats.audioFramesSkipped++;
      return;
    }
    const header = {
      room_id: this.roomId,
      seq: this._seq.audio,
      sample_rate: this.settings.audio_target_sample_rate,
      channels: 1,
      rms: level,
    };
    if (this.client.sendMedia('audio', header, pcm)) {
      this._seq.audio++;
      this.stats.audioSent(performance.now(), pcm.length);
    } else {
      this.stats.audioFramesSkipped++;
    }
  }

  _videoTick(src) {
    const want = layersForTick(this._tick++, this.layers);
    if (want.full) this._encode('full', src);
    if (want.thumb) this._encode('thumb', src);
  }

  _receive({ kind, header, payload }) {
    if (this._stopped || header.room_id !== this.roomId) return;
    const from = header.from;
    if (typeof from !== 'string' || from === this.client.identity) return;
    const now = performance.now();
    const m = this._member(from, now);
    if (kind === 'video') {
      const layer = header.layer === 'thumb' ? 'thumb' : 'full';
      this.stats.videoReceived(now, payload.length, header.width, header.height, header.seq, from, layer);
      this._rates.add(`${from}/${layer}`, now, layer === 'thumb' ? this.settings.video_fps / 2 : this.settings.video_fps);
      m.activity.frame(now);
      m.last[layer] = now;
      m.size[layer] = [Number(header.width) || 0, Number(header.height) || 0];
      const url = URL.createObjectURL(new Blob([payload], { type: 'image/jpeg' }));
      for (const [img, tile] of this._tiles) {
        if (tile.identity === from && pickLayer(tile.prefer, m.last, now) === layer) {
          img.src = url;
          img.dataset.layer = layer;
        }
      }
      if (m.url[layer]) URL.revokeObjectURL(m.url[layer]);
      m.url[layer] = url;
      let changed = false;
      if (layer === 'full') {
        this._fullFromMs = now;
        if (this.fullFrom !== from) {
          this.fullFrom = from;
          changed = true;
        }
      }
      if (this.video && m.videoState !== 'on') {
        m.videoState = 'on';
        changed = true;
      }
      if (changed) this.onChange();
    } else if (kind === 'audio') {
      this.stats.audioReceived(now, payload.length, header.seq, from);
      m.player ??= new AudioPlayer(this.ctx);
      m.player.push(header, payload);
      m.lastAudioMs = now;
      if (Number(header.rms) > this.settings.audio_talking_rms_threshold) {
        m.talkingUntil = now + TALKING_HOLD_MS;
        if (!m.talking) {
          m.talking = true;
          this.onChange();
        }
      }
    }
  }

  // -- internals -------------------------------------------------------------------------------

  _member(identity, now) {
    let m = this._members.get(identity);
    if (!m) {
      m = {
        activity: new VideoActivity(),
        videoState: this.video ? 'waiting' : 'none',
        last: { full: null, thumb: null },
        url: { full: null, thumb: null },
        size: { full: [0, 0], thumb: [0, 0] },
        player: null,
        lastAudioMs: 0,
        talking: false,
        talkingUntil: 0,
      };
      m.activity.start(now);
      this._members.set(identity, m);
    }
    return m;
  }

  _preview(video) {
    const stream = this.previewStream;
    if (video.srcObject !== stream) video.srcObject = stream;
    video.dataset.source = this.previewSource;
    if (stream) video.play?.().catch(() => {});
  }

  _setSpeaking(on) {
    if (on === this.speaking) return;
    this.speaking = on;
    this.onChange();
  }

  _encode(layer, src) {
    const encoder = (this._encoders[layer] ??= new FrameEncoder());
    if (encoder.pending) {
      this.stats.videoFramesSkipped++;
      return;
    }
    const s = this.settings;
    let size;
    if (layer === 'full') size = this._fitSource(src, s.video_width, s.video_height, this._budget.scale);
    else if (this.sharing) size = thumbSize(src.videoWidth, src.videoHeight);
    else size = thumbSize(s.video_width, s.video_height);
    const { width, height } = size;
    if (!width || !height) return;
    const quality = layer === 'full' ? this._budget.quality : THUMB_QUALITY;
    encoder.encode(src, width, height, { whole: this.sharing, quality },
      (blob) => this._sendVideo(layer, blob, width, height));
  }

  async _sendVideo(layer, blob, width, height) {
    if (!blob || this._stopped || this._videoPaused()) return;
    if (layer === 'full' && this.layers && !this.layers.full) return; // no longer wanted
    const fits = layer === 'full' ? this._budget.fits(blob.size) : blob.size <= this.settings.video_max_frame_bytes;
    if (!fits) {
      this.stats.videoFramesSkipped++;
      return;
    }
    const bytes = new Uint8Array(await blob.arrayBuffer());
    const header = { room_id: this.roomId, seq: this._seq[layer], width, height, layer };
    if (this.client.sendMedia('video', header, bytes)) {
      this._seq[layer]++;
      this.stats.videoSent(performance.now(), bytes.length, width, height, layer);
    } else {
      this.stats.videoFramesSkipped++;
    }
  }

  _closePlayer(m) {
    if (!m.player) return;
    const st = m.player.statistics();
    for (const k of Object.keys(this._closedJitter)) this._closedJitter[k] += st[k];
    m.player.close();
    m.player = null;
  }

  /** Every WATCH_MS: members' video and talking, my main's stream, jitter; every second quality. */
  _watch(withQuality) {
    if (this._stopped) return;
    const now = performance.now();
    let changed = false;
    const jitter = { depthMs: 0, ...this._closedJitter };
    for (const m of this._members.values()) {
      const video = this.video ? m.activity.state(now) : 'none';
      if (video !== m.videoState) {
        m.videoState = video;
        changed = true;
      }
      if (m.talking && now > m.talkingUntil) {
        m.talking = false;
        changed = true;
      }
      if (m.player && now - m.lastAudioMs > AUDIO_IDLE_MS) this._closePlayer(m);
      if (m.player) {
        const st = m.player.statistics();
        jitter.depthMs = Math.max(jitter.depthMs, st.depthMs);
        for (const k of Object.keys(this._closedJitter)) jitter[k] += st[k];
      }
    }
    this.stats.updateJitter(jitter);
    if (this.fullFrom !== null && now - this._fullFromMs > FULL_FROM_MS) {
      this.fullFrom = null;
      changed = true;
    }
    if (withQuality) {
      const s = this.settings;
      const share = this._rates.share(now);
      const summary = { ...this.stats.summary(now), videoFpsReceived: share === null ? 0 : share * s.video_fps };
      const before = this.quality.level;
      this.quality = this._qualityMeter.update(summary, now, {
        videoFps: this.video ? s.video_fps : 0,
        audioFps: 1000 / Math.max(1, s.audio_frame_ms),
        videoOn: share !== null,
        connected: this.client.connected,
        audioRate: false,
      });
      changed = changed || before !== this.quality.level;
    }
    if (changed) this.onChange();
  }
}

/** The silence gate opens at half the talking threshold, so soft speech is not cut off. */
function gateThreshold(settings) {
  return Math.max(0.002, Number(settings.audio_talking_rms_threshold) / 2 || 0.01);
}
