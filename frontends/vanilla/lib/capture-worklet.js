/**
 * AudioWorkletProcessor `pcm-capture` (protocol.md §8.3): forwards the microphone's channel 0 to
 * the main thread. Plain JavaScript on purpose — the original shipped this file as TypeScript,
 * which a production build passed through untranspiled, so capture broke (§8.9).
 *
 * Owns: copying render quanta (128 samples) into batches of `processorOptions.batchSize` samples
 * (default 512, ~11 ms at 48 kHz) and transferring each batch as a Float32Array; fewer, larger
 * messages cost the main thread less than one per quantum. Post the string "stop" to end it.
 * Does not own: resampling or framing (media.js on the main thread does that).
 */

class PcmCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const requested = options && options.processorOptions && options.processorOptions.batchSize;
    this.batchSize = Number.isInteger(requested) && requested > 0 ? requested : 512;
    this.batch = new Float32Array(this.batchSize);
    this.fill = 0;
    this.running = true;
    this.port.onmessage = (event) => {
      if (event.data === 'stop') this.running = false;
    };
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (channel && this.running) {
      let offset = 0;
      while (offset < channel.length) {
        const n = Math.min(channel.length - offset, this.batchSize - this.fill);
        this.batch.set(channel.subarray(offset, offset + n), this.fill);
        this.fill += n;
        offset += n;
        if (this.fill === this.batchSize) {
          this.port.postMessage(this.batch, [this.batch.buffer]);
          this.batch = new Float32Array(this.batchSize);
          this.fill = 0;
        }
      }
    }
    // Returning false lets the audio thread drop the node once "stop" was received.
    return this.running;
  }
}

registerProcessor('pcm-capture', PcmCapture);
