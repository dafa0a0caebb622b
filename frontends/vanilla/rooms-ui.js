/**
 * UI glue of rooms for the vanilla frontend (protocol-rooms.md): the new-room dialog, the
 * invitation dialog, invite buttons in the people list, the room page (speaker and grid views,
 * tiles with each member's state, pin and remove, the controls), the room chat, and the room in
 * the page URL (joined on load and again after every reconnect).
 * The decisions are lib/ modules (rooms.js: state, link and rejoin; roomview.js: main member,
 * layout, layers shown; roommedia.js: media); this file renders and turns clicks into requests.
 */

import { loadDeviceChoice, saveDeviceChoice } from './lib/devices.js';
import { RoomMedia } from './lib/roommedia.js';
import { RoomIntent, isVideoRoom } from './lib/rooms.js';
import { chooseMain, gridShape, memberFlags, preferredLayer, speakerLayout } from './lib/roomview.js';
import { $, bindChatBox, el, renderChatLog, renderDeviceMenus, toast } from './ui.js';

const QUALITY_TEXT = { good: 'Good', fair: 'Fair', poor: 'Poor', idle: 'No media' };
const SVG = 'http://www.w3.org/2000/svg';
const ICONS = {
  hand: 'M8 11V5a1.5 1.5 0 0 1 3 0v5h1V3.5a1.5 1.5 0 0 1 3 0V10h1V5.5a1.5 1.5 0 0 1 3 0V15a7 7 0 0 1-12.6 4.2L3.2 14a1.5 1.5 0 0 1 2.3-1.9L8 14.5z',
  mic: 'M3 3l18 18-1.4 1.4-4.2-4.2A7 7 0 0 1 13 18.9V21h-2v-2.1A7 7 0 0 1 5 12h2a5 5 0 0 0 7 4.6l-1.6-1.6A3 3 0 0 1 9 12v-1.6L1.6 4.4zM15 6v5.2L9.2 5.4A3 3 0 0 1 15 6z',
  screen: 'M3 4h18a1 1 0 0 1 1 1v11a1 1 0 0 1-1 1h-7v2h3v2H7v-2h3v-2H3a1 1 0 0 1-1-1V5a1 1 0 0 1 1-1zm1 2v9h16V6z',
  pin: 'M14 2l8 8-2 1-3-1-4 4 1 5-2 2-4-5-6 6-1-1 6-6-5-4 2-2 5 1 4-4-1-3z',
};

function icon(name, className) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('class', `tile-flag ${className}`);
  const path = document.createElementNS(SVG, 'path');
  path.setAttribute('d', ICONS[name]);
  svg.append(path);
  return svg;
}

/**
 * @param {object} o
 * @param {import('./lib/client.js').RelayClient} o.client
 * @param {import('./lib/stats.js').MediaStats} o.stats
 * @param {(identity: string) => string} o.nameOf
 * @param {(el: HTMLElement, identity: string) => void} o.paintAvatar
 * @param {(msg: object) => void} o.send
 * @param {() => object} o.settings
 * @param {() => void} o.onChange        the people list should be drawn again
 */
export function setupRooms({ client, stats, nameOf, paintAvatar, send, settings, onChange }) {
  const intent = new RoomIntent(location.href);
  const rooms = client.rooms;
  let media = null;
  let view = 'speaker';
  let handUp = false;
  let leaving = false;
  let reported = null; // the member state we last told the server
  const dismissedInvites = new Set(); // room ids answered locally
  const tiles = new Map(); // identity -> tile parts
  const roomChatNodes = new Map();
  let deviceList = [];
  let queued = false;

  const me = () => client.identity;
  const inRoom = () => rooms.room !== null;

  function schedule() {
    if (queued) return;
    queued = true;
    queueMicrotask(() => {
      queued = false;
      render();
    });
  }

  function setUrl(href) {
    if (href) history.replaceState(history.state, '', href);
  }

  // -------------------------------------------------------------- rendering

  function render() {
    syncMedia();
    const room = rooms.room;
    document.body.classList.toggle('in-room', Boolean(room));
    $('room-view').hidden = !room;
    $('room-chat').hidden = !room;
    renderInvite();
    if (!room) {
      for (const t of tiles.values()) t.root.remove();
      tiles.clear();
      return;
    }
    const video = isVideoRoom(room);
    const members = rooms.memberIds();
    $('room-title').textContent = room.name;
    $('room-title').title = `${video ? 'Video' : 'Voice'} room · created by ${nameOf(room.creator)}`;
    $('room-private').hidden = room.private !== true;
    $('room-count').textContent = `${members.length} ${members.length === 1 ? 'person' : 'people'}`;
    const link = intent.link() ?? '';
    $('copy-room-link').dataset.link = link;
    $('copy-room-link').title = link ? `Copy the link that joins this room: ${link}` : 'No link yet';
    $('room-chat-name').textContent = room.name;
    renderQuality();
    renderControls(video);
    renderTiles(members, video);
    const count = renderChatLog($('room-chat-log'), rooms.messages, {
      me: me(), nameOf, nodes: roomChatNodes, testid: 'room-chat-message',
    });
    $('room-chat-empty').hidden = count > 0;
    $('room-chat-input').disabled = !client.connected;
    $('room-chat-send').disabled = !client.connected;
    if (!$('room-devices-panel').hidden) renderDevices();
  }

  function renderQuality() {
    const q = media ? media.quality : { level: 'idle', reasons: [] };
    const pill = $('room-quality');
    pill.dataset.level = q.level;
    $('room-quality-text').textContent = QUALITY_TEXT[q.level] ?? q.level;
    pill.title = `Connection: ${QUALITY_TEXT[q.level] ?? q.level}${q.reasons.length ? ` (${q.reasons.join('; ')})` : ''}`;
  }

  function press(id, on, label, title) {
    const b = $(id);
    b.setAttribute('aria-pressed', String(on));
    b.querySelector('.label').textContent = label;
    b.title = title;
  }

  function renderControls(video) {
    const muted = Boolean(media?.micMuted);
    press('room-toggle-mic', muted, muted ? 'Unmute' : 'Mute mic', muted ? 'Unmute microphone' : 'Mute microphone');
    const off = Boolean(media?.cameraOff);
    press('room-toggle-camera', off, off ? 'Camera on' : 'Camera off', off ? 'Turn camera on' : 'Turn camera off');
    $('room-toggle-camera').hidden = !video;
    const sharing = Boolean(media?.sharing);
    press('room-toggle-screen', sharing, sharing ? 'Stop sharing' : 'Share screen',
      sharing ? 'Stop sharing your screen' : 'Share your screen instead of the camera');
    $('room-toggle-screen').hidden = !video || !RoomMedia.screenShareSupported;
    press('room-raise-hand', handUp, handUp ? 'Lower hand' : 'Raise hand', handUp ? 'Lower your hand' : 'Raise your hand');
  }

  function makeTile(identity, mine, video) {
    const root = el('div', 'tile');
    root.dataset.identity = identity;
    root.setAttribute('data-testid', 'room-tile');
    let picture = null;
    if (video) {
      if (mine) {
        picture = document.createElement('video');
        picture.muted = true;
        picture.autoplay = true;
        picture.playsInline = true;
        picture.setAttribute('data-testid', 'tile-preview');
      } else {
        picture = el('img');
        picture.alt = '';
        picture.setAttribute('data-testid', 'tile-video');
      }
      root.append(picture);
    }
    const placeholder = el('div', 'tile-placeholder');
    const avatar = el('div', 'avatar');
    const caption = el('div', 'tile-caption');
    caption.setAttribute('data-testid', 'tile-caption');
    placeholder.append(avatar, caption);
    const label = el('div', 'tile-label');
    const name = el('span', 'tile-name');
    name.setAttribute('data-testid', 'tile-name');
    label.append(icon('hand', 'flag-hand'), name, icon('mic', 'flag-mic'), icon('screen', 'flag-screen'), icon('pin', 'flag-pin'));
    const actions = el('div', 'tile-actions');
    const pin = el('button', 'btn btn-small', 'Pin');
    pin.type = 'button';
    pin.dataset.action = 'pin';
    pin.setAttribute('data-testid', 'pin');
    const remove = el('button', 'btn btn-small', 'Remove');
    remove.type = 'button';
    remove.dataset.action = 'remove';
    remove.setAttribute('data-testid', 'remove-member');
    actions.append(pin, remove);
    root.append(placeholder, label, actions);
    return { root, picture, avatar, caption, name, pin, remove, prefer: null, mine, video };
  }

  function renderTiles(members, video) {
    const myId = me();
    const large = rooms.layers?.thumb === true;
    const myRow = rooms.members.get(myId);
    const pinned = memberFlags(myRow).pinned;
    const main = chooseMain({
      members, me: myId, pinned, speaker: rooms.speaker, previousSpeaker: rooms.previousSpeaker,
      fullFrom: large ? media?.fullFrom ?? null : null,
    });
    for (const [id, t] of tiles) {
      if (members.includes(id) && t.video === video) continue;
      if (t.picture && media) {
        if (t.mine) media.detachPreview(t.picture);
        else media.detachTile(t.picture);
      }
      t.root.remove();
      tiles.delete(id);
    }
    const creator = rooms.room.creator === myId;
    for (const id of members) {
      let t = tiles.get(id);
      if (!t) {
        t = makeTile(id, id === myId, video);
        tiles.set(id, t);
        if (t.mine && t.picture && media) media.attachPreview(t.picture);
      }
      const flags = memberFlags(rooms.members.get(id));
      const isMain = view === 'speaker' ? id === (main ?? myId) : id === main;
      let state;
      if (t.mine) {
        state = !video ? 'none' : media && (media.sharing || !media.cameraOff) && media.previewStream ? 'on' : media?.cameraOff ? 'off' : 'waiting';
      } else {
        state = media ? media.memberVideo(id) : video ? 'waiting' : 'none';
        if (video && !flags.camera && !flags.screen && state !== 'on') state = 'off';
      }
      const r = t.root.dataset;
      r.video = state;
      r.mic = flags.mic ? 'on' : 'off';
      r.camera = flags.camera ? 'on' : 'off';
      r.screen = flags.screen ? 'on' : 'off';
      r.hand = flags.hand ? 'up' : 'down';
      r.talking = String(Boolean(media?.isTalking(id)));
      r.speaker = String(rooms.speaker === id);
      r.main = String(isMain);
      r.pinned = String(pinned === id);
      const name = t.mine ? `${nameOf(id)} (you)` : nameOf(id);
      if (t.name.textContent !== name) t.name.textContent = name;
      paintAvatar(t.avatar, id);
      t.caption.textContent = state === 'off' ? 'Camera off' : state === 'waiting' ? 'Connecting…' : '';
      t.pin.hidden = t.mine;
      t.pin.setAttribute('aria-pressed', String(pinned === id));
      t.pin.textContent = pinned === id ? 'Unpin' : 'Pin';
      t.pin.title = pinned === id ? 'Unpin: show whoever speaks' : `Keep ${nameOf(id)} large`;
      t.remove.hidden = t.mine || !creator;
      t.remove.title = `Remove ${nameOf(id)} from the room`;
      if (!t.mine && t.picture && media) {
        const prefer = preferredLayer({ isMain, large });
        if (prefer !== t.prefer) {
          t.prefer = prefer;
          media.attachTile(t.picture, id, prefer);
        }
      }
    }
    $('room-stage').dataset.view = view;
    $('view-speaker').setAttribute('aria-pressed', String(view === 'speaker'));
    $('view-grid').setAttribute('aria-pressed', String(view === 'grid'));
    if (view === 'speaker') {
      const layout = speakerLayout(members, myId, main);
      place($('room-main'), layout.main ? [layout.main] : []);
      place($('room-strip'), layout.strip);
      place($('room-grid'), []);
    } else {
      place($('room-main'), []);
      place($('room-strip'), []);
      place($('room-grid'), members);
      fitGrid();
    }
  }

  /** Put the tiles of `ids` into `box` in that order, moving only what is out of place. */
  function place(box, ids) {
    const wanted = ids.map((id) => tiles.get(id)?.root).filter(Boolean);
    const same = box.children.length === wanted.length && wanted.every((n, i) => box.children[i] === n);
    if (!same) box.replaceChildren(...wanted);
  }

  function fitGrid() {
    const box = $('room-grid');
    const { cols } = gridShape(box.children.length, box.clientWidth || 640, box.clientHeight || 360);
    box.style.setProperty('--cols', String(cols));
  }

  new ResizeObserver(() => {
    if (view === 'grid' && inRoom()) fitGrid();
  }).observe($('room-grid'));

  function renderInvite() {
    const dialog = $('room-invite-dialog');
    const invite = me() ? rooms.invitesFor(me()).find((i) => !dismissedInvites.has(i.room_id) && i.room_id !== rooms.roomId) : null;
    if (invite) {
      const kind = String(invite.call_type).toLowerCase() === 'video' ? 'video room' : 'voice room';
      dialog.dataset.room = invite.room_id;
      $('room-invite-title').textContent = invite.room_name || 'A room';
      $('room-invite-text').textContent = `${nameOf(invite.inviter)} invites you to this ${kind}.`;
      paintAvatar($('room-invite-avatar'), invite.inviter);
      if (!dialog.open) dialog.showModal();
    } else if (dialog.open) {
      dialog.close();
    }
  }

  function renderDevices() {
    renderDeviceMenus(deviceList, media, {
      cameraSelect: $('room-camera-select'), micSelect: $('room-mic-select'), video: Boolean(media?.video),
    });
  }

  async function refreshDevices() {
    try {
      deviceList = await navigator.mediaDevices.enumerateDevices();
    } catch {
      deviceList = [];
    }
    renderDevices();
  }

  // -------------------------------------------------------------- media and member state

  function syncMedia() {
    const room = rooms.room;
    if (media && (!room || media.roomId !== room.room_id)) {
      media.stop();
      if (window.pgcallMedia === media) window.pgcallMedia = null;
      media = null;
      handUp = false;
      reported = null;
      for (const t of tiles.values()) t.prefer = null;
      $('room-devices-panel').hidden = true;
      $('room-toggle-devices').setAttribute('aria-pressed', 'false');
      leaveFullscreen();
    }
    if (room && !media) {
      media = new RoomMedia({
        client,
        room,
        settings: settings(),
        stats,
        onError: (message) => toast(message),
        onChange: () => {
          reportState();
          schedule();
        },
        cameraId: loadDeviceChoice(localStorage, 'videoinput'),
        microphoneId: loadDeviceChoice(localStorage, 'audioinput'),
      });
      window.pgcallMedia = media;
      const mine = rooms.members.get(me());
      reported = { ...memberFlags(mine) };
      delete reported.pinned;
      for (const t of tiles.values()) {
        if (t.mine && t.picture) media.attachPreview(t.picture);
      }
      media.start().catch((err) => toast(`Media failed: ${err.message}`));
    }
    if (media) {
      media.setLayers(rooms.layers);
      media.setMembers(rooms.memberIds());
      if (client.settings && media.settings !== client.settings) media.updateSettings(client.settings);
    }
  }

  /** Tell the server what changed of my microphone, camera, screen and hand. */
  function reportState() {
    if (!media || !reported || !rooms.room) return;
    const now = { mic: !media.micMuted, screen: media.sharing, hand: handUp };
    if (media.video) now.camera = !media.cameraOff;
    const change = {};
    for (const [k, v] of Object.entries(now)) if (reported[k] !== v) change[k] = v;
    if (!Object.keys(change).length) return;
    if (client.send({ type: 'set_room_state', room_id: rooms.roomId, ...change })) Object.assign(reported, change);
  }

  // -------------------------------------------------------------- full screen

  function toggleFullscreen() {
    const stage = $('room-view');
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    else if (stage.classList.contains('enlarged')) setEnlarged(false);
    else if (stage.requestFullscreen && document.fullscreenEnabled !== false) stage.requestFullscreen().catch(() => setEnlarged(true));
    else setEnlarged(true);
  }

  function setEnlarged(on) {
    $('room-view').classList.toggle('enlarged', on);
    renderFullscreen();
  }

  function leaveFullscreen() {
    if (document.fullscreenElement === $('room-view')) document.exitFullscreen().catch(() => {});
    setEnlarged(false);
  }

  function renderFullscreen() {
    const on = document.fullscreenElement === $('room-view') || $('room-view').classList.contains('enlarged');
    const b = $('room-fullscreen');
    b.setAttribute('aria-pressed', String(on));
    b.title = on ? 'Exit full screen (Esc)' : 'Full screen';
    b.querySelector('.sr-only').textContent = on ? 'Exit full screen' : 'Full screen';
  }

  // -------------------------------------------------------------- server events

  client.addEventListener('state', (ev) => {
    const { table, op, old } = ev.detail;
    if (table === 'identity') {
      // A new connection: the server ended our membership with the old one; join again.
      intent.connected();
      const msg = intent.joinRequest(rooms.roomId);
      if (msg) client.send(msg);
      return;
    }
    if (!['rooms', 'room_members', 'room_messages', 'room_invites', 'room_speaker', 'room_layers'].includes(table)) return;
    if (table === 'room_members' && op === 'delete' && old?.identity === me() && !inRoom()) {
      if (!leaving) toast('You were removed from the room', 'info');
      leaving = false;
      setUrl(intent.gone());
    }
    if (table === 'room_members' || table === 'room_invites' || table === 'rooms') onChange();
    schedule();
  });

  client.addEventListener('ack', (ev) => {
    const d = ev.detail;
    if (d.req_type === 'create_room' || d.req_type === 'join_room') setUrl(intent.acked(d));
  });

  client.addEventListener('error', (ev) => {
    if (ev.detail.req_type === 'join_room') setUrl(intent.joinFailed(rooms.roomId));
    if (ev.detail.req_type === 'leave_room') leaving = false;
  });

  // -------------------------------------------------------------- user actions

  $('new-room').addEventListener('click', () => {
    $('room-name-input').value = '';
    $('new-room-dialog').showModal();
    $('room-name-input').focus();
  });
  $('new-room-cancel').addEventListener('click', () => $('new-room-dialog').close());
  $('new-room-form').addEventListener('submit', (ev) => {
    const name = $('room-name-input').value.trim();
    if (!name) {
      ev.preventDefault();
      toast('Room name cannot be empty');
      return;
    }
    const kind = document.querySelector('input[name="room-kind"]:checked')?.value === 'Voice' ? 'Voice' : 'Video';
    send({ type: 'create_room', name, call_type: kind, private: $('room-private-input').checked });
  });

  $('accept-room').addEventListener('click', () => {
    const roomId = $('room-invite-dialog').dataset.room;
    if (!roomId) return;
    dismissedInvites.add(roomId);
    send({ type: 'join_room', room_id: roomId });
    schedule();
  });
  $('decline-room').addEventListener('click', () => {
    const roomId = $('room-invite-dialog').dataset.room;
    if (!roomId) return;
    dismissedInvites.add(roomId);
    send({ type: 'decline_room_invite', room_id: roomId });
    schedule();
  });
  $('room-invite-dialog').addEventListener('cancel', (ev) => ev.preventDefault());

  $('copy-room-link').addEventListener('click', () => {
    const link = intent.link();
    if (!link) return;
    const copied = navigator.clipboard?.writeText(link);
    if (!copied) {
      toast(`Room link: ${link}`, 'info');
      return;
    }
    copied.then(() => toast('Link copied', 'info'), () => toast(`Room link: ${link}`, 'info'));
  });
  $('view-speaker').addEventListener('click', () => {
    view = 'speaker';
    schedule();
  });
  $('view-grid').addEventListener('click', () => {
    view = 'grid';
    schedule();
  });

  $('room-stage').addEventListener('click', (ev) => {
    const button = ev.target.closest('button[data-action]');
    const tile = ev.target.closest('[data-identity]');
    if (!button || !tile || !rooms.room) return;
    const target = tile.dataset.identity;
    if (button.dataset.action === 'pin') {
      const pinned = memberFlags(rooms.members.get(me())).pinned;
      send({ type: 'pin', room_id: rooms.roomId, target: pinned === target ? null : target });
    } else if (button.dataset.action === 'remove') {
      send({ type: 'remove_from_room', room_id: rooms.roomId, target });
    }
  });
  $('room-stage').addEventListener('dblclick', (ev) => {
    if (!ev.target.closest('button')) toggleFullscreen();
  });
  $('room-fullscreen').addEventListener('click', toggleFullscreen);
  document.addEventListener('fullscreenchange', renderFullscreen);
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && $('room-view').classList.contains('enlarged')) setEnlarged(false);
  });

  $('room-toggle-mic').addEventListener('click', () => {
    if (!media) return;
    media.setMicMuted(!media.micMuted);
    reportState();
    schedule();
  });
  $('room-toggle-camera').addEventListener('click', () => {
    if (!media) return;
    media.setCameraOff(!media.cameraOff);
    reportState();
    schedule();
  });
  $('room-toggle-screen').addEventListener('click', () => {
    if (!media) return;
    if (media.sharing) media.stopScreenShare();
    else media.startScreenShare().catch((err) => toast(`Screen sharing failed: ${err.message}`));
  });
  $('room-raise-hand').addEventListener('click', () => {
    if (!media) return;
    handUp = !handUp;
    reportState();
    schedule();
  });
  $('room-toggle-devices').addEventListener('click', (ev) => {
    const panel = $('room-devices-panel');
    panel.hidden = !panel.hidden;
    ev.currentTarget.setAttribute('aria-pressed', String(!panel.hidden));
    if (!panel.hidden) refreshDevices();
  });
  for (const [kind, id] of [['videoinput', 'room-camera-select'], ['audioinput', 'room-mic-select']]) {
    $(id).addEventListener('change', async (ev) => {
      saveDeviceChoice(localStorage, kind, ev.target.value);
      if (!media) return;
      try {
        if (kind === 'videoinput') await media.setCamera(ev.target.value);
        else await media.setMicrophone(ev.target.value);
      } catch (err) {
        toast(`Cannot use that ${kind === 'videoinput' ? 'camera' : 'microphone'}: ${err.message}`);
      }
      renderDevices();
    });
  }
  navigator.mediaDevices?.addEventListener?.('devicechange', () => {
    if (!$('room-devices-panel').hidden) refreshDevices();
  });
  $('leave-room').addEventListener('click', () => {
    if (!rooms.room) return;
    leaving = true;
    setUrl(intent.gone());
    send({ type: 'leave_room', room_id: rooms.roomId });
  });

  bindChatBox($('room-chat-form'), $('room-chat-input'), (text) => (rooms.room
    ? client.send({ type: 'send_room_message', room_id: rooms.roomId, text }) : null));

  /** The buttons and tags of a person in the people list while we are in a room. */
  function userActions(identity) {
    const box = el('div', 'user-actions');
    if (rooms.members.has(identity)) {
      box.append(el('span', 'tag tag-room', 'in this room'));
    } else if (rooms.isInvited(identity)) {
      const tag = el('span', 'tag tag-invited', 'invited');
      tag.setAttribute('data-testid', 'invited');
      box.append(tag);
    } else {
      const b = el('button', 'btn btn-small', 'Invite');
      b.type = 'button';
      b.setAttribute('data-testid', 'invite-to-room');
      b.disabled = !client.connected;
      b.title = `Invite ${nameOf(identity)} to ${rooms.room?.name ?? 'the room'}`;
      b.addEventListener('click', () => send({ type: 'invite_to_room', room_id: rooms.roomId, target: identity }));
      box.append(b);
    }
    return box;
  }

  return {
    render: schedule,
    inRoom,
    userActions,
    stop: () => media?.stop(),
  };
}
