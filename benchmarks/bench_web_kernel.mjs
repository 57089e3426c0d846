// The web engine's product alone, y += W x, under node (V8, as in Chromium): calls a second and GB/s
// of weights read, for one 2048×512 matrix (the 1×512 LSTM's recurrent one, 4 MB, which stays in
// cache) and three in turn (the 2×512 LSTM's, 12 MB, which may not), WASM SIMD and plain JS.
//
//   node benchmarks/bench_web_kernel.mjs
//
// To compare a change to the kernel, run this file from each tree (git worktree) alternately.

import { matvecJs, simdKernel } from "../src/charrnn/web/kernel.js";

const ROWS = 2048, COLS = 512;

function measure(kind, copies) {
  const floats = copies * ROWS * COLS + COLS + ROWS + 64;
  const memory = new WebAssembly.Memory({ initial: Math.ceil((floats * 4) / 65536) + 1 });
  const heap = new Float32Array(memory.buffer);
  for (let i = 0; i < floats; i++) heap[i] = Math.random() - 0.5;
  const matvec = kind === "simd" ? simdKernel(memory) : matvecJs;
  const x = copies * ROWS * COLS, y = x + COLS;
  const run = () => { for (let c = 0; c < copies; c++) matvec(heap, c * ROWS * COLS, x, y, ROWS, COLS); };
  const calls = kind === "simd" ? 300 : 30;
  for (let i = 0; i < calls / 5; i++) run(); // past the baseline compiler
  const start = performance.now();
  for (let i = 0; i < calls; i++) run();
  const seconds = (performance.now() - start) / 1000;
  return [kind, `${copies} × 2048×512`, (calls / seconds).toFixed(0), ((calls * copies * ROWS * COLS * 4) / seconds / 1e9).toFixed(1)];
}

const rows = [["kernel", "matrices", "calls/s", "GB/s"]];
for (const kind of ["simd", "js"]) for (const copies of [1, 3]) rows.push(measure(kind, copies));
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
for (const row of rows) console.log(row.map((c, i) => c.padStart(widths[i])).join("  "));
