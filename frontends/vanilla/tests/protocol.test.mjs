// Framing per protocol.md §2 and the worked examples of §4.8.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { decodeMessage, encodeControl, encodeMedia, ProtocolError } from '../lib/protocol.js';

const utf8 = (s) => [...new TextEncoder().encode(s)];
const bytes = (buf) => [...new Uint8Array(buf)];

test('control: tag 0 then the JSON text, no length prefix (§4.8 first example)', () => {
  const out = bytes(encodeControl({ type: 'ack', req_type: 'send_message' }));
  assert.deepEqual(
    out.slice(0, 14),
    [0x00, 0x7b, 0x22, 0x74, 0x79, 0x70, 0x65, 0x22, 0x3a, 0x22, 0x61, 0x63, 0x6b, 0x22],
  );
  assert.deepEqual(out, [0x00, ...utf8('{"type":"ack","req_type":"send_message"}')]);
});

test('media: tag, uint32 big-endian header length, header JSON, payload', () => {
  const header = {
    session_id: 'a0f375ab-fd13-48b1-8ba0-a68734dddfb8',
    from: 'ab'.repeat(32),
    seq: 17,
    sample_rate: 16000,
    channels: 1,
    rms: 0.012345679,
  };
  const payload = new Uint8Array([1, 2, 3, 250]);
  const out = bytes(encodeMedia('audio', header, payload));
  // §4.8: with a 64-hex `from`, this header is 187 (0xBB) bytes long.
  assert.deepEqual(out.slice(0, 5), [0x01, 0x00, 0x00, 0x00, 0xbb]);
  assert.deepEqual(out, [0x01, 0, 0, 0, 0xbb, ...utf8(JSON.stringify(header)), 1, 2, 3, 250]);
});

test('media: header length is big-endian bytes, not characters', () => {
  const header = { note: 'é'.repeat(150) }; // 300 bytes of é plus the JSON around it
  const json = utf8(JSON.stringify(header));
  assert.equal(json.length, 311);
  const out = bytes(encodeMedia('video', header, new Uint8Array(0)));
  assert.deepEqual(out.slice(0, 5), [0x02, 0x00, 0x00, 0x01, 0x37]); // 0x0137 = 311
  assert.equal(out.length, 5 + 311);
});

test('round trip of control, audio and video messages', () => {
  const msg = { type: 'send_message', text: 'grüße 👋' };
  assert.deepEqual(decodeMessage(encodeControl(msg)), { kind: 'control', msg });
  for (const kind of ['audio', 'video']) {
    const header = { session_id: 's', to: 'peer', seq: 3 };
    const payload = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) & 0xff);
    const got = decodeMessage(encodeMedia(kind, header, payload));
    assert.equal(got.kind, kind);
    assert.deepEqual(got.header, header);
    assert.deepEqual([...got.payload], [...payload]);
  }
});

test('an empty payload and views with an offset decode correctly', () => {
  const got = decodeMessage(encodeMedia('audio', { seq: 1 }, new Uint8Array(0)));
  assert.equal(got.payload.length, 0);
  const inner = new Uint8Array(encodeMedia('video', { seq: 2 }, new Uint8Array([9, 8])));
  const padded = new Uint8Array(inner.length + 6);
  padded.set(inner, 3);
  const view = padded.subarray(3, 3 + inner.length);
  const fromView = decodeMessage(view);
  assert.deepEqual(fromView.header, { seq: 2 });
  assert.deepEqual([...fromView.payload], [9, 8]);
});

test('hand-built input decodes', () => {
  const head = utf8('{"seq":5}');
  const raw = new Uint8Array([0x02, 0, 0, 0, head.length, ...head, 0xff, 0xd8]);
  const got = decodeMessage(raw.buffer);
  assert.equal(got.kind, 'video');
  assert.deepEqual(got.header, { seq: 5 });
  assert.deepEqual([...got.payload], [0xff, 0xd8]);
});

test('malformed messages throw ProtocolError', () => {
  const head = utf8('{"a":1}');
  const cases = {
    empty: [],
    'unknown tag': [0x03, ...utf8('{}')],
    'bad control JSON': [0x00, ...utf8('{"type":')],
    'control not an object': [0x00, ...utf8('null')],
    'control is an array': [0x00, ...utf8('[1]')],
    'media shorter than 5 bytes': [0x01, 0, 0, 0],
    'header past the end': [0x01, 0, 0, 0, head.length + 1, ...head],
    'bad header JSON': [0x01, 0, 0, 0, 2, ...utf8('{x')],
    'header not an object': [0x02, 0, 0, 0, 1, ...utf8('7')],
    'invalid UTF-8': [0x00, 0xc3, 0x28],
  };
  for (const [name, input] of Object.entries(cases)) {
    assert.throws(() => decodeMessage(new Uint8Array(input)), ProtocolError, name);
  }
  assert.throws(() => decodeMessage('text'), ProtocolError);
  assert.throws(() => encodeMedia('screen', {}, new Uint8Array(0)), ProtocolError);
});
