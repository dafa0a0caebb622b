// Runs the shared recording player (RecordingPlayer from the vanilla frontend's replayer.js) for
// the recording being replayed, and exposes what the player view shows: its state, the playhead
// and length, the members in the speaker view (the one large and the strip), and a `version`
// bumped whenever a member's picture or talking state changes (the tiles read those from the
// player, which puts the frames into their <img> itself).
//
// Owns: one RecordingPlayer at a time (opened from the click that asks for it, closed when
// another is opened, the list closes or the recording is deleted), window.pgcallReplay.
// Does not own: fetching, the clock, audio, which member is large (the shared replay.js and
// replayer.js), the markup.

import { RecordingPlayer } from '$vanilla/replayer.js';

export class ReplayRuntime {
  recordingId = $state(null);
  state = $state('paused'); // paused | playing | buffering | ended | error
  error = $state('');
  position = $state(0);
  duration = $state(0);
  main = $state(null);
  strip = $state.raw([]);
  members = $state.raw([]);
  large = $state(false);
  pinned = $state(null);
  version = $state(0);

  #player = $state.raw(null);

  /** The RecordingPlayer playing now, or null (tiles attach their pictures to it). */
  get player() {
    return this.#player;
  }

  /** Play `recording` (an entry of list_recordings); must run from a click. */
  open({ client, recording, talkingThreshold }) {
    this.close();
    const player = new RecordingPlayer({
      client,
      recording,
      talkingThreshold,
      onChange: () => this.#mirror(player),
      onError: (message) => (this.error = message),
    });
    this.#player = player;
    this.recordingId = recording.recording_id;
    this.error = '';
    if (typeof window !== 'undefined') window.pgcallReplay = player;
    player.open();
    this.#mirror(player);
  }

  close() {
    const player = this.#player;
    if (!player) return;
    player.close();
    this.#player = null;
    this.recordingId = null;
    if (typeof window !== 'undefined' && window.pgcallReplay === player) window.pgcallReplay = null;
  }

  toggle() {
    this.#player?.toggle();
  }

  seek(ms) {
    this.#player?.seek(ms);
  }

  /** Keep `identity` large; again to let whoever speaks be large. */
  pin(identity) {
    const player = this.#player;
    if (!player) return;
    player.pin(player.pinned === identity ? null : identity);
  }

  #mirror(player) {
    if (this.#player !== player) return;
    this.state = player.state;
    if (player.state === 'error') this.error = player.error ?? '';
    this.position = player.position();
    this.duration = player.durationMs;
    const { main, strip } = player.layout();
    this.main = main;
    if (strip.join() !== this.strip.join()) this.strip = strip;
    if (player.members.join() !== this.members.join()) this.members = [...player.members];
    this.large = player.large;
    this.pinned = player.pinned;
    this.version++;
  }
}
