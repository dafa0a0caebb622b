/**
 * UI glue for the vanilla frontend: wires RelayClient state and CallMedia to the DOM of
 * index.html (people, chat, 1:1 calls; rooms are rooms-ui.js, recording recordings-ui.js).
 * All protocol, state and media logic lives in lib/; this file only renders and turns clicks
 * into control messages (protocol.md §3).
 */

import { CallTracker, formatDuration, noticeText } from './lib/calls.js';
import { RelayClient } from './lib/client.js';
import { loadDeviceChoice, saveDeviceChoice } from './lib/devices.js';
import { CallMedia } from './lib/media.js';
import { DEFAULT_SETTINGS, isVideoCall } from './lib/state.js';
import { MediaStats } from './lib/stats.js';
import { setupRooms } from './rooms-ui.js';
import { setupRecordings } from './recordings-ui.js';
import { $, bindChatBox, el, namer, paintAvatar as paint, renderChatLog, renderDeviceMenus, shortHex, showNotice, toast } from './ui.js';

const params = new URLSearchParams(location.search);
const relayUrl = params.get('relay') || `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;

const client = new RelayClient({ url: relayUrl });
const stats = new MediaStats();
const tracker = new CallTracker();
window.pgcallStats = stats;
window.pgcallClient = client;
window.pgcallMedia = null; // the CallMedia of the active call (or the room's RoomMedia), for tests

let media = null; // CallMedia of the active call
let dismissedIncoming = null; // session we answered locally; hide its dialog until the update
let hungUp = null; // session we ended locally; ignore it until the delete arrives
let nicknameTouched = false;
const dirty = new Set(['users', 'chat', 'calls']);
let renderQueued = false;

// ---------------------------------------------------------------- helpers

// Someone who left keeps the nickname they had (the client remembers it).
const nameOf = namer(client);
const paintAvatar = (node, identity) => paint(node, identity, nameOf);

function settings() {
  return client.settings ?? DEFAULT_SETTINGS;
}

function send(obj) {
  if (!client.send(obj)) toast('Not connected to the server');
}

function scheduleRender(...what) {
  for (const w of what) dirty.add(w);
  if (renderQueued) return;
  renderQueued = true;
  queueMicrotask(() => {
    renderQueued = false;
    render();
  });
}

const rooms = setupRooms({
  client,
  stats,
  nameOf,
  paintAvatar,
  send,
  settings,
  onChange: () => scheduleRender('users'),
});

const recordings = setupRecordings({ client, nameOf, paintAvatar, send, settings });

// ---------------------------------------------------------------- rendering

function render() {
  const parts = new Set(dirty);
  dirty.clear();
  renderHeader();
  if (parts.has('users')) renderUsers();
  if (parts.has('chat') || parts.has('users')) renderChat();
  renderCalls();
  syncMedia();
  rooms.render();
  recordings.render();
}

function renderHeader() {
  const me = client.identity;
  $('my-identity').textContent = me ? `${nameOf(me)} · ${me.slice(0, 8)}` : '—';
  $('my-identity').title = me ? `Your identity: ${me}` : 'Your identity';
  const nick = $('nickname-input');
  const mine = me && client.users.get(me);
  if (mine && !nicknameTouched && document.activeElement !== nick) nick.value = mine.nickname;
  const online = client.connected;
  nick.disabled = !online;
  $('nickname-save').disabled = !online;
  $('chat-input').disabled = !online;
  $('chat-send').disabled = !online;
}

function renderUsers() {
  const me = client.identity;
  const list = $('user-list');
  const users = [...client.users.values()].sort((a, b) => {
    if (a.identity === me) return -1;
    if (b.identity === me) return 1;
    return (a.nickname || a.identity).localeCompare(b.nickname || b.identity);
  });
  const iAmBusy = Boolean(me && client.callOf(me)) || rooms.inRoom();
  list.replaceChildren(...users.map((u) => userRow(u, me, iAmBusy)));
  $('new-room').disabled = !client.connected || iAmBusy;
  $('user-count').textContent = String(users.length);
  $('user-empty').hidden = users.length > 0;
  $('user-empty').textContent = client.connected ? 'Nobody here yet.' : 'Waiting for the server…';
}

function userRow(user, me, iAmBusy) {
  const li = el('li', 'user');
  li.dataset.identity = user.identity;
  li.setAttribute('data-testid', 'user');
  const avatar = el('div', 'avatar');
  paintAvatar(avatar, user.identity);
  const main = el('div', 'user-main');
  main.append(el('div', 'user-name', user.nickname || shortHex(user.identity)));
  const meta = el('div', 'user-meta');
  meta.append(el('span', 'mono', shortHex(user.identity)));
  const call = client.callOf(user.identity);
  if (user.identity === me) {
    li.classList.add('me');
    meta.append(el('span', 'tag tag-you', 'you'));
  } else if (call) {
    const ringing = String(call.state).toLowerCase() !== 'active';
    const tag = el('span', ringing ? 'tag tag-ringing' : 'tag tag-busy', ringing ? 'ringing' : 'in a call');
    tag.setAttribute('data-testid', 'busy');
    meta.append(tag);
  }
  main.append(meta);
  li.append(avatar, main);
  if (user.identity !== me && rooms.inRoom()) {
    li.append(rooms.userActions(user.identity));
  } else if (user.identity !== me && !iAmBusy) {
    const actions = el('div', 'user-actions');
    const disabled = !client.connected || Boolean(call);
    for (const [kind, label] of [['Video', 'Video call'], ['Voice', 'Voice call']]) {
      const b = el('button', 'btn btn-small', label);
      b.type = 'button';
      b.dataset.action = 'call';
      b.dataset.callType = kind;
      b.setAttribute('data-testid', kind === 'Video' ? 'call-video' : 'call-voice');
      b.disabled = disabled;
      actions.append(b);
    }
    li.append(actions);
  }
  return li;
}

const chatNodes = new Map(); // message id -> <li>
function renderChat() {
  const count = renderChatLog($('chat-log'), client.messages, {
    me: client.identity, nameOf, nodes: chatNodes, testid: 'chat-message',
  });
  $('chat-empty').hidden = count > 0 || !client.connected;
}

function renderCalls() {
  const me = client.identity;
  // Incoming dialog.
  const incoming = client.incomingCall();
  const dialog = $('incoming-dialog');
  if (incoming && incoming.session_id !== dismissedIncoming) {
    const video = isVideoCall(incoming);
    $('incoming-title').textContent = `Incoming ${video ? 'video' : 'voice'} call`;
    $('incoming-from').textContent = `from ${nameOf(incoming.caller)}`;
    paintAvatar($('incoming-avatar'), incoming.caller);
    if (!dialog.open) dialog.showModal();
  } else if (dialog.open) {
    dialog.close();
  }
  // Outgoing "Ringing…".
  const outgoing = client.outgoingCall();
  const banner = $('outgoing-banner');
  banner.hidden = !outgoing || outgoing.session_id === hungUp;
  if (outgoing) {
    $('outgoing-name').textContent = `Calling ${nameOf(outgoing.callee)}`;
    $('outgoing-kind').textContent = `${isVideoCall(outgoing) ? 'Video' : 'Voice'} call · Ringing…`;
    paintAvatar($('outgoing-avatar'), outgoing.callee);
  }
  // Call view.
  const active = visibleActiveCall();
  document.body.classList.toggle('in-call', Boolean(active));
  $('call-view').hidden = !active;
  if (active) {
    const peer = client.peerOf(active);
    const video = isVideoCall(active);
    $('call-title').textContent = `${video ? 'Video' : 'Voice'} call with ${nameOf(peer)}`;
    paintAvatar($('remote-avatar'), peer);
    if (!video) $('remote-caption').textContent = nameOf(peer);
    $('toggle-camera').hidden = !video;
  }
  const callNotice = !String($('call-notice').dataset.kind ?? '').startsWith('recording');
  if (callNotice && (active || outgoing || (incoming && incoming.session_id !== dismissedIncoming))) {
    $('call-notice').hidden = true; // a new call makes the last one's notice stale
  }
  if (!me) document.body.classList.remove('in-call');
}

function visibleActiveCall() {
  const active = client.activeCall();
  return active && active.session_id !== hungUp ? active : null;
}

// ---------------------------------------------------------------- media lifecycle

function syncMedia() {
  const active = visibleActiveCall();
  if (media && (!active || media.call.session_id !== active.session_id)) {
    media.stop();
    media = null;
    window.pgcallMedia = null;
    setTalking(false);
    resetCallButtons();
    leaveFullscreen();
  }
  if (active && !media) {
    media = new CallMedia({
      client,
      call: active,
      settings: settings(),
      localVideo: $('local-video'),
      remoteVideo: $('remote-video'),
      stats,
      onTalking: setTalking,
      onError: (message) => toast(message),
      onChange: () => renderMedia(),
      cameraId: loadDeviceChoice(localStorage, 'videoinput'),
      microphoneId: loadDeviceChoice(localStorage, 'audioinput'),
    });
    window.pgcallMedia = media;
    renderMedia();
    media.start().catch((err) => toast(`Media failed: ${err.message}`));
  } else if (media && client.settings && media.settings !== client.settings) {
    media.updateSettings(client.settings);
  }
}

function resetCallButtons() {
  $('toggle-mic').setAttribute('aria-pressed', 'false');
  $('toggle-mic').querySelector('.label').textContent = 'Mute mic';
  $('toggle-camera').setAttribute('aria-pressed', 'false');
  $('toggle-camera').querySelector('.label').textContent = 'Camera off';
  $('devices-panel').hidden = true;
  $('toggle-devices').setAttribute('aria-pressed', 'false');
  renderMedia();
}

const QUALITY_TEXT = { good: 'Good', fair: 'Fair', poor: 'Poor', idle: 'No media' };

/** What CallMedia reports: the peer's video, screen sharing, quality, devices in use. */
function renderMedia() {
  const m = media;
  const wrap = $('video-wrap');
  const remote = m ? m.remoteVideoState : 'waiting';
  wrap.dataset.remote = remote;
  if (m && m.video) {
    $('remote-caption').textContent = remote === 'off' ? 'Camera off' : 'Waiting for video…';
  }
  const sharing = Boolean(m?.sharing);
  const share = $('toggle-screen');
  share.hidden = !m || !m.video || !CallMedia.screenShareSupported;
  share.setAttribute('aria-pressed', String(sharing));
  share.querySelector('.label').textContent = sharing ? 'Stop sharing' : 'Share screen';
  share.title = sharing ? 'Stop sharing your screen' : 'Share your screen instead of the camera';
  $('local-video').hidden = !m || !m.video || (m.cameraOff && !sharing);
  const q = m ? m.quality : { level: 'idle', reasons: [] };
  const pill = $('quality');
  pill.dataset.level = q.level;
  $('quality-text').textContent = QUALITY_TEXT[q.level] ?? q.level;
  pill.title = `Connection: ${QUALITY_TEXT[q.level] ?? q.level}${q.reasons.length ? ` (${q.reasons.join('; ')})` : ''}`;
  if (!$('devices-panel').hidden) renderDevices();
}

// ---------------------------------------------------------------- devices

let deviceList = [];

async function refreshDevices() {
  try {
    deviceList = await navigator.mediaDevices.enumerateDevices();
  } catch {
    deviceList = [];
  }
  renderDevices();
}

function renderDevices() {
  renderDeviceMenus(deviceList, media, {
    cameraSelect: $('camera-select'), micSelect: $('mic-select'), video: Boolean(media?.video),
  });
}

async function chooseDevice(kind, deviceId) {
  saveDeviceChoice(localStorage, kind, deviceId);
  if (!media) return;
  try {
    if (kind === 'videoinput') await media.setCamera(deviceId);
    else await media.setMicrophone(deviceId);
  } catch (err) {
    toast(`Cannot use that ${kind === 'videoinput' ? 'camera' : 'microphone'}: ${err.message}`);
  }
  renderDevices();
}

navigator.mediaDevices?.addEventListener?.('devicechange', () => {
  if (!$('devices-panel').hidden) refreshDevices();
});

// ---------------------------------------------------------------- full screen

function toggleFullscreen() {
  const stage = $('call-view');
  if (document.fullscreenElement) {
    document.exitFullscreen().catch(() => {});
  } else if (stage.classList.contains('enlarged')) {
    setEnlarged(false);
  } else if (stage.requestFullscreen && document.fullscreenEnabled !== false) {
    // Where the page may not go full screen (an iframe, some phones), fill the window instead.
    stage.requestFullscreen().catch(() => setEnlarged(true));
  } else {
    setEnlarged(true);
  }
}

function setEnlarged(on) {
  $('call-view').classList.toggle('enlarged', on);
  renderFullscreen();
}

function leaveFullscreen() {
  if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
  setEnlarged(false);
}

function renderFullscreen() {
  const on = Boolean(document.fullscreenElement) || $('call-view').classList.contains('enlarged');
  const b = $('toggle-fullscreen');
  b.setAttribute('aria-pressed', String(on));
  b.title = on ? 'Exit full screen (Esc)' : 'Full screen (double-click the video)';
  b.querySelector('.sr-only').textContent = on ? 'Exit full screen' : 'Full screen';
}

// ---------------------------------------------------------------- call notices

let pollTimer = null;

function showNotices(notices) {
  for (const notice of notices) {
    showNotice({ kind: notice.kind, ...noticeText(notice, nameOf), identity: notice.peer }, paintAvatar);
  }
}

function trackCalls(detail) {
  showNotices(tracker.observe(detail, client.identity, Date.now()));
  schedulePoll();
}

function schedulePoll() {
  clearTimeout(pollTimer);
  const due = tracker.nextDueMs(Date.now());
  if (due === null) return;
  pollTimer = setTimeout(() => {
    showNotices(tracker.poll(Date.now(), (identity) => client.users.has(identity)));
    schedulePoll();
  }, due + 1);
}

function setTalking(talking) {
  $('talking-indicator').hidden = !talking;
  $('remote-avatar').classList.toggle('talking', talking);
}

// ---------------------------------------------------------------- timers: call clock and stats

setInterval(() => {
  const active = visibleActiveCall();
  if (!active) return;
  $('call-timer').textContent = formatDuration(tracker.elapsedMs(active, Date.now()));
}, 1000);

setInterval(() => {
  const overlay = $('stats-overlay');
  if (overlay.hidden) return;
  const s = stats.summary(performance.now());
  const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
  const rows = [
    ['video fps sent', s.videoFpsSent.toFixed(0)],
    ['video fps received', s.videoFpsReceived.toFixed(0)],
    ['audio frames/s sent', s.audioFpsSent.toFixed(0)],
    ['audio frames/s received', s.audioFpsReceived.toFixed(0)],
    ['last / avg frame sent', `${kb(s.videoLastSentBytes)} / ${kb(s.videoAvgSentBytes)}`],
    ['last / avg frame received', `${kb(s.videoLastReceivedBytes)} / ${kb(s.videoAvgReceivedBytes)}`],
    ['picture sent / received', `${s.videoSentSize.join('×')} / ${s.videoReceivedSize.join('×')}`],
    ['jitter depth', `${s.jitterDepthMs} ms`],
    ['dropped (received audio)', String(s.droppedFrames)],
    ['concealed', String(s.concealedFrames)],
    ['skipped (not sent)', String(s.skippedFrames)],
  ];
  const dl = el('dl');
  dl.style.display = 'contents';
  for (const [k, v] of rows) dl.append(el('dt', '', k), el('dd', '', v));
  overlay.replaceChildren(dl);
}, 500);

// ---------------------------------------------------------------- client events

const STATUS_TEXT = {
  connecting: 'Connecting…',
  open: 'Connected',
  reconnecting: 'Reconnecting…',
  replaced: 'Open in another tab',
  'need-secret': 'Secret required',
  closed: 'Disconnected',
};

let everConnected = false;

function renderStatus(detail) {
  const status = detail.status;
  if (status === 'open') everConnected = true;
  // Until the first success, retries are still just "connecting".
  const shown = status === 'reconnecting' && !everConnected ? 'connecting' : status;
  const pill = $('conn-status');
  pill.className = `pill pill-${shown}`;
  pill.querySelector('.pill-text').textContent = STATUS_TEXT[shown] ?? shown;
  const banner = $('conn-banner');
  const text = $('conn-banner-text');
  banner.hidden = status === 'open';
  banner.classList.toggle('banner-bad', ['replaced', 'closed', 'need-secret'].includes(status));
  $('reconnect-now').hidden = status !== 'replaced';
  if (status === 'connecting') text.textContent = 'Connecting to the server…';
  else if (status === 'reconnecting') {
    const secs = Math.max(1, Math.round(detail.retryInMs / 1000));
    text.textContent = everConnected
      ? `Connection lost. Reconnecting in ${secs} s…`
      : `Connecting to the server… retrying in ${secs} s`;
  } else if (status === 'replaced') {
    text.textContent = 'This identity was opened in another tab or window, so this one stopped.';
  } else if (status === 'need-secret') text.textContent = 'This server needs a join secret.';
  else if (status === 'closed') text.textContent = 'Disconnected.';
  if (status === 'need-secret') {
    $('secret-hint').textContent = detail.hadSecret ? 'That secret was not accepted. Try again.' : 'Ask whoever runs it.';
    if (!$('secret-dialog').open) $('secret-dialog').showModal();
  }
  scheduleRender('users');
}

client.addEventListener('status', (ev) => renderStatus(ev.detail));
client.addEventListener('state', (ev) => {
  const table = ev.detail.table;
  if (table === 'users' || table === 'identity') scheduleRender('users', 'chat');
  else if (table === 'chat_messages') scheduleRender('chat');
  else if (table === 'call_sessions') {
    trackCalls(ev.detail);
    // Forget local overrides once the server has caught up.
    if (hungUp && !client.calls.has(hungUp)) hungUp = null;
    if (dismissedIncoming && !client.incomingCall()) dismissedIncoming = null;
    scheduleRender('users');
  } else scheduleRender();
});
client.addEventListener('error', (ev) => {
  // If the server refused to end the call, show it again rather than hide a live call.
  if (ev.detail.req_type === 'end_call' && hungUp) {
    hungUp = null;
    scheduleRender('users');
  }
  toast(`${ev.detail.req_type}: ${ev.detail.message}`);
});
client.addEventListener('ack', (ev) => {
  if (ev.detail.req_type === 'set_nickname') {
    nicknameTouched = false;
    toast('Nickname saved', 'info');
  }
});

// ---------------------------------------------------------------- user actions

$('nickname-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const nickname = $('nickname-input').value.trim();
  if (!nickname) return toast('Nickname cannot be empty');
  send({ type: 'set_nickname', nickname });
});
$('nickname-input').addEventListener('input', () => (nicknameTouched = true));

bindChatBox($('chat-form'), $('chat-input'), (text) => client.send({ type: 'send_message', text }));

$('user-list').addEventListener('click', (ev) => {
  const button = ev.target.closest('button[data-action="call"]');
  if (!button) return;
  const target = button.closest('[data-identity]').dataset.identity;
  send({ type: 'request_call', target, call_type: button.dataset.callType });
});

$('accept-call').addEventListener('click', () => {
  const call = client.incomingCall();
  if (!call) return;
  dismissedIncoming = call.session_id;
  send({ type: 'accept_call', session_id: call.session_id });
  scheduleRender();
});
$('decline-call').addEventListener('click', () => {
  const call = client.incomingCall();
  if (!call) return;
  dismissedIncoming = call.session_id;
  tracker.endedLocally(call.session_id);
  send({ type: 'decline_call', session_id: call.session_id });
  scheduleRender();
});
// Escape would close the modal without answering; keep it until Accept or Decline.
$('incoming-dialog').addEventListener('cancel', (ev) => ev.preventDefault());

$('cancel-call').addEventListener('click', () => {
  const call = client.outgoingCall();
  if (!call) return;
  hungUp = call.session_id;
  tracker.endedLocally(call.session_id);
  send({ type: 'end_call', session_id: call.session_id });
  scheduleRender('users');
});
$('hangup').addEventListener('click', () => {
  const call = client.activeCall();
  if (!call) return;
  hungUp = call.session_id;
  tracker.endedLocally(call.session_id);
  send({ type: 'end_call', session_id: call.session_id });
  scheduleRender('users');
});

$('toggle-mic').addEventListener('click', (ev) => {
  if (!media) return;
  media.setMicMuted(!media.micMuted);
  ev.currentTarget.setAttribute('aria-pressed', String(media.micMuted));
  ev.currentTarget.querySelector('.label').textContent = media.micMuted ? 'Unmute' : 'Mute mic';
});
$('toggle-camera').addEventListener('click', (ev) => {
  if (!media) return;
  media.setCameraOff(!media.cameraOff);
  ev.currentTarget.setAttribute('aria-pressed', String(media.cameraOff));
  ev.currentTarget.querySelector('.label').textContent = media.cameraOff ? 'Camera on' : 'Camera off';
  renderMedia();
});
$('toggle-screen').addEventListener('click', () => {
  if (!media) return;
  if (media.sharing) media.stopScreenShare();
  else media.startScreenShare().catch((err) => toast(`Screen sharing failed: ${err.message}`));
});
$('toggle-devices').addEventListener('click', (ev) => {
  const panel = $('devices-panel');
  panel.hidden = !panel.hidden;
  ev.currentTarget.setAttribute('aria-pressed', String(!panel.hidden));
  if (!panel.hidden) refreshDevices();
});
$('camera-select').addEventListener('change', (ev) => chooseDevice('videoinput', ev.target.value));
$('mic-select').addEventListener('change', (ev) => chooseDevice('audioinput', ev.target.value));
$('toggle-fullscreen').addEventListener('click', toggleFullscreen);
$('video-wrap').addEventListener('dblclick', (ev) => {
  if (!ev.target.closest('button')) toggleFullscreen(); // a quick double click on the button is two clicks already
});
document.addEventListener('fullscreenchange', renderFullscreen);
document.addEventListener('keydown', (ev) => {
  if (ev.key === 'Escape' && $('call-view').classList.contains('enlarged')) setEnlarged(false);
});
$('call-notice-close').addEventListener('click', () => ($('call-notice').hidden = true));
$('toggle-stats').addEventListener('click', (ev) => {
  const overlay = $('stats-overlay');
  overlay.hidden = !overlay.hidden;
  ev.currentTarget.setAttribute('aria-pressed', String(!overlay.hidden));
});

$('reconnect-now').addEventListener('click', () => client.connect());
$('secret-form').addEventListener('submit', () => {
  // method="dialog" closes the dialog by itself.
  client.setSecret($('secret-input').value);
  $('secret-input').value = '';
});

window.addEventListener('pagehide', () => {
  media?.stop();
  rooms.stop();
  recordings.stop();
});

render();
client.connect();
