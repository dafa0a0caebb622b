/**
 * DOM helpers the vanilla frontend's glue shares (app.js for people, chat and calls, rooms-ui.js
 * for rooms): element lookup and creation, names and avatars, toasts, chat logs and the device
 * menus. Rendering only; the logic lives in lib/.
 */

import { deviceOptions, loadDeviceChoice, selectedDevice } from './lib/devices.js';

export const $ = (id) => document.getElementById(id);

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export function shortHex(id) {
  return typeof id === 'string' && id.length > 18 ? `${id.slice(0, 10)}…${id.slice(-6)}` : String(id ?? '');
}

export function hueOf(identity) {
  let h = 0;
  for (const ch of String(identity)) h = (h * 31 + ch.charCodeAt(0)) % 360;
  return h;
}

export function initials(name) {
  const parts = String(name).replace(/[^\p{L}\p{N} ]/gu, ' ').trim().split(/\s+/);
  const letters = parts.length > 1 ? parts[0][0] + parts[1][0] : (parts[0] || '?').slice(0, 2);
  return letters.toUpperCase();
}

/** `nameOf(identity)`: the nickname (also of people who left, as the client remembers it). */
export function namer(client) {
  return (identity) => client.nicknameOf(identity) || shortHex(identity);
}

export function paintAvatar(el, identity, nameOf) {
  el.textContent = initials(nameOf(identity));
  el.style.setProperty('--hue', hueOf(identity));
}

const recentToasts = new Map();
export function toast(text, kind = 'error') {
  const now = Date.now();
  if (recentToasts.get(text) > now - 3000) return; // media errors can repeat 20×/s
  recentToasts.set(text, now);
  const node = el('div', `toast toast-${kind}`, text);
  node.setAttribute('data-testid', 'toast');
  $('toasts').append(node);
  setTimeout(() => node.classList.add('leaving'), 3600);
  setTimeout(() => node.remove(), 4000);
}

let noticeTimer = null;

/**
 * Show the notice box (#call-notice) with `title` and `detail`, `identity`'s avatar, and
 * `kind` as its data-kind (call notices, recording notices); it hides itself after 8 s.
 */
export function showNotice({ kind, title, detail, identity }, paint) {
  const box = $('call-notice');
  box.dataset.kind = kind;
  $('call-notice-title').textContent = title;
  $('call-notice-detail').textContent = detail;
  paint($('call-notice-avatar'), identity);
  box.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => (box.hidden = true), 8000);
}

/**
 * Render `messages` (ascending, with id, sender, sent_at, text) into the <ol> `log`, reusing the
 * <li> of each message kept in `nodes` (id -> <li>); `testid` names the items.
 */
export function renderChatLog(log, messages, { me, nameOf, nodes, testid }) {
  const nearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
  const wanted = new Set();
  const items = messages.map((m) => {
    wanted.add(m.id);
    let li = nodes.get(m.id);
    if (!li) {
      li = el('li', 'msg');
      li.dataset.id = m.id;
      li.setAttribute('data-testid', testid);
      const head = el('div', 'msg-head');
      const author = el('span', 'msg-author');
      author.setAttribute('data-testid', 'chat-author');
      head.append(author, el('time', 'msg-time'));
      li.append(head, el('div', 'msg-body', m.text ?? ''));
      nodes.set(m.id, li);
    }
    li.classList.toggle('mine', m.sender === me);
    const author = li.querySelector('.msg-author');
    author.textContent = m.sender === me ? 'You' : nameOf(m.sender);
    li.style.setProperty('--hue', hueOf(m.sender));
    const t = li.querySelector('.msg-time');
    const when = new Date(m.sent_at);
    t.textContent = Number.isNaN(when.getTime()) ? '' : when.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    t.dateTime = m.sent_at ?? '';
    return li;
  });
  for (const id of nodes.keys()) if (!wanted.has(id)) nodes.delete(id);
  const last = messages.at(-1);
  const grew = log.lastElementChild?.dataset.id !== last?.id;
  log.replaceChildren(...items);
  if (nearBottom || (grew && last?.sender === me)) log.scrollTop = log.scrollHeight;
  return items.length;
}

/** Grow a chat textarea with its text, up to 140 px. */
export function autoGrow(textarea) {
  textarea.style.height = '';
  textarea.style.height = `${Math.min(textarea.scrollHeight, 140)}px`;
}

/** A chat box: Enter (without Shift) or the form's submit posts the trimmed text through
 * `post`, which returns true if it went out (the box is cleared), false if it could not (a
 * toast says so) or null if there is nowhere to post it; the box grows with its text. */
export function bindChatBox(form, input, post) {
  const submit = () => {
    const text = input.value.trim();
    if (!text) return;
    const sent = post(text);
    if (sent === null) return;
    if (sent) {
      input.value = '';
      input.style.height = '';
    } else {
      toast('Not connected to the server');
    }
  };
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    submit();
  });
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      submit();
    }
  });
  input.addEventListener('input', (ev) => autoGrow(ev.target));
}

/**
 * Fill the camera and microphone <select>s from `devices` (enumerateDevices), selecting the
 * device `media` uses, else the remembered one. `video`: whether the camera menu applies.
 */
export function renderDeviceMenus(devices, media, { cameraSelect, micSelect, video }) {
  for (const [kind, select] of [['videoinput', cameraSelect], ['audioinput', micSelect]]) {
    const options = deviceOptions(devices, kind);
    const chosen = selectedDevice(options, media?.deviceInUse(kind) ?? '', loadDeviceChoice(localStorage, kind));
    const same = select.options.length === options.length
      && options.every((o, i) => select.options[i].value === o.id && select.options[i].text === o.label);
    if (!same) {
      select.replaceChildren(...options.map((o) => {
        const opt = el('option', '', o.label);
        opt.value = o.id;
        return opt;
      }));
    }
    if (document.activeElement !== select) select.value = chosen;
    select.disabled = options.length === 0 || (kind === 'videoinput' && !video);
  }
  cameraSelect.hidden = !video;
  cameraSelect.previousElementSibling.hidden = !video;
}
