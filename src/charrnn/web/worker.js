// The Web Worker that runs the model, so that the page never freezes: it holds a `Session`, answers
// calls in order, and generates in slices of about 10 ms. After each slice it waits for the page to
// pull the next one: the page's pace bounds what is made ahead, and a cancel is read at once (a worker
// that yields by posting to itself may starve the page's messages, and then never sees the cancel).

import { Session } from "./session.js";

let session = null;
const cancelled = new Set();
const pulls = new Map(); // generation id -> the resolve of its wait for the page's pull
const SLICE_MS = 10;

const state = () => session.engine.getState();

async function generate(id, request) {
  session.begin(request);
  while (!session.finished && !cancelled.has(id)) {
    const start = performance.now();
    let text = "";
    while (!session.finished && performance.now() - start < SLICE_MS) text += session.more(8);
    if (!text) continue;
    postMessage({ id, chunk: text });
    await new Promise((resolve) => pulls.set(id, resolve));
  }
  cancelled.delete(id);
  postMessage({ id, done: true, state: state() });
}

const calls = {
  load: ({ manifest, weights, kernel }) => {
    session = new Session(manifest, weights, { kernel });
    return { kernel: session.engine.kernel, golden: session.goldenError };
  },
  reset: (prime) => session.reset(prime),
  feed: (text) => session.feed(text),
  step: (options) => session.step(options),
  probabilities: () => session.probabilities(),
  state: () => null, // the answer carries the state
  setState: (value) => session.engine.setState(value),
  logProbs: (text) => session.logProbs(text),
};

// Calls run one after another (a feed sent during a generation waits for it); a cancel acts at once.
let queue = Promise.resolve();
onmessage = ({ data }) => {
  if (data.method === "cancel") cancelled.add(data.args);
  if (data.method === "cancel" || data.method === "pull") {
    pulls.get(data.args)?.();
    return void pulls.delete(data.args);
  }
  queue = queue.then(() => answer(data));
};

async function answer({ id, method, args }) {
  try {
    if (method === "generate") return await generate(id, args);
    const result = calls[method](args);
    postMessage({ id, result, state: session ? state() : null });
  } catch (error) {
    postMessage({ id, error: error.message });
  }
}
