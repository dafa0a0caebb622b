/**
 * What a room page shows, decided apart from the DOM so it runs in Node (protocol-rooms.md §4).
 *
 * Owns: which member is my *main* (shown large in the speaker view, and the one whose full
 * layer the server sends me), the order of the tiles, the grid's columns and rows, which layer
 * (full picture or thumbnail) a tile shows from the frames that arrived, and the per-member
 * flags a tile shows (microphone, camera, screen, hand) from the `room_members` row.
 * Pure. Does not own the frames (roommedia.js) or the markup.
 */

export const FRESH_MS = 1000; // a layer whose last frame is older than this is not shown first

/**
 * My main member, the way the server picks it for me: the one I pinned, else the dominant
 * speaker, else — in a large room, where only my main's full layer reaches me — whoever's full
 * frames are arriving (`fullFrom`), else the previous speaker, else the first member who joined.
 * Never myself, unless I am alone (then null).
 *
 * @param {object} o
 * @param {string[]} o.members   identities in the order they joined
 * @param {string} o.me
 * @param {string|null} [o.pinned]           my room_members row's `pinned`
 * @param {string|null} [o.speaker]          the last room_speaker
 * @param {string|null} [o.previousSpeaker]  the speaker before it
 * @param {string|null} [o.fullFrom]         sender of the full-layer frames arriving now
 */
export function chooseMain({ members, me, pinned = null, speaker = null, previousSpeaker = null, fullFrom = null }) {
  const others = new Set(members.filter((m) => m !== me));
  for (const candidate of [pinned, speaker, fullFrom, previousSpeaker, ...members]) {
    if (candidate && others.has(candidate)) return candidate;
  }
  return null;
}

/**
 * The tiles of the speaker view: `main` large and the strip (me first, then the others in the
 * order they joined); alone, I am the main tile and the strip is empty.
 */
export function speakerLayout(members, me, main) {
  if (!main) return { main: members.includes(me) ? me : null, strip: [] };
  const strip = members.filter((m) => m !== main && m !== me);
  if (members.includes(me)) strip.unshift(me);
  return { main, strip };
}

/**
 * Columns and rows for `count` tiles of aspect ratio `aspect` (width / height) in a box of
 * width × height with `gap` pixels between tiles: the shape giving the largest tiles.
 */
export function gridShape(count, width, height, { aspect = 16 / 9, gap = 8 } = {}) {
  const n = Math.max(1, Math.floor(count) || 1);
  let best = { cols: 1, rows: n, tile: -1 };
  for (let cols = 1; cols <= n; cols++) {
    const rows = Math.ceil(n / cols);
    const w = (width - gap * (cols - 1)) / cols;
    const h = (height - gap * (rows - 1)) / rows;
    const tileWidth = Math.max(0, Math.min(w, h * aspect));
    if (tileWidth > best.tile + 1e-9) best = { cols, rows, tile: tileWidth };
  }
  return { cols: best.cols, rows: best.rows };
}

/**
 * Which layer a tile shows: the one it prefers while its frames are fresh, else whichever
 * arrived last (a small room sends no thumbnails; a new main's full layer takes a moment).
 * `lastMs` is {full, thumb}: when the last frame of each arrived (or null). Null: nothing yet.
 */
export function pickLayer(prefer, lastMs, nowMs, freshMs = FRESH_MS) {
  const other = prefer === 'full' ? 'thumb' : 'full';
  const at = (layer) => (typeof lastMs?.[layer] === 'number' ? lastMs[layer] : null);
  if (at(prefer) !== null && nowMs - at(prefer) <= freshMs) return prefer;
  if (at(prefer) === null && at(other) === null) return null;
  if (at(prefer) === null) return other;
  if (at(other) === null) return prefer;
  return at(prefer) >= at(other) ? prefer : other;
}

/**
 * The layer a tile would like: the full picture for the main tile (and for every tile of a small
 * room, where only full pictures travel), the thumbnail for the others.
 */
export function preferredLayer({ isMain, large }) {
  return isMain || !large ? 'full' : 'thumb';
}

/** A room_members row's flags; a missing column reads as its default (on, nothing raised). */
export function memberFlags(row) {
  return {
    mic: row?.mic !== false,
    camera: row?.camera !== false,
    screen: row?.screen === true,
    hand: row?.hand === true,
    pinned: typeof row?.pinned === 'string' ? row.pinned : null,
  };
}
