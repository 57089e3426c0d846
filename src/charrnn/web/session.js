// A loaded model and its running state: what the worker (or the page's own thread) holds. It feeds
// text, reads the next-character distribution, and generates as charrnn's Python sampler does: the
// prime read after the vocabulary's lead-in from the zero state, each character chosen by `pickNext`
// with numpy's generator for the same seed, stop strings ended as in Python.

import { Engine } from "./engine.js";
import { checkGolden, checkManifest, readTensors, symbolsOf } from "./format.js";
import { pickNext, samplingOptions } from "./picking.js";
import { Random, randomSeed } from "./random.js";
import { StopMatcher } from "./stops.js";

export class Session {
  constructor(manifest, buffer, { kernel = "auto" } = {}) {
    this.manifest = checkManifest(manifest);
    this.engine = new Engine(manifest.model, readTensors(manifest, buffer), { kernel });
    this.vocab = symbolsOf(manifest);
    this.ids = new Map(this.vocab.chars.map((c, i) => [c, i]));
    this.goldenError = checkGolden(manifest, (ids) => this.logProbsOfIds(ids));
    this.random = null;
    this.reset();
  }

  // The symbols of a user's text as ids; unknown ones refused in one line, as in Python.
  encode(text) {
    if (typeof text !== "string") throw new Error(`text must be a string, got ${JSON.stringify(text)}`);
    const symbols = this.vocab.splitSymbols(this.vocab.toSymbols(text));
    const unknown = [...new Set(symbols.filter((s) => !this.ids.has(s)))];
    if (unknown.length) {
      const shown = unknown.slice(0, 10).map((s) => JSON.stringify(s)).join(", ");
      const what = this.vocab.bytes ? "bytes" : "characters";
      throw new Error(`${what} not in the model's vocabulary: ${shown}${unknown.length > 10 ? " and more" : ""}`);
    }
    return symbols.map((s) => this.ids.get(s));
  }

  #feedIds(ids) {
    for (const id of ids) this.engine.step(id);
  }

  // Back to the start of a text: the zero state, then the lead-in (a line break where the vocabulary
  // has one, else its first symbol), after which `probabilities` is the first character's.
  reset(prime = "") {
    const ids = this.encode(prime);
    this.engine.reset();
    const lead = this.vocab.leadIn ? this.encode(this.vocab.leadIn) : [];
    this.#feedIds(lead.length + ids.length ? [...lead, ...ids] : [0]);
  }

  feed(text) {
    this.#feedIds(this.encode(text));
  }

  probabilities() {
    const logits = this.engine.logits();
    const top = Math.max(...logits);
    const weights = Array.from(logits, (x) => Math.exp(x - top));
    const total = weights.reduce((a, b) => a + b, 0);
    return Float32Array.from(weights, (w) => w / total);
  }

  // Each character's natural-log probability given the ones before it, from the zero state (the
  // first character has no context and is not scored): the golden vectors' measure.
  logProbs(text) {
    return this.logProbsOfIds(this.encode(text));
  }

  logProbsOfIds(ids) {
    this.engine.reset();
    const out = [];
    for (let t = 0; t + 1 < ids.length; t++) {
      this.engine.step(ids[t]);
      const logits = this.engine.logits();
      const top = Math.max(...logits);
      const total = logits.reduce((sum, x) => sum + Math.exp(x - top), 0);
      out.push(logits[ids[t + 1]] - top - Math.log(total));
    }
    return out;
  }

  // Starts a generation: checks everything first (a bad option or prime is one error, nothing drawn).
  begin(request = {}) {
    const known = new Set(["prime", "length", "seed", "stop", ...Object.keys(this.manifest.options)]);
    for (const key of Object.keys(request)) if (!known.has(key)) throw new Error(`unknown option ${JSON.stringify(key)}; known: ${[...known].join(", ")}`);
    const options = samplingOptions(request, this.manifest.options);
    const { prime = "", length = 200, seed = null, stop = [] } = request;
    if (!Number.isInteger(length) || length < 0) throw new Error(`length must be a whole number, not negative, got ${JSON.stringify(length)}`);
    if (!Array.isArray(stop) || !stop.every((s) => typeof s === "string")) throw new Error("stop must be a list of strings");
    if (seed !== null && !(/^\d+$/.test(String(seed)))) throw new Error(`seed must be a whole number, not negative, got ${JSON.stringify(seed)}`);
    this.reset(prime);
    this.useSeed(seed);
    this.options = options;
    this.left = length;
    this.stops = new StopMatcher(stop.map(this.vocab.toSymbols));
    this.stopped = false;
    this.decoder = new TextDecoder();
  }

  useSeed(seed) {
    this.random = new Random(seed === null || seed === undefined ? randomSeed() : seed);
  }

  // Up to `count` more symbols of the generation begun, as the text decided so far ("" at the end).
  more(count) {
    let out = "";
    for (; count > 0 && this.left > 0 && !this.stopped; count--, this.left--) {
      const [text, stopped] = this.stops.push(this.next(this.options));
      out += text;
      this.stopped = stopped;
    }
    if (this.left === 0 && !this.stopped) {
      out += this.stops.flush();
      this.stopped = true;
    }
    return this.readable(out);
  }

  // Symbols as text: themselves, or for a byte model its bytes decoded as UTF-8 as they complete.
  readable(symbols) {
    if (!this.vocab.bytes) return symbols;
    const bytes = Uint8Array.from(symbols, (c) => c.charCodeAt(0));
    return this.decoder.decode(bytes, { stream: !this.stopped });
  }

  get finished() {
    return this.stopped;
  }

  // One symbol drawn from the current distribution under `options`, then fed.
  next(options) {
    if (!this.random) this.useSeed(null);
    const id = pickNext(this.engine.logits(), options, this.random);
    this.engine.step(id);
    return this.vocab.chars[id];
  }

  // One step with options checked, for the page author's own loop.
  step(request = {}) {
    if (request.seed !== undefined) this.useSeed(request.seed);
    const { seed, ...rest } = request;
    return this.next(samplingOptions(rest, this.manifest.options));
  }
}
