// Small display helpers shared by the components: names, initials, avatar colours, times.

/** First 8 hex characters of an identity: enough to tell people apart on screen. */
export function shortId(identity) {
  return identity ? String(identity).slice(0, 8) : '';
}

/** The name to show for a user row (or a bare identity when the row is unknown). */
export function displayName(user, identity) {
  const nick = user && typeof user.nickname === 'string' ? user.nickname.trim() : '';
  return nick || shortId(identity ?? user?.identity);
}

/** One or two letters for an avatar. */
export function initials(name) {
  const words = String(name || '?').trim().split(/[\s._-]+/).filter(Boolean);
  if (words.length >= 2) return (words[0][0] + words[1][0]).toUpperCase();
  return (words[0] || '?').slice(0, 2).toUpperCase();
}

/** A stable hue per identity so each person keeps one avatar colour. */
export function hueOf(identity) {
  let h = 0;
  for (const ch of String(identity || '')) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return h % 360;
}

/** "14:05" for today's messages, "25 Nov 14:05" for older ones. */
export function chatTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  const now = new Date();
  if (d.toDateString() === now.toDateString()) return time;
  return `${d.toLocaleDateString([], { day: 'numeric', month: 'short' })} ${time}`;
}

/** "Video" or "Voice": call_type is compared case-insensitively (protocol.md section 6). */
export function callKind(call) {
  return String(call?.call_type ?? '').toLowerCase() === 'video' ? 'Video' : 'Voice';
}

/** "m:ss" since an ISO timestamp, for the call timer. */
export function elapsed(fromIso, nowMs) {
  const start = Date.parse(fromIso);
  if (Number.isNaN(start)) return '0:00';
  const s = Math.max(0, Math.floor((nowMs - start) / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}
