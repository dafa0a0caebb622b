/**
 * UI glue of recording for the vanilla frontend (docs/recording.md): the Record button and the
 * recording indicator of the call page and of the room page, the notices when someone else
 * starts or stops recording, and the Recordings dialog — the list of the recordings I took part
 * in (play, download, delete) and the player (speaker view, play/pause, timeline).
 * The decisions are lib/ modules (recording.js: state, notices, the list's rows, the download
 * URL; replay.js and replayer.js: the player; roomview.js: which layer a tile prefers); this
 * file renders and turns clicks into requests.
 */

import {
  describeRecording,
  downloadUrl,
  formatClock,
  recordRequest,
  recordingNotice,
  recordingNoticeText,
} from './lib/recording.js';
import { RecordingPlayer } from './lib/replayer.js';
import { preferredLayer } from './lib/roomview.js';
import { $, el, showNotice, toast } from './ui.js';

const STATE_TEXT = { playing: '', paused: 'Paused', buffering: 'Loading…', ended: 'Ended', error: '' };

/**
 * @param {object} o
 * @param {import('./lib/client.js').RelayClient} o.client
 * @param {(identity: string) => string} o.nameOf
 * @param {(el: HTMLElement, identity: string) => void} o.paintAvatar
 * @param {(msg: object) => void} o.send
 * @param {() => object} o.settings
 */
export function setupRecordings({ client, nameOf, paintAvatar, send, settings }) {
  const stoppedByMe = new Set(); // recording ids I asked to stop
  let asking = false; // a start or stop waits for its answer
  let listed = []; // list_recordings, newest first
  let confirming = null; // the recording whose Delete was clicked once
  let player = null;
  let dragging = false;
  const tiles = new Map(); // identity -> tile parts
  let queued = false;

  function schedule() {
    if (queued) return;
    queued = true;
    queueMicrotask(() => {
      queued = false;
      render();
    });
  }

  /** Where a recording would be made now: the active call, else my room; or null. */
  function target() {
    const call = client.activeCall();
    if (call) return { sessionId: call.session_id };
    if (client.rooms.room) return { roomId: client.rooms.roomId };
    return null;
  }

  function current(t) {
    if (!t) return null;
    return t.sessionId ? client.recordings.forCall(t.sessionId) : client.recordings.forRoom(t.roomId);
  }

  // -------------------------------------------------------------- the call and room pages

  function render() {
    const available = client.recordingAvailable && client.connected;
    $('open-recordings').hidden = !available;
    const t = target();
    const going = current(t);
    for (const [button, indicator, mine] of [
      ['toggle-recording', 'recording-indicator', Boolean(t?.sessionId)],
      ['room-toggle-recording', 'room-recording-indicator', Boolean(t?.roomId)],
    ]) {
      const on = mine && Boolean(going);
      $(indicator).hidden = !on;
      $(indicator).title = on ? `Recorded since ${new Date(going.started_at).toLocaleTimeString()}, started by ${nameOf(going.started_by)}` : '';
      const b = $(button);
      b.hidden = !available || !mine;
      b.disabled = asking;
      b.setAttribute('aria-pressed', String(on));
      b.querySelector('.label').textContent = on ? 'Stop recording' : 'Record';
      b.title = on ? 'Stop recording' : `Record this ${t?.roomId ? 'room' : 'call'} (everyone in it sees that it is recorded)`;
    }
    document.body.classList.toggle('recording', Boolean(going));
  }

  function toggleRecording() {
    const t = target();
    if (!t || asking) return;
    const going = current(t);
    if (going) stoppedByMe.add(going.recording_id);
    if (client.send(recordRequest(t, going))) asking = true;
    else toast('Not connected to the server');
    render();
  }

  $('toggle-recording').addEventListener('click', toggleRecording);
  $('room-toggle-recording').addEventListener('click', toggleRecording);

  // -------------------------------------------------------------- server events

  client.addEventListener('state', (ev) => {
    const { table } = ev.detail;
    if (table === 'recordings') {
      const notice = recordingNotice(ev.detail, client.identity, {
        inCall: (row) => (row.session_id ? client.activeCall()?.session_id === row.session_id : client.rooms.roomId === row.room_id),
        stoppedByMe: (row) => stoppedByMe.has(row.recording_id),
      });
      if (notice) showNotice({ kind: notice.kind, ...recordingNoticeText(notice, nameOf), identity: notice.by }, paintAvatar);
      if (ev.detail.row?.stopped_at && $('recordings-dialog').open) refreshList();
    }
    schedule();
  });
  client.addEventListener('status', schedule);
  client.addEventListener('ack', (ev) => {
    const d = ev.detail;
    if (d.req_type === 'start_recording' || d.req_type === 'stop_recording') asking = false;
    if (d.req_type === 'list_recordings') {
      listed = Array.isArray(d.recordings) ? d.recordings : [];
      renderList();
    }
    if (d.req_type === 'delete_recording') {
      if (player?.recordingId === d.recording_id) closePlayer();
      refreshList();
    }
    schedule();
  });
  client.addEventListener('error', (ev) => {
    const d = ev.detail;
    if (d.req_type === 'start_recording' || d.req_type === 'stop_recording') asking = false;
    if (['list_recordings', 'delete_recording'].includes(d.req_type)) listError(d.message);
    schedule();
  });

  // -------------------------------------------------------------- the list

  function refreshList() {
    if (!client.send({ type: 'list_recordings' })) listError('Not connected to the server');
  }

  function listError(message) {
    $('recordings-empty').hidden = false;
    $('recordings-empty').textContent = message;
  }

  function renderList() {
    const me = client.identity;
    const rows = listed.map((rec) => {
      const d = describeRecording(rec, me, nameOf);
      const tr = el('tr', 'recording-row');
      tr.dataset.recordingId = d.id;
      tr.setAttribute('data-testid', 'recording');
      tr.classList.toggle('playing', player?.recordingId === d.id);
      const cell = (text, testid) => {
        const td = el('td', '', text);
        if (testid) td.setAttribute('data-testid', testid);
        return td;
      };
      const when = d.when ? d.when.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' }) : '?';
      const actions = el('td', 'recording-actions');
      const play = el('button', 'btn btn-small btn-primary', 'Play');
      play.type = 'button';
      play.dataset.action = 'play';
      play.setAttribute('data-testid', 'play-recording');
      const download = el('a', 'btn btn-small', 'Download');
      download.href = downloadUrl(client.url, d.id, client.token);
      download.download = ''; // the server names the file
      download.setAttribute('data-testid', 'download-recording');
      actions.append(play, download);
      if (d.canDelete) {
        const del = el('button', 'btn btn-small btn-danger', confirming === d.id ? 'Really delete?' : 'Delete');
        del.type = 'button';
        del.dataset.action = 'delete';
        del.setAttribute('data-testid', 'delete-recording');
        actions.append(del);
      }
      tr.append(cell(when, 'recording-date'), cell(d.kind, 'recording-kind'), cell(d.people.join(', '), 'recording-people'),
        cell(d.duration, 'recording-duration'), cell(d.size, 'recording-size'), actions);
      return tr;
    });
    $('recordings-list').replaceChildren(...rows);
    const empty = $('recordings-empty');
    if (!rows.length) {
      empty.hidden = false;
      empty.textContent = 'No recordings yet. Record a call or a room with its Record button.';
    } else {
      empty.hidden = true;
    }
  }

  $('open-recordings').addEventListener('click', () => {
    confirming = null;
    $('recordings-dialog').showModal();
    renderList();
    refreshList();
  });
  $('recordings-refresh').addEventListener('click', refreshList);
  $('recordings-close').addEventListener('click', () => $('recordings-dialog').close());
  $('recordings-dialog').addEventListener('close', closePlayer);
  $('recordings-list').addEventListener('click', (ev) => {
    const button = ev.target.closest('button[data-action]');
    const row = ev.target.closest('[data-recording-id]');
    if (!button || !row) return;
    const rec = listed.find((r) => r.recording_id === row.dataset.recordingId);
    if (!rec) return;
    if (button.dataset.action === 'play') openPlayer(rec);
    else if (button.dataset.action === 'delete') {
      if (confirming !== rec.recording_id) {
        confirming = rec.recording_id;
      } else {
        confirming = null;
        send({ type: 'delete_recording', recording_id: rec.recording_id });
      }
      renderList();
    }
  });

  // -------------------------------------------------------------- the player

  function openPlayer(rec) {
    closePlayer();
    const d = describeRecording(rec, client.identity, nameOf);
    player = new RecordingPlayer({
      client,
      recording: rec,
      talkingThreshold: Number(settings().audio_talking_rms_threshold) || 0.02,
      onChange: renderPlayer,
      onError: (message) => ($('replay-status').textContent = message),
    });
    window.pgcallReplay = player;
    $('replay').hidden = false;
    $('replay').dataset.recording = rec.recording_id;
    $('replay-title').textContent = `${d.kind} · ${d.people.join(', ')}${d.when ? ` · ${d.when.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' })}` : ''}`;
    player.open();
    renderPlayer();
    renderList();
  }

  function closePlayer() {
    if (!player) return;
    player.close();
    if (window.pgcallReplay === player) window.pgcallReplay = null;
    player = null;
    for (const t of tiles.values()) t.root.remove();
    tiles.clear();
    $('replay').hidden = true;
    if ($('recordings-dialog').open) renderList();
  }

  function renderPlayer() {
    const p = player;
    if (!p) return;
    const pos = p.position();
    const duration = p.durationMs;
    const root = $('replay');
    root.dataset.state = p.state;
    $('replay-status').textContent = p.state === 'error' ? p.error : STATE_TEXT[p.state] ?? '';
    const running = p.state === 'playing' || p.state === 'buffering';
    const play = $('replay-play');
    play.textContent = running ? 'Pause' : 'Play';
    play.setAttribute('aria-label', running ? 'Pause' : 'Play');
    const seek = $('replay-seek');
    seek.max = String(Math.max(0, Math.round(duration)));
    if (!dragging) seek.value = String(Math.round(pos));
    $('replay-time').textContent = `${formatClock(dragging ? Number(seek.value) : pos)} / ${formatClock(duration)}`;
    renderTiles(p);
  }

  function makeTile(identity) {
    const root = el('div', 'tile replay-tile');
    root.dataset.identity = identity;
    root.setAttribute('data-testid', 'replay-tile');
    root.title = 'Click to keep large';
    const img = el('img');
    img.alt = '';
    img.setAttribute('data-testid', 'replay-video');
    const placeholder = el('div', 'tile-placeholder');
    const avatar = el('div', 'avatar');
    const caption = el('div', 'tile-caption');
    placeholder.append(avatar, caption);
    const label = el('div', 'tile-label');
    const name = el('span', 'tile-name');
    name.setAttribute('data-testid', 'tile-name');
    label.append(name);
    root.append(img, placeholder, label);
    return { root, img, avatar, caption, name, prefer: null };
  }

  function renderTiles(p) {
    const { main, strip } = p.layout();
    for (const id of p.members) {
      let t = tiles.get(id);
      if (!t) {
        t = makeTile(id);
        tiles.set(id, t);
      }
      const isMain = id === main;
      const state = p.videoState(id);
      const r = t.root.dataset;
      r.main = String(isMain);
      r.video = state;
      r.talking = String(p.isTalking(id));
      r.pinned = String(p.pinned === id);
      const name = id === client.identity ? `${nameOf(id)} (you)` : nameOf(id);
      if (t.name.textContent !== name) t.name.textContent = name;
      paintAvatar(t.avatar, id);
      t.caption.textContent = state === 'off' ? 'No picture' : '';
      const prefer = preferredLayer({ isMain, large: p.large });
      if (prefer !== t.prefer) {
        t.prefer = prefer;
        p.attach(t.img, id, prefer);
      }
    }
    place($('replay-main'), main ? [main] : []);
    place($('replay-strip'), strip);
  }

  function place(box, ids) {
    const wanted = ids.map((id) => tiles.get(id)?.root).filter(Boolean);
    const same = box.children.length === wanted.length && wanted.every((n, i) => box.children[i] === n);
    if (!same) box.replaceChildren(...wanted);
  }

  $('replay-play').addEventListener('click', () => player?.toggle());
  $('replay-close').addEventListener('click', closePlayer);
  const seek = $('replay-seek');
  seek.addEventListener('input', () => {
    dragging = true;
    renderPlayer();
  });
  seek.addEventListener('change', () => {
    dragging = false;
    player?.seek(Number(seek.value));
  });
  $('replay-stage').addEventListener('click', (ev) => {
    const tile = ev.target.closest('[data-identity]');
    if (!tile || !player) return;
    player.pin(player.pinned === tile.dataset.identity ? null : tile.dataset.identity);
  });

  return {
    render: schedule,
    stop: closePlayer,
  };
}
