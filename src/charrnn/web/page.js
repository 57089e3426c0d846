// The exported page: the served page's controls, generating in this browser through charrnn.js.

import { load } from "./charrnn.js";

const $ = (id) => document.getElementById(id);
let model = null;
let running = null; // the stream being read, while Generate runs

function status(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

// The request from the controls; a stop written as \n means a line break.
function request() {
  const number = (id) => ($(id).value === "" ? undefined : Number($(id).value));
  const body = { prime: $("prime").value, length: number("length"), temperature: number("temperature"),
    topK: number("top_k"), topP: number("top_p") };
  if ($("seed").value !== "") body.seed = $("seed").value.trim();
  if ($("stop_at").value) body.stop = [$("stop_at").value.replaceAll("\\n", "\n")];
  return body;
}

function setRunning(on) {
  $("generate").disabled = on;
  $("stop").disabled = !on;
}

async function generate() {
  const out = $("output");
  const prime = document.createElement("span");
  prime.className = "prime";
  prime.textContent = $("prime").value;
  const text = document.createElement("span");
  text.id = "generated";
  out.replaceChildren(prime, text);
  setRunning(true);
  status("generating…");
  const start = performance.now();
  let first = null, count = 0;
  running = model.stream(request())[Symbol.asyncIterator]();
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

function showCard(m) {
  const c = m.manifest.model, card = m.card;
  const rows = [["model", card.name ?? "charrnn"], ["parameters", card.parameters.toLocaleString()],
    ["network", `${c.layers}×${c.hidden} ${c.cell}`], ["vocabulary", `${m.vocab.length} ${m.symbol === "byte" ? "bytes" : "characters"}`],
    ["weights", `${card.quantize}, ${(m.manifest.weights.bytes / 1e6).toFixed(2)} MB`], ["engine", m.kernel === "simd" ? "WebAssembly SIMD" : "JavaScript"]];
  if (card.step != null) rows.push(["checkpoint", `step ${card.step}` + (card.val_loss == null ? "" : `, validation ${card.val_loss.toFixed(4)} nats/${m.symbol}`)]);
  const table = document.createElement("table");
  for (const [k, v] of rows) {
    const tr = table.insertRow();
    tr.insertCell().textContent = k;
    tr.insertCell().textContent = v;
  }
  $("card").replaceChildren(table);
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
  showCard(model);
  status(`ready: ${model.vocab.length}-${model.symbol} model`);
  $("generate").disabled = false;
  window.charrnnModel = model; // for the console, and for tests
}

$("generate").addEventListener("click", generate);
$("stop").addEventListener("click", stop);
start();
