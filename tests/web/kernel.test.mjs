import { test } from "node:test";
import assert from "node:assert/strict";
import { kernelBytes, matvecJs, packedIndex, simdKernel } from "../../src/charrnn/web/kernel.js";

// y += W x in double precision, the plain way, W read through the packed layout's index: the
// reference both products are held to.
function naive(heap, w, x, y, rows, cols) {
  const out = [];
  for (let r = 0; r < rows; r++) {
    let sum = heap[y + r];
    for (let c = 0; c < cols; c++) sum += heap[w + packedIndex(r, c, cols)] * heap[x + c];
    out.push(sum);
  }
  return out;
}

function layout(rows, cols, seed) {
  const memory = new WebAssembly.Memory({ initial: Math.ceil((rows * cols + cols + rows + 8) * 4 / 65536) });
  const heap = new Float32Array(memory.buffer);
  let state = seed;
  const next = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 30) - 1;
  const w = 4, x = w + rows * cols, y = x + cols; // element offsets, 16-byte aligned
  for (let i = w; i < y + rows; i++) heap[i] = next();
  return { memory, heap, w, x, y };
}

test("the hand-written module is valid WebAssembly with SIMD", () => {
  assert.ok(WebAssembly.validate(kernelBytes()));
});

test("the packed layout puts every element of a matrix in its own place", () => {
  for (const [rows, cols] of [[4, 4], [8, 12], [12, 36]]) {
    const seen = new Set();
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) seen.add(packedIndex(r, c, cols));
    assert.deepEqual([...seen].sort((a, b) => a - b), Array.from({ length: rows * cols }, (_, i) => i));
  }
  assert.equal(packedIndex(1, 0, 8), 4); // row 1's first four columns follow row 0's
  assert.equal(packedIndex(0, 4, 8), 16); // row 0's next four follow the block's first 16
});

for (const [rows, cols] of [[4, 4], [8, 36], [128, 512], [2048, 512], [84, 132]]) {
  test(`SIMD and JS products agree with the plain one, ${rows}×${cols}`, () => {
    for (const kind of ["simd", "js"]) {
      const { memory, heap, w, x, y } = layout(rows, cols, rows + cols);
      const want = naive(heap, w, x, y, rows, cols);
      const matvec = kind === "simd" ? simdKernel(memory) : matvecJs;
      matvec(heap, w, x, y, rows, cols);
      const got = Array.from(heap.subarray(y, y + rows));
      const worst = Math.max(...got.map((g, i) => Math.abs(g - want[i]) / (1 + Math.abs(want[i]))));
      assert.ok(worst < 1e-5 * Math.sqrt(cols), `${kind}: off by ${worst}`);
    }
  });
}
