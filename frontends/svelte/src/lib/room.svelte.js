// Runs the shared room media runtime (RoomMedia from the vanilla frontend's roommedia.js) while
// this page is in a room, and exposes what the room view shows: my microphone, camera, screen
// and hand, whether I am being heard, the connection quality, the device menus, and a `version`
// that changes whenever a member's video or talking state changes (the tiles read those from
// the runtime).
//
// Owns: starting one RoomMedia per room and stopping it when the room is left, passing the
// server's layers and the member list on, telling the server what changed of my microphone,
// camera, screen and hand (set_room_state, through the session), the camera/microphone menus
// (mediacontrols.js, shared with the 1:1 call).
// Does not own: capture, sending, receiving, silence suppression or the quality verdict (the
// shared modules), the room state (session.svelte.js), the markup.

import { RoomMedia } from '$vanilla/roommedia.js';
import { DEFAULT_SETTINGS } from '$vanilla/state.js';
import * as controls from './mediacontrols.js';

export class RoomRuntime {
  muted = $state(false);
  cameraOff = $state(false);
  sharing = $state(false);
  handUp = $state(false);
  speaking = $state(false);
  fullFrom = $state(null);
  quality = $state.raw({ level: 'idle', reasons: [] });
  version = $state(0); // bumped on every change the media reports
  cameras = $state.raw([]);
  microphones = $state.raw([]);
  cameraId = $state('');
  microphoneId = $state('');

  #media = $state.raw(null);
  #devices = [];
  #reported = null;
  #report = () => false;

  /**
   * @param {object} o
   * @param {import('$vanilla/stats.js').MediaStats} o.stats  the page's counters (window.pgcallStats)
   * @param {(text: string) => void} [o.onError]
   */
  constructor({ stats, onError } = {}) {
    this.stats = stats;
    this.onError = onError ?? (() => {});
    globalThis.navigator?.mediaDevices?.addEventListener?.('devicechange', () => {
      if (this.#media) this.refreshDevices();
    });
  }

  /** The RoomMedia of the room, or null (tiles attach their pictures to it). */
  get media() {
    return this.#media;
  }

  get roomId() {
    return this.#media?.roomId ?? null;
  }

  get screenShareSupported() {
    return RoomMedia.screenShareSupported;
  }

  /**
   * Start the media of `room` (stopping any other). `myRow` is my room_members row (what the
   * server knows of my state); `report(change)` sends set_room_state and says whether it went.
   */
  start({ client, room, settings, myRow, report }) {
    this.stop();
    this.muted = false;
    this.cameraOff = false;
    this.handUp = false;
    this.#report = report;
    this.#reported = {
      mic: myRow?.mic !== false,
      camera: myRow?.camera !== false,
      screen: myRow?.screen === true,
      hand: myRow?.hand === true,
    };
    const media = new RoomMedia({
      client,
      room,
      settings: settings ?? DEFAULT_SETTINGS,
      stats: this.stats,
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
    const media = this.#media;
    if (!media) return;
    media.stop();
    this.#media = null;
    if (typeof window !== 'undefined' && window.pgcallMedia === media) publish('pgcallMedia', null);
    this.#reported = null;
    this.sharing = false;
    this.speaking = false;
    this.fullFrom = null;
    this.quality = { level: 'idle', reasons: [] };
  }

  /** The server's layers and the members now. */
  update({ layers, members, settings }) {
    const media = this.#media;
    if (!media) return;
    media.setLayers(layers);
    media.setMembers(members);
    if (settings && media.settings !== settings) media.updateSettings(settings);
  }

  toggleMute() {
    this.muted = !this.muted;
    this.#media?.setMicMuted(this.muted);
    this.#reportState();
  }

  toggleCamera() {
    this.cameraOff = !this.cameraOff;
    this.#media?.setCameraOff(this.cameraOff);
    this.#reportState();
    this.version++;
  }

  toggleHand() {
    this.handUp = !this.handUp;
    this.#reportState();
  }

  /** Start or stop sharing the screen; must run from a click. */
  async toggleScreenShare() {
    await controls.toggleScreenShare(this.#media, (message) => this.onError(message));
  }

  async refreshDevices() {
    this.#devices = await controls.listDevices();
    this.#mirrorDevices();
  }

  async chooseDevice(kind, deviceId) {
    await controls.useDevice(this.#media, kind, deviceId, (message) => this.onError(message));
    this.#mirrorDevices();
  }

  /** Send the server whatever changed of my microphone, camera, screen and hand. */
  #reportState() {
    const media = this.#media;
    if (!media || !this.#reported) return;
    const now = { mic: !media.micMuted, screen: media.sharing, hand: this.handUp };
    if (media.video) now.camera = !media.cameraOff;
    const change = {};
    for (const [k, v] of Object.entries(now)) if (this.#reported[k] !== v) change[k] = v;
    if (Object.keys(change).length && this.#report(change)) Object.assign(this.#reported, change);
  }

  #mirror(media) {
    if (this.#media !== media) return;
    this.sharing = media.sharing;
    this.speaking = media.speaking;
    this.fullFrom = media.fullFrom;
    if (media.quality.level !== this.quality.level || media.quality.reasons.join() !== this.quality.reasons.join()) {
      this.quality = media.quality;
    }
    this.version++;
    this.#reportState();
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
