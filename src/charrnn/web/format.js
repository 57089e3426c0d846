// The export's files, read and checked: manifest.json (format version, architecture, vocabulary as
// code points, quantisation, checksums, golden vectors) and the one weights file it describes.
// Anything that does not match is refused with one line naming what and why.

export const FORMAT = "charrnn-web";
export const VERSION = 1;

let crcTable = null;

export function crc32(bytes) {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = crcTable[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

export function checkManifest(manifest) {
  const fail = (why) => { throw new Error(`manifest.json is not a usable charrnn web export: ${why}`); };
  if (!manifest || typeof manifest !== "object") fail("not a JSON object");
  if (manifest.format !== FORMAT) fail(`format is ${JSON.stringify(manifest.format)}, not "${FORMAT}"`);
  if (manifest.version !== VERSION) fail(`version ${manifest.version}; this charrnn.js reads version ${VERSION}`);
  for (const key of ["model", "vocab", "weights", "tensors", "golden", "options"])
    if (!manifest[key] || typeof manifest[key] !== "object") fail(`"${key}" is missing`);
  const codes = manifest.vocab.code_points;
  if (!Array.isArray(codes) || codes.length !== manifest.model.vocab_size) fail("the vocabulary does not match the model");
  return manifest;
}

// Half-precision bits to a float.
function halfToFloat(bits) {
  const sign = bits & 0x8000 ? -1 : 1, exponent = (bits >> 10) & 0x1f, fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

// Each tensor as a Float32Array in PyTorch's layout: fp32 read as is, fp16 widened, int8 scaled per row.
export function readTensors(manifest, buffer) {
  const bytes = new Uint8Array(buffer);
  const { bytes: size, crc32: expected } = manifest.weights;
  if (bytes.length !== size || crc32(bytes) !== expected)
    throw new Error(`${manifest.weights.file} does not match its checksum in manifest.json: corrupt, or from another export`);
  const tensors = {};
  for (const t of manifest.tensors) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    const out = new Float32Array(count);
    const view = new DataView(buffer, t.offset);
    if (t.dtype === "f32") for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
    else if (t.dtype === "f16") for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
    else if (t.dtype === "i8") {
      const scales = new DataView(buffer, t.scales_offset), cols = count / t.shape[0];
      for (let i = 0; i < count; i++) out[i] = view.getInt8(i) * scales.getFloat32(4 * Math.floor(i / cols), true);
    } else throw new Error(`manifest.json: unknown tensor dtype ${JSON.stringify(t.dtype)}`);
    tensors[t.name] = out;
  }
  return tensors;
}

// Symbols (one per vocabulary entry) and the user's text, both ways: characters as they are, bytes as
// UTF-8 (a byte symbol is the character of its code point, 0-255, as in Python's Vocab).
export function symbolsOf(manifest) {
  const chars = manifest.vocab.code_points.map((cp) => String.fromCodePoint(cp));
  const bytes = manifest.vocab.symbol === "byte";
  const encoder = new TextEncoder();
  return {
    chars,
    bytes,
    leadIn: manifest.vocab.lead_in,
    toSymbols: (text) => (bytes ? String.fromCharCode(...encoder.encode(text)) : text),
    splitSymbols: (text) => Array.from(text),
  };
}

// The export's golden check: the model's log-probabilities for its fixed text, as PyTorch gave them.
export function checkGolden(manifest, logProbsOf) {
  const { ids, log_probs: expected, tolerance } = manifest.golden;
  const got = logProbsOf(ids);
  let worst = 0;
  expected.forEach((value, i) => (worst = Math.max(worst, Math.abs(value - got[i]))));
  if (!(worst <= tolerance))
    throw new Error(`the model does not reproduce its export's golden log-probabilities (off by ${worst.toExponential(2)}, allowed ${tolerance}): refused`);
  return worst;
}
