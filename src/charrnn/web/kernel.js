// The one product the step spends its time in, y += W x, as a WebAssembly module written here as
// its instructions (no binary in the repository, no toolchain): 128-bit SIMD, four rows at a time
// sharing each load of x. W has rows and columns padded to multiples of 4 and is packed four rows at
// a time (one stream to read, where four rows' streams were slower past the cache), and lives in the
// module's memory with x and y. `matvecJs` is the same product in plain JavaScript, the
// fallback where WebAssembly SIMD is missing and the yardstick it is measured against.

const I32 = 0x7f;
const V128 = 0x7b;
const op = {
  block: 0x02, loop: 0x03, end: 0x0b, br: 0x0c, brIf: 0x0d, get: 0x20, set: 0x21, tee: 0x22,
  f32Load: 0x2a, f32Store: 0x38, i32Const: 0x41, i32GeU: 0x4f, i32Add: 0x6a, i32Shl: 0x74,
  f32Add: 0x92,
};
const simd = (code) => [0xfd, ...uleb(code)];
const v128Load = (offset) => [...simd(0x00), 4, ...uleb(offset)]; // align 2**4
const v128Zero = [...simd(0x0c), ...new Array(16).fill(0)];
const f32x4Add = simd(0xe4);
const f32x4Mul = simd(0xe6);
const lane = (i) => [...simd(0x1f), i];

function uleb(n) {
  const out = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n) byte |= 0x80;
    out.push(byte);
  } while (n);
  return out;
}

const vector = (items) => [...uleb(items.length), ...items.flat()];
const section = (id, body) => [id, ...uleb(body.length), ...body];
const name = (text) => vector([...new TextEncoder().encode(text)]);

// matvec(w, x, y, rows, cols): byte addresses; rows and cols multiples of 4; W in blocks of four rows
// interleaved four columns at a time (`packRows4`), so that the loop reads it as one stream.
// Locals: 0 w, 1 x, 2 y, 3 rows, 4 cols, 5 xEnd, 6 xp (the moving x), 7 yEnd, 8-11 the four
// accumulators, 12 x chunk.
function matvecBody() {
  const [W, X, Y, ROWS, COLS, X_END, XP, Y_END] = [0, 1, 2, 3, 4, 5, 6, 7];
  const ACC = [8, 9, 10, 11];
  const XV = 12;
  const get = (i) => [op.get, i];
  const set = (i) => [op.set, i];
  const i32 = (v) => [op.i32Const, ...sleb(v)];
  const accumulate = (k) => [...get(ACC[k]), ...get(W), ...v128Load(16 * k), ...get(XV), ...f32x4Mul, ...f32x4Add, ...set(ACC[k])];
  const sumInto = (k) => [
    ...get(Y), ...get(Y), op.f32Load, 2, k * 4,
    ...get(ACC[k]), ...lane(0), ...get(ACC[k]), ...lane(1), op.f32Add,
    ...get(ACC[k]), ...lane(2), ...get(ACC[k]), ...lane(3), op.f32Add, op.f32Add,
    op.f32Add, op.f32Store, 2, k * 4,
  ];
  const code = [
    ...get(X), ...get(COLS), ...i32(2), op.i32Shl, op.i32Add, ...set(X_END),
    ...get(Y), ...get(ROWS), ...i32(2), op.i32Shl, op.i32Add, ...set(Y_END),
    op.block, 0x40, op.loop, 0x40, // over blocks of four rows
    ...get(Y), ...get(Y_END), op.i32GeU, op.brIf, 1,
    ...[0, 1, 2, 3].flatMap((k) => [...v128Zero, ...set(ACC[k])]),
    ...get(X), ...set(XP),
    op.block, 0x40, op.loop, 0x40, // along the columns, four at a time: 64 bytes of W, 16 of x
    ...get(XP), ...get(X_END), op.i32GeU, op.brIf, 1,
    ...get(XP), ...v128Load(0), ...set(XV),
    ...[0, 1, 2, 3].flatMap(accumulate),
    ...get(W), ...i32(64), op.i32Add, ...set(W),
    ...get(XP), ...i32(16), op.i32Add, ...set(XP),
    op.br, 0, op.end, op.end,
    ...[0, 1, 2, 3].flatMap(sumInto),
    ...get(Y), ...i32(16), op.i32Add, ...set(Y),
    op.br, 0, op.end, op.end,
    op.end,
  ];
  const locals = vector([[...uleb(3), I32], [...uleb(5), V128]]);
  const body = [...locals, ...code];
  return [...uleb(body.length), ...body];
}

function sleb(n) {
  const out = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && !(byte & 0x40)) || (n === -1 && byte & 0x40)) return [...out, byte];
    out.push(byte | 0x80);
  }
}

// The module's bytes: it imports its memory ("env", "memory") and exports `matvec`.
export function kernelBytes() {
  const type = section(1, vector([[0x60, ...vector([I32, I32, I32, I32, I32]), 0]]));
  const imports = section(2, vector([[...name("env"), ...name("memory"), 0x02, 0x00, 1]]));
  const functions = section(3, vector([[0]]));
  const exports = section(7, vector([[...name("matvec"), 0x00, 0]]));
  const code = section(10, vector([matvecBody()]));
  return new Uint8Array([0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0, ...type, ...imports, ...functions, ...exports, ...code]);
}

// Where element (r, c) of a rows × cols matrix (both multiples of 4) lies in the packed layout: blocks
// of four rows, each block four columns at a time (row 0's four, row 1's, ...), as the kernel reads it.
export const packedIndex = (r, c, cols) => (r >> 2) * 4 * cols + (c >> 2) * 16 + (r & 3) * 4 + (c & 3);

// y += W x on Float32Arrays (offsets in elements), W packed: each row summed in four lanes (one per
// column mod 4) and the lanes added as the kernel adds them.
export function matvecJs(heap, w, x, y, rows, cols) {
  for (let r = 0; r < rows; r += 4) {
    const sums = [0, 0, 0, 0];
    for (let k = 0; k < 4; k++) {
      let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
      for (let c = 0, p = w + r * cols + 4 * k; c < cols; c += 4, p += 16) {
        a0 += heap[p] * heap[x + c];
        a1 += heap[p + 1] * heap[x + c + 1];
        a2 += heap[p + 2] * heap[x + c + 2];
        a3 += heap[p + 3] * heap[x + c + 3];
      }
      sums[k] = (a0 + a1) + (a2 + a3);
    }
    for (let k = 0; k < 4; k++) heap[y + r + k] += sums[k];
  }
}

// The SIMD product, or null where this runtime has no WebAssembly SIMD.
export function simdKernel(memory) {
  const bytes = kernelBytes();
  if (typeof WebAssembly === "undefined" || !WebAssembly.validate(bytes)) return null;
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
  const matvec = instance.exports.matvec;
  return (heap, w, x, y, rows, cols) => matvec(w * 4, x * 4, y * 4, rows, cols);
}
