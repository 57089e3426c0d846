// charrnn in the browser: load an export made by `charrnn export RUN --web DIR` and generate with no
// server. The model runs in a Web Worker (or, with {worker: false} or where there are no workers, in
// the caller's thread); every method answers a promise, except `stream`, an async iterator.
//
//   import { load } from "./charrnn.js";
//   const model = await load("./");
//   const text = await model.generate({ prime: "The ", length: 200, temperature: 0.8, seed: 1 });
//   for await (const char of model.stream({ prime: "Once", length: 100 })) output.append(char);

import { Session } from "./session.js";
import { checkManifest } from "./format.js";

// The export's manifest and weights: from a folder's URL, or given as {manifest, weights}.
async function readExport(source) {
  if (source && typeof source === "object" && "manifest" in source) return source;
  const base = new URL(source ?? "./", globalThis.document?.baseURI ?? globalThis.location?.href);
  const get = async (name) => {
    const response = await fetch(new URL(name, base)).catch((error) => { throw new Error(`could not fetch ${name}: ${error.message}`); });
    if (!response.ok) throw new Error(`could not fetch ${name}: HTTP ${response.status}`);
    return response;
  };
  let manifest;
  try {
    manifest = await (await get("manifest.json")).json();
  } catch (error) {
    throw new Error(error.message.startsWith("could not") ? error.message : `manifest.json is not JSON: ${error.message}`);
  }
  checkManifest(manifest);
  const weights = await (await get(manifest.weights.file)).arrayBuffer();
  return { manifest, weights };
}

// Runs the calls in the caller's thread.
class LocalBackend {
  async start({ manifest, weights, kernel }) {
    this.session = new Session(manifest, weights, { kernel });
    return { kernel: this.session.engine.kernel, golden: this.session.goldenError, state: this.session.engine.getState() };
  }

  async call(method, args) {
    const s = this.session;
    const result = { reset: () => s.reset(args), feed: () => s.feed(args), step: () => s.step(args),
      probabilities: () => s.probabilities(), state: () => null, setState: () => s.engine.setState(args), logProbs: () => s.logProbs(args) }[method]();
    return { result, state: s.engine.getState() };
  }

  async *generate(request) {
    this.session.begin(request);
    while (!this.session.finished) {
      const text = this.session.more(64);
      if (text) yield text;
      await new Promise((resolve) => setTimeout(resolve, 0)); // let the page breathe between pieces
    }
    return this.session.engine.getState();
  }

  close() {}
}

// Runs the calls in a Web Worker, matched to their answers by number.
class WorkerBackend {
  // A URL given is a classic script holding the worker and its modules (the single-file export's).
  constructor(script) {
    this.worker = script === true ? new Worker(new URL("./worker.js", import.meta.url), { type: "module" }) : new Worker(script);
    this.pending = new Map();
    this.nextId = 1;
    this.worker.onmessage = ({ data }) => this.pending.get(data.id)?.(data);
    this.worker.onerror = (event) => {
      const message = `the model's worker failed: ${event.message || "could not start"}`;
      for (const handler of this.pending.values()) handler({ error: message });
    };
  }

  #send(method, args, onMessage, transfer = []) {
    const id = this.nextId++;
    this.pending.set(id, onMessage);
    this.worker.postMessage({ id, method, args }, transfer);
    return id;
  }

  async start(files) {
    const { result, state } = await this.call("load", files, [files.weights]);
    return { ...result, state };
  }

  call(method, args, transfer) {
    return new Promise((resolve, reject) => {
      const id = this.#send(method, args, (data) => {
        this.pending.delete(id);
        data.error === undefined ? resolve(data) : reject(new Error(data.error));
      }, transfer);
    });
  }

  async *generate(request) {
    const queue = [];
    let wake = null;
    const id = this.#send("generate", request, (data) => {
      queue.push(data);
      wake?.();
    });
    let finished = false;
    try {
      for (;;) {
        while (!queue.length) await new Promise((resolve) => (wake = resolve));
        const data = queue.shift();
        if (data.error !== undefined) throw new Error(data.error);
        if (data.done) {
          finished = true;
          return data.state;
        }
        this.worker.postMessage({ method: "pull", args: id }); // the worker makes the next piece meanwhile
        yield data.chunk;
      }
    } finally {
      if (!finished) this.worker.postMessage({ method: "cancel", args: id }); // the reader stopped early
      this.pending.delete(id);
    }
  }

  close() {
    this.worker.terminate();
  }
}

export class Model {
  constructor(backend, manifest, started) {
    this.backend = backend;
    this.manifest = manifest;
    this.kernel = started.kernel; // "simd" (WebAssembly) or "js"
    this.goldenError = started.golden; // how far this engine was from PyTorch's golden vectors
    this.vocab = manifest.vocab.code_points.map((cp) => String.fromCodePoint(cp));
    this.symbol = manifest.vocab.symbol; // "char", or "byte" for a byte-level model
    this.card = manifest.card;
    this.busy = Promise.resolve();
    this.#state = started.state;
  }

  #state;

  async #call(method, args) {
    const { result, state } = await this.backend.call(method, args);
    this.#state = state;
    return result;
  }

  // The new characters that follow the prime (not the prime itself), cut before the first stop string.
  async generate(options = {}) {
    let text = "";
    for await (const piece of this.#pieces(options)) text += piece;
    return text;
  }

  // The same, character by character, as they are made; leaving the loop early stops the generation.
  async *stream(options = {}) {
    for await (const piece of this.#pieces(options)) yield* piece;
  }

  // The pieces as the engine sends them (several characters each); a reader that leaves early cancels
  // the generation, and the state is then read back from where it stopped.
  async *#pieces(options) {
    const pieces = this.backend.generate(options);
    let finished = false;
    try {
      for (;;) {
        const { value, done } = await pieces.next();
        if (done) {
          finished = true;
          this.#state = value;
          return;
        }
        yield value;
      }
    } finally {
      if (!finished) {
        await pieces.return();
        await this.#call("state");
      }
    }
  }

  // Back to the start of a text (the zero state after the lead-in), then `prime` if given.
  reset(prime = "") {
    return this.#call("reset", prime);
  }

  feed(text) {
    return this.#call("feed", text);
  }

  // Draws one character under {temperature, topK, topP, greedy, seed} and feeds it; resolves to it.
  step(options = {}) {
    return this.#call("step", options);
  }

  // The whole next-character distribution, a Float32Array in `vocab`'s order.
  probabilities() {
    return this.#call("probabilities");
  }

  logProbs(text) {
    return this.#call("logProbs", text);
  }

  // The recurrent state after the last call: {h: [layer][unit], c: (LSTM) the same}.
  get state() {
    return this.#state && structuredClone(this.#state);
  }

  // Assigning checks the value at once (throws); the engine takes it before any later call.
  set state(value) {
    this.#checkState(value);
    this.#call("setState", value).catch(() => {});
  }

  async setState(value) {
    this.#checkState(value);
    return this.#call("setState", value);
  }

  #checkState(value) {
    const { layers, hidden, cell } = this.manifest.model;
    for (const key of cell === "lstm" ? ["h", "c"] : ["h"]) {
      const ok = Array.isArray(value?.[key]) && value[key].length === layers && value[key].every((u) => u?.length === hidden);
      if (!ok) throw new Error(`state.${key} must be ${layers} arrays of ${hidden} numbers`);
    }
  }

  close() {
    this.backend.close();
  }
}

// Loads an export: `load("./")` from the folder the page sits in. `worker: false` runs the model in
// this thread; `kernel: "js"` turns WebAssembly off.
export async function load(source = "./", { worker = true, kernel = "auto" } = {}) {
  // The worker starts loading its modules while the weights download.
  const backend = worker && typeof Worker !== "undefined" ? new WorkerBackend(worker) : new LocalBackend();
  try {
    const files = await readExport(source);
    checkManifest(files.manifest);
    const started = await backend.start({ manifest: files.manifest, weights: files.weights.slice(0), kernel });
    return new Model(backend, files.manifest, started);
  } catch (error) {
    backend.close();
    throw error;
  }
}
