// The console's client for voxgate's own public API: the same REST and WebSocket protocol any client uses.

export const STREAM_PATH = "/stt/v1/transcribe:streamBidirectional";

export class ApiError extends Error {
  /** @param {string} code @param {string} message @param {number|null} status */
  constructor(code, message, status = null) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

const KEY_STORAGE = "voxgate.apiKey";

/** Where the API key lives: this tab only, or this browser when the user asks to be remembered. */
export const keyStore = {
  get() {
    return sessionStorage.getItem(KEY_STORAGE) || localStorage.getItem(KEY_STORAGE) || "";
  },
  set(key, remember) {
    sessionStorage.removeItem(KEY_STORAGE);
    localStorage.removeItem(KEY_STORAGE);
    if (key) {
      (remember ? localStorage : sessionStorage).setItem(KEY_STORAGE, key);
    }
  },
  remembered() {
    return Boolean(localStorage.getItem(KEY_STORAGE));
  },
};

async function errorOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: a proxy's page, say
  }
  const error = body && body.error;
  if (error && error.code) {
    return new ApiError(error.code, error.message || "", response.status);
  }
  return new ApiError(`http_${response.status}`, response.statusText || "request failed", response.status);
}

async function request(path, init = {}) {
  const key = keyStore.get();
  const headers = new Headers(init.headers || {});
  if (key) {
    headers.set("Authorization", `Basic ${key}`);
  }
  let response;
  try {
    response = await fetch(path, { ...init, headers });
  } catch (error) {
    if (error.name === "AbortError") {
      throw error;
    }
    throw new ApiError("network_error", `The server did not answer (${error.message}).`);
  }
  if (!response.ok) {
    throw await errorOf(response);
  }
  return response.json();
}

export function health() {
  return request("/healthz");
}

export async function listModels() {
  const body = await request("/stt/v1/models");
  return body.models;
}

/**
 * Transcribe a complete file through POST /stt/v1/transcribe (multipart).
 * @param {File} file @param {object} transcribeConfig @param {AbortSignal} [signal]
 */
export function transcribeFile(file, transcribeConfig, signal) {
  const form = new FormData();
  form.append("file", file, file.name);
  form.append("transcribeConfig", JSON.stringify(transcribeConfig));
  return request("/stt/v1/transcribe", { method: "POST", body: form, signal });
}

function base64Of(buffer) {
  const bytes = new Uint8Array(buffer);
  let binary = "";
  const step = 0x8000;
  for (let i = 0; i < bytes.length; i += step) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + step));
  }
  return btoa(binary);
}

/**
 * One streaming session over the WebSocket protocol. Events arrive through `handlers`:
 * onOpen(), onTranscription(t), onVoiceProfile(p), onSpeechStarted(e), onSpeechEnded(e) (the server's speechStopped),
 * onUsage(u), onEndOfTurn(e), onError(ApiError), onClose({code, reason, clean}).
 */
export class LiveStream {
  constructor(transcribeConfig, handlers) {
    this.handlers = handlers;
    this.pending = [];
    this.closing = false;
    const url = new URL(STREAM_PATH, location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const key = keyStore.get();
    // Browsers cannot set headers on the upgrade: the key travels as the subprotocol pair ("token", key).
    this.socket = key ? new WebSocket(url, ["token", key]) : new WebSocket(url);
    this.socket.onopen = () => {
      this.socket.send(JSON.stringify({ transcribeConfig }));
      for (const message of this.pending) {
        this.socket.send(message);
      }
      this.pending = [];
      handlers.onOpen && handlers.onOpen();
    };
    this.socket.onmessage = (event) => this.dispatch(event.data);
    this.socket.onclose = (event) => {
      handlers.onClose && handlers.onClose({ code: event.code, reason: event.reason, clean: event.code === 1000 });
    };
  }

  dispatch(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      this.handlers.onError(new ApiError("bad_message", "The server sent a message that is not JSON."));
      return;
    }
    const h = this.handlers;
    if (message.result && message.result.transcription) {
      h.onTranscription && h.onTranscription(message.result.transcription);
    } else if (message.result && message.result.voiceProfile) {
      h.onVoiceProfile && h.onVoiceProfile(message.result.voiceProfile);
    } else if (message.result && message.result.speechStarted) {
      h.onSpeechStarted && h.onSpeechStarted(message.result.speechStarted);
    } else if (message.result && message.result.speechStopped) {
      h.onSpeechEnded && h.onSpeechEnded(message.result.speechStopped);
    } else if (message.result && message.result.usage) {
      h.onUsage && h.onUsage(message.result.usage);
    } else if (message.endOfTurn) {
      h.onEndOfTurn && h.onEndOfTurn(message.endOfTurn);
    } else if (message.error) {
      h.onError(new ApiError(message.error.code, message.error.message));
    }
  }

  send(message) {
    const text = JSON.stringify(message);
    if (this.socket.readyState === WebSocket.CONNECTING) {
      this.pending.push(text);
    } else if (this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(text);
    }
  }

  /** @param {ArrayBuffer} pcm LINEAR16 little-endian */
  sendAudio(pcm) {
    if (!this.closing && pcm.byteLength) {
      this.send({ audioChunk: { content: base64Of(pcm) } });
    }
  }

  endTurn() {
    if (!this.closing) {
      this.send({ endTurn: {} });
    }
  }

  /** Ask for the last finals; the server closes the socket when they are sent. */
  close() {
    if (!this.closing) {
      this.send({ closeStream: {} });
      this.closing = true;
    }
  }

  /** Drop the connection without waiting (leaving the page, say). */
  abort() {
    this.closing = true;
    this.socket.close();
  }

  get open() {
    return this.socket.readyState === WebSocket.OPEN || this.socket.readyState === WebSocket.CONNECTING;
  }
}
