// Microphone capture: getUserMedia → AudioWorklet → 16 kHz LINEAR16 chunks.
//
// The AudioContext runs at 16 kHz, so the browser's own resampler (with its anti-aliasing filter) converts the
// device rate. A browser that cannot connect a microphone to a context of another rate gets a context at the
// device's rate instead, and the stream declares that rate (the server resamples with soxr).

export const TARGET_RATE = 16000;

export class CaptureError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

function describeMediaError(error) {
  switch (error && error.name) {
    case "NotAllowedError":
    case "SecurityError":
      return new CaptureError(
        "microphone_denied",
        "The browser refused the microphone. Allow it for this page (and use https:// or localhost).",
      );
    case "NotFoundError":
    case "OverconstrainedError":
      return new CaptureError("microphone_missing", "No microphone was found.");
    case "NotReadableError":
      return new CaptureError("microphone_busy", "The microphone is in use by another program.");
    default:
      return new CaptureError("microphone_error", `Could not open the microphone: ${error && error.message}`);
  }
}

/**
 * Start capturing. Call it straight from a click handler: the AudioContext is created before the first await,
 * which is what browsers' autoplay rules ask for.
 *
 * @param {{onChunk: (chunk: {pcm: ArrayBuffer, rms: number, peak: number, endSeconds: number, last: boolean}) => void}} handlers
 * @returns {Promise<{sampleRate: number, stop: () => Promise<void>}>}
 */
export async function startCapture({ onChunk, chunkMs = 100 }) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new CaptureError(
      "microphone_unavailable",
      "This page cannot use the microphone here: browsers allow it only on https:// or http://localhost.",
    );
  }
  let context = new AudioContext({ sampleRate: TARGET_RATE, latencyHint: "interactive" });
  let media;
  try {
    media = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: false, autoGainControl: true },
    });
  } catch (error) {
    await context.close();
    throw describeMediaError(error);
  }
  let source;
  try {
    source = context.createMediaStreamSource(media);
  } catch {
    // Firefox: "connecting AudioNodes from AudioContexts with different sample-rate is currently not supported".
    await context.close();
    context = new AudioContext({ latencyHint: "interactive" });
    source = context.createMediaStreamSource(media);
  }
  await context.audioWorklet.addModule(new URL("./capture-worklet.js", import.meta.url));
  const node = new AudioWorkletNode(context, "pcm-capture", {
    numberOfInputs: 1,
    numberOfOutputs: 0,
    processorOptions: { chunkMs },
  });
  const rate = context.sampleRate;
  let flushed = null;
  node.port.onmessage = (event) => {
    const { pcm, rms, peak, endFrame, last } = event.data;
    onChunk({ pcm, rms, peak, endSeconds: endFrame / rate, last });
    if (last && flushed) {
      flushed();
    }
  };
  source.connect(node);
  if (context.state === "suspended") {
    await context.resume();
  }

  let stopped = false;
  return {
    sampleRate: rate,
    /** Stop the microphone after sending what the worklet still holds. */
    async stop() {
      if (stopped) {
        return;
      }
      stopped = true;
      const done = new Promise((resolve) => {
        flushed = resolve;
        setTimeout(resolve, 500); // a closed context never answers: do not wait forever
      });
      node.port.postMessage("flush");
      await done;
      source.disconnect();
      media.getTracks().forEach((track) => track.stop());
      await context.close();
    },
  };
}
