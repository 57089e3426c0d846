import { test } from "node:test";
import assert from "node:assert/strict";
import { checkManifest, crc32, readTensors } from "../../src/charrnn/web/format.js";

test("crc32 is the standard CRC-32 (zlib's)", () => {
  assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
  assert.equal(crc32(new Uint8Array()), 0);
});

function tinyExport() {
  const values = Float32Array.from([1.5, -2, 0.25, 3]);
  const weights = new Uint8Array(values.buffer.slice(0));
  const manifest = { weights: { file: "weights.bin", bytes: 16, crc32: crc32(weights) },
    tensors: [{ name: "w", shape: [2, 2], dtype: "f32", offset: 0 }] };
  return { manifest, weights, values };
}

test("readTensors reads the tensors, and refuses a file that does not match its checksum", () => {
  const { manifest, weights, values } = tinyExport();
  assert.deepEqual(Array.from(readTensors(manifest, weights.buffer).w), Array.from(values));
  weights[3] ^= 1;
  assert.throws(() => readTensors(manifest, weights.buffer), /does not match its checksum/);
});

test("checkManifest refuses another format or version in one line", () => {
  assert.throws(() => checkManifest({ format: "onnx" }), /format is "onnx"/);
  assert.throws(() => checkManifest({ format: "charrnn-web", version: 99 }), /version 99/);
  assert.throws(() => checkManifest(null), /not a JSON object/);
});
