// The controls a call and a room share, over whichever media runtime runs (CallMedia or
// RoomMedia: both have sharing, startScreenShare/stopScreenShare, setCamera/setMicrophone and
// deviceInUse): screen sharing on and off, the device lists, choosing (and remembering) a camera
// or microphone, and what the device menus show.
//
// Owns: those steps and their error messages. Does not own: the runtime, the menus' markup, or
// the remembered choice's format (the shared devices.js).

import { deviceOptions, loadDeviceChoice, saveDeviceChoice, selectedDevice } from '$vanilla/devices.js';

/** Where device choices are remembered (null where the page has no localStorage). */
export function storage() {
  return globalThis.localStorage ?? null;
}

/** The remembered camera and microphone, for a runtime about to start. */
export function rememberedDevices() {
  return {
    cameraId: loadDeviceChoice(storage(), 'videoinput'),
    microphoneId: loadDeviceChoice(storage(), 'audioinput')
  };
}

export async function toggleScreenShare(media, onError) {
  if (!media) return;
  if (media.sharing) {
    media.stopScreenShare();
    return;
  }
  try {
    await media.startScreenShare();
  } catch (err) {
    onError(`Screen sharing failed: ${err?.message ?? err}`);
  }
}

/** The browser's devices (labels appear once it has given access); none if it refuses. */
export async function listDevices() {
  try {
    return await navigator.mediaDevices.enumerateDevices();
  } catch {
    return [];
  }
}

/** Use (and remember) another camera ('videoinput') or microphone ('audioinput'). */
export async function useDevice(media, kind, deviceId, onError) {
  saveDeviceChoice(storage(), kind, deviceId);
  if (!media) return;
  try {
    if (kind === 'videoinput') await media.setCamera(deviceId);
    else await media.setMicrophone(deviceId);
  } catch (err) {
    onError(`Cannot use that ${kind === 'videoinput' ? 'camera' : 'microphone'}: ${err?.message ?? err}`);
  }
}

/** What the device menus show: the options and the one selected of each kind. */
export function deviceMenus(devices, media) {
  const cameras = deviceOptions(devices, 'videoinput');
  const microphones = deviceOptions(devices, 'audioinput');
  return {
    cameras,
    microphones,
    cameraId: selectedDevice(cameras, media?.deviceInUse('videoinput') ?? '', loadDeviceChoice(storage(), 'videoinput')),
    microphoneId: selectedDevice(microphones, media?.deviceInUse('audioinput') ?? '', loadDeviceChoice(storage(), 'audioinput'))
  };
}
