// The one product the step spends its time in, y += W x, as a WebAssembly module written here as
// its instructions (no binary in the repository, no toolchain): 128-bit SIMD, four rows at a time
// sharing each load of x. W is row-major with rows and columns padded to multiples of 4, and lives
// in the module's memory with x and y. `matvecJs` is the same product in plain JavaScript, the
// fallback where WebAssembly SIMD is missing and the yardstick it is measured against.

const I32 = 0x7f;
const V128 = 0x7b;
const op = {
  block: 0x02, loop: 0x03, end: 0x0b, br: 0x0c, brIf: 0x0d, get: 0x20, set: 0x21, tee: 0x22,
  f32Load: 0x2a, f32Store: 0x38, i32Const: 0x41, i32GeU: 0x4f, i32Add: 0x6a, i32Mul: 0x6c, i32Shl: 0x74,
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

// matvec(w, x, y, rows, cols): byte addresses; rows and cols multiples of 4.
// Locals: 0 w, 1 x, 2 y, 3 rows, 4 cols, 5 rowBytes, 6 j, 7 rowEnd, 8-11 the four accumulators, 12 x chunk.
function matvecBody() {
  const [W, X, Y, ROWS, COLS, ROW_BYTES, J, Y_END] = [0, 1, 2, 3, 4, 5, 6, 7];
  const ACC = [8, 9, 10, 11];
  const XV = 12;
  const get = (i) => [op.get, i];
  const set = (i) => [op.set, i];
  const i32 = (v) => [op.i32Const, ...sleb(v)];
  const accumulate = (k) => [
    ...get(ACC[k]),
    ...get(W), ...get(J), op.i32Add, ...(k ? [...get(ROW_BYTES), ...i32(k), op.i32Mul, op.i32Add] : []),
    ...v128Load(0), ...get(XV), ...f32x4Mul, ...f32x4Add, ...set(ACC[k]),
  ];
  const sumInto = (k) => [
    ...get(Y), ...get(Y), op.f32Load, 2, k * 4,
    ...get(ACC[k]), ...lane(0), ...get(ACC[k]), ...lane(1), op.f32Add,
    ...get(ACC[k]), ...lane(2), ...get(ACC[k]), ...lane(3), op.f32Add, op.f32Add,
    op.f32Add, op.f32Store, 2, k * 4,
  ];
  const code = [
    ...get(COLS), ...i32(2), op.i32Shl, ...set(ROW_BYTES),
    ...get(Y), ...get(ROWS), ...i32(2), op.i32Shl, op.i32Add, ...set(Y_END),
    op.block, 0x40, op.loop, 0x40, // over blocks of four rows
    ...get(Y), ...get(Y_END), op.i32GeU, op.brIf, 1,
    ...[0, 1, 2, 3].flatMap((k) => [...v128Zero, ...set(ACC[k])]),
    ...i32(0), ...set(J),
    op.block, 0x40, op.loop, 0x40, // along the columns, 16 bytes at a time
    ...get(J), ...get(ROW_BYTES), op.i32GeU, op.brIf, 1,
    ...get(X), ...get(J), op.i32Add, ...v128Load(0), ...set(XV),
    ...[0, 1, 2, 3].flatMap(accumulate),
    ...get(J), ...i32(16), op.i32Add, ...set(J),
    op.br, 0, op.end, op.end,
    ...[0, 1, 2, 3].flatMap(sumInto),
    ...get(W), ...get(ROW_BYTES), ...i32(4), op.i32Mul, op.i32Add, ...set(W),
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

// y[r] += sum over c of w[r * cols + c] * x[c], on Float32Arrays (offsets in elements).
export function matvecJs(heap, w, x, y, rows, cols) {
  for (let r = 0; r < rows; r++) {
    let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    const row = w + r * cols;
    for (let c = 0; c < cols; c += 4) {
      a0 += heap[row + c] * heap[x + c];
      a1 += heap[row + c + 1] * heap[x + c + 1];
      a2 += heap[row + c + 2] * heap[x + c + 2];
      a3 += heap[row + c + 3] * heap[x + c + 3];
    }
    heap[y + r] += (a0 + a1) + (a2 + a3);
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
