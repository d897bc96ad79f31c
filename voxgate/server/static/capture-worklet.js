// Runs on the audio rendering thread: float samples in, 16-bit little-endian PCM chunks out.
// One chunk per `chunkMs` of audio (default 100 ms), each with its level so the page can draw a meter
// without touching the samples again. A "flush" message sends what is buffered (the end of the recording).

class PcmCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const chunkMs = (options.processorOptions && options.processorOptions.chunkMs) || 100;
    this.size = Math.max(128, Math.round((sampleRate * chunkMs) / 1000));
    this.buffer = new Int16Array(this.size);
    this.filled = 0;
    this.sumSquares = 0;
    this.peak = 0;
    this.frames = 0; // samples emitted so far: the stream clock, in samples
    this.port.onmessage = (event) => {
      if (event.data === "flush") {
        this.emit(true);
      }
    };
  }

  emit(last) {
    const pcm = this.buffer.slice(0, this.filled);
    const rms = this.filled ? Math.sqrt(this.sumSquares / this.filled) : 0;
    this.frames += this.filled;
    this.port.postMessage(
      { pcm: pcm.buffer, rms, peak: this.peak, endFrame: this.frames, last },
      [pcm.buffer],
    );
    this.filled = 0;
    this.sumSquares = 0;
    this.peak = 0;
  }

  process(inputs) {
    const input = inputs[0];
    if (!input || input.length === 0) {
      return true;
    }
    const channels = input.length;
    const length = input[0].length;
    for (let i = 0; i < length; i++) {
      let value = 0;
      for (let c = 0; c < channels; c++) {
        value += input[c][i];
      }
      value /= channels;
      const clipped = value > 1 ? 1 : value < -1 ? -1 : value;
      this.buffer[this.filled++] = clipped < 0 ? clipped * 0x8000 : clipped * 0x7fff;
      this.sumSquares += clipped * clipped;
      const magnitude = Math.abs(clipped);
      if (magnitude > this.peak) {
        this.peak = magnitude;
      }
      if (this.filled === this.size) {
        this.emit(false);
      }
    }
    return true;
  }
}

registerProcessor("pcm-capture", PcmCapture);
