// The exported page: the served page's controls, generating in this browser through charrnn.js.

import { load } from "./charrnn.js";
import { $, readControls, setRunning, showCard, startOutput, status } from "./controls.js";

let model = null;
let running = null; // the stream being read, while Generate runs

async function generate() {
  const text = startOutput();
  setRunning(true);
  status("generating…");
  const start = performance.now();
  let first = null, count = 0;
  running = model.stream(readControls())[Symbol.asyncIterator]();
  try {
    for (;;) {
      const { value, done } = await running.next();
      if (done) break;
      first ??= performance.now() - start;
      text.textContent += value;
      count += 1;
      if (count % 64 === 0) status(`generating… ${count} characters`);
    }
    const seconds = (performance.now() - start) / 1000;
    status(running.stopped ? `stopped after ${count} characters` :
      `done: ${count} characters in ${seconds.toFixed(2)} s (${Math.round(count / seconds)}/s), first after ${Math.round(first ?? 0)} ms`);
  } catch (error) {
    status("error: " + error.message, true);
  } finally {
    running = null;
    setRunning(false);
  }
}

function stop() {
  if (!running) return;
  running.stopped = true;
  running.return(); // ends the loop above and cancels the generation in the worker
}

function cardRows(m) {
  const c = m.manifest.model, card = m.card;
  const rows = [["model", card.name ?? "charrnn"], ["parameters", card.parameters.toLocaleString()],
    ["network", `${c.layers}×${c.hidden} ${c.cell}`], ["vocabulary", `${m.vocab.length} ${m.symbol === "byte" ? "bytes" : "characters"}`],
    ["weights", `${card.quantize}, ${(m.manifest.weights.bytes / 1e6).toFixed(2)} MB`], ["engine", m.kernel === "simd" ? "WebAssembly SIMD" : "JavaScript"]];
  if (card.step != null) rows.push(["checkpoint", `step ${card.step}` + (card.val_loss == null ? "" : `, validation ${card.val_loss.toFixed(4)} nats/${m.symbol}`)]);
  return rows;
}

// The model sits beside the page, or (one-file export) inside it with its worker as one classic script.
function source() {
  const inline = document.getElementById("charrnn-manifest");
  if (!inline) return ["./", {}];
  const text = (id) => document.getElementById(id).textContent;
  const bytes = Uint8Array.from(atob(text("charrnn-weights").trim()), (c) => c.charCodeAt(0));
  const worker = URL.createObjectURL(new Blob([text("charrnn-worker")], { type: "text/javascript" }));
  return [{ manifest: JSON.parse(text("charrnn-manifest")), weights: bytes.buffer }, { worker }];
}

async function start() {
  try {
    model = await load(...source());
  } catch (error) {
    status("error: " + error.message, true);
    $("card").textContent = "No model: " + error.message;
    return;
  }
  showCard(cardRows(model));
  status(`ready: ${model.vocab.length}-${model.symbol} model`);
  $("generate").disabled = false;
  window.charrnnModel = model; // for the console, and for tests
}

$("generate").addEventListener("click", generate);
$("stop").addEventListener("click", stop);
start();
