/**
 * pg-relay framing (protocol.md §2): one binary WebSocket message per application message.
 *
 * Owns: encoding and decoding of the three message kinds — tag 0x00 control JSON, tag 0x01 audio
 * and tag 0x02 video (tag, uint32 big-endian header length, UTF-8 JSON header, raw payload).
 * Does not own: what the messages mean (see client.js / state.js) or any I/O.
 */

export const TAG_CONTROL = 0x00;
export const TAG_AUDIO = 0x01;
export const TAG_VIDEO = 0x02;

const KIND_TO_TAG = { audio: TAG_AUDIO, video: TAG_VIDEO };
const TAG_TO_KIND = { [TAG_AUDIO]: 'audio', [TAG_VIDEO]: 'video' };

const encoder = new TextEncoder();
// fatal: a header or control body that is not valid UTF-8 is a malformed message, not mojibake.
const decoder = new TextDecoder('utf-8', { fatal: true });

export class ProtocolError extends Error {
  constructor(message) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/** Encode a control object as tag 0x00 + compact UTF-8 JSON (no length prefix, §2). */
export function encodeControl(obj) {
  const body = encoder.encode(JSON.stringify(obj));
  const out = new Uint8Array(1 + body.length);
  out[0] = TAG_CONTROL;
  out.set(body, 1);
  return out.buffer;
}

/**
 * Encode a media frame: tag, header length (uint32 BE), JSON header, payload (§2, §3.1).
 * `payload` may be a Uint8Array, any ArrayBuffer view, or an ArrayBuffer.
 */
export function encodeMedia(kind, header, payload) {
  const tag = KIND_TO_TAG[kind];
  if (tag === undefined) throw new ProtocolError(`unknown media kind: ${kind}`);
  const head = encoder.encode(JSON.stringify(header));
  const body = asBytes(payload ?? new Uint8Array(0));
  const out = new Uint8Array(5 + head.length + body.length);
  out[0] = tag;
  new DataView(out.buffer).setUint32(1, head.length, false);
  out.set(head, 5);
  out.set(body, 5 + head.length);
  return out.buffer;
}

/**
 * Decode one binary message. Returns {kind: "control", msg} or {kind: "audio"|"video", header,
 * payload}. Throws ProtocolError on anything the server would call "Malformed message" (§2).
 * The payload is a view into the input buffer (no copy); copy it if you keep it and reuse input.
 */
export function decodeMessage(data) {
  const bytes = asBytes(data);
  if (bytes.length === 0) throw new ProtocolError('empty message');
  const tag = bytes[0];
  if (tag === TAG_CONTROL) {
    const msg = parseJson(bytes.subarray(1), 'control body');
    if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) {
      throw new ProtocolError('control body is not a JSON object');
    }
    return { kind: 'control', msg };
  }
  const kind = TAG_TO_KIND[tag];
  if (kind === undefined) throw new ProtocolError(`unknown tag ${tag}`);
  if (bytes.length < 5) throw new ProtocolError('media message shorter than 5 bytes');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(1, false);
  if (5 + headerLength > bytes.length) throw new ProtocolError('header length past the end');
  const header = parseJson(bytes.subarray(5, 5 + headerLength), 'media header');
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    throw new ProtocolError('media header is not a JSON object');
  }
  return { kind, header, payload: bytes.subarray(5 + headerLength) };
}

function parseJson(bytes, what) {
  try {
    return JSON.parse(decoder.decode(bytes));
  } catch (err) {
    throw new ProtocolError(`${what}: ${err.message}`);
  }
}

function asBytes(data) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new ProtocolError('expected an ArrayBuffer or a typed array');
}
