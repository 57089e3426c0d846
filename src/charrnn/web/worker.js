// The Web Worker that runs the model, so that the page never freezes: it holds a `Session`, answers
// calls in order, and generates in slices of about 10 ms, posting each slice's text and yielding
// between slices so that a cancel is seen at once.

import { Session } from "./session.js";

let session = null;
const cancelled = new Set();
const SLICE_MS = 10;

// A turn of the event loop without setTimeout's 4 ms clamp.
const channel = new MessageChannel();
const waiting = [];
channel.port1.onmessage = () => waiting.shift()();
const yieldTurn = () => new Promise((resolve) => { waiting.push(resolve); channel.port2.postMessage(0); });

const state = () => session.engine.getState();

async function generate(id, request) {
  session.begin(request);
  while (!session.finished) {
    if (cancelled.delete(id)) break;
    const start = performance.now();
    let text = "";
    while (!session.finished && performance.now() - start < SLICE_MS) text += session.more(8);
    if (text) postMessage({ id, chunk: text });
    await yieldTurn();
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
  setState: (value) => session.engine.setState(value),
  logProbs: (text) => session.logProbs(text),
};

// Calls run one after another (a feed sent during a generation waits for it); a cancel acts at once.
let queue = Promise.resolve();
onmessage = ({ data }) => {
  if (data.method === "cancel") return void cancelled.add(data.args);
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
