// Device menus and the remembered choice (lib/devices.js).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { DEVICE_KINDS, deviceOptions, loadDeviceChoice, saveDeviceChoice, selectedDevice, withDevice } from '../lib/devices.js';

const DEVICES = [
  { kind: 'audioinput', deviceId: 'default', label: 'Default - Fake Audio Input 1' },
  { kind: 'audioinput', deviceId: 'mic-1', label: 'Fake Audio Input 1' },
  { kind: 'videoinput', deviceId: 'cam-0', label: 'fake_device_0' },
  { kind: 'videoinput', deviceId: 'cam-1', label: '' },
  { kind: 'videoinput', deviceId: 'cam-1', label: 'duplicate' },
  { kind: 'audiooutput', deviceId: 'out-0', label: 'Speakers' },
];

class MemoryStorage {
  constructor() { this.map = new Map(); }
  getItem(k) { return this.map.has(k) ? this.map.get(k) : null; }
  setItem(k, v) { this.map.set(k, String(v)); }
  removeItem(k) { this.map.delete(k); }
}

test('options per kind, in order, with a made-up label where the browser gives none', () => {
  assert.deepEqual(deviceOptions(DEVICES, 'videoinput'), [
    { id: 'cam-0', label: 'fake_device_0' },
    { id: 'cam-1', label: 'Camera 2' },
  ]);
  assert.deepEqual(deviceOptions(DEVICES, 'audioinput').map((o) => o.id), ['default', 'mic-1']);
  // Before permission: one entry without an id, which cannot be selected.
  assert.deepEqual(deviceOptions([{ kind: 'videoinput', deviceId: '', label: '' }], 'videoinput'), []);
  assert.deepEqual(deviceOptions(undefined, 'audioinput'), []);
});

test('the choice is remembered per kind and can be forgotten', () => {
  const storage = new MemoryStorage();
  assert.equal(loadDeviceChoice(storage, 'videoinput'), '');
  saveDeviceChoice(storage, 'videoinput', 'cam-1');
  saveDeviceChoice(storage, 'audioinput', 'mic-1');
  assert.equal(storage.getItem(DEVICE_KINDS.videoinput.key), 'cam-1');
  assert.equal(loadDeviceChoice(storage, 'videoinput'), 'cam-1');
  assert.equal(loadDeviceChoice(storage, 'audioinput'), 'mic-1');
  saveDeviceChoice(storage, 'videoinput', '');
  assert.equal(loadDeviceChoice(storage, 'videoinput'), '');
  const broken = { getItem() { throw new Error('denied'); }, setItem() { throw new Error('denied'); } };
  assert.equal(loadDeviceChoice(broken, 'audioinput'), '');
  saveDeviceChoice(broken, 'audioinput', 'x'); // does not throw
  assert.equal(loadDeviceChoice(null, 'audioinput'), '');
});

test('constraints: exact for a choice made now, ideal for a remembered one', () => {
  const base = { width: { ideal: 640 } };
  assert.deepEqual(withDevice(base, ''), base);
  assert.deepEqual(withDevice(base, 'cam-1'), { width: { ideal: 640 }, deviceId: { ideal: 'cam-1' } });
  assert.deepEqual(withDevice(base, 'cam-1', { exact: true }).deviceId, { exact: 'cam-1' });
  assert.equal(base.deviceId, undefined, 'the base is not changed');
});

test('the menu shows the device in use, else the remembered one, else the first', () => {
  const options = deviceOptions(DEVICES, 'videoinput');
  assert.equal(selectedDevice(options, 'cam-1', 'cam-0'), 'cam-1');
  assert.equal(selectedDevice(options, '', 'cam-1'), 'cam-1');
  assert.equal(selectedDevice(options, 'gone', 'gone-too'), 'cam-0');
  assert.equal(selectedDevice([], 'x', 'y'), '');
});
