/**
 * Camera and microphone choice: the lists the device menu shows and the remembered choice.
 *
 * Owns: turning navigator.mediaDevices.enumerateDevices() output into menu entries (labels, or
 * "Camera 2" where the browser hides them until permission is given), the storage keys of the
 * chosen devices (`pgcall/camera`, `pgcall/microphone`) and the getUserMedia constraint that
 * prefers the remembered device without failing when it is gone. Pure apart from the storage
 * object it is handed. Does not own capture or switching (media.js) nor the markup.
 */

export const DEVICE_KINDS = Object.freeze({
  videoinput: { key: 'pgcall/camera', noun: 'Camera' },
  audioinput: { key: 'pgcall/microphone', noun: 'Microphone' },
});

/** Menu entries [{id, label}] of one kind ('videoinput' or 'audioinput'), in the browser's order. */
export function deviceOptions(devices, kind) {
  const noun = DEVICE_KINDS[kind]?.noun ?? 'Device';
  const out = [];
  const seen = new Set();
  for (const d of devices ?? []) {
    if (!d || d.kind !== kind || typeof d.deviceId !== 'string' || seen.has(d.deviceId)) continue;
    // Before permission is granted the browser lists one entry with an empty id: not selectable.
    if (!d.deviceId) continue;
    seen.add(d.deviceId);
    out.push({ id: d.deviceId, label: (d.label || '').trim() || `${noun} ${out.length + 1}` });
  }
  return out;
}

/** The remembered device id of a kind, or '' (let the browser choose). */
export function loadDeviceChoice(storage, kind) {
  try {
    return (storage && storage.getItem(DEVICE_KINDS[kind].key)) || '';
  } catch {
    return '';
  }
}

/** Remember (or with '' forget) the device of a kind. */
export function saveDeviceChoice(storage, kind, deviceId) {
  try {
    if (!storage) return;
    if (deviceId) storage.setItem(DEVICE_KINDS[kind].key, String(deviceId));
    else storage.removeItem(DEVICE_KINDS[kind].key);
  } catch {
    // Not remembering the choice only costs picking it again next time.
  }
}

/**
 * `constraints` plus the device: `exact` when the user picks one now (fail rather than silently
 * open another), `ideal` for a remembered one (it may have been unplugged since).
 */
export function withDevice(constraints, deviceId, { exact = false } = {}) {
  if (!deviceId) return { ...constraints };
  return { ...constraints, deviceId: exact ? { exact: deviceId } : { ideal: deviceId } };
}

/** Which entry a menu should show as selected: the device in use, else the remembered one. */
export function selectedDevice(options, inUseId, rememberedId) {
  for (const id of [inUseId, rememberedId]) {
    if (id && options.some((o) => o.id === id)) return id;
  }
  return options[0]?.id ?? '';
}
