import { test } from "node:test";
import assert from "node:assert/strict";
import { argmax, pickNext, samplingOptions } from "../../src/charrnn/web/picking.js";
import { Random } from "../../src/charrnn/web/random.js";
import { fixture } from "./fixture.mjs";

test("pickNext draws what Python's pick_next_row draws for the same logits, options and seed", () => {
  const { picking, options } = fixture();
  for (const { logits, request, seed, picks } of picking) {
    const chosen = samplingOptions(request, options), random = new Random(BigInt(seed));
    const got = picks.map(() => pickNext(Float32Array.from(logits), chosen, random));
    assert.deepEqual(got, picks, JSON.stringify(request));
  }
});

test("greedy and temperature 0 take the likeliest, the first of ties", () => {
  const logits = Float32Array.from([0.5, 2, -1, 2]);
  assert.equal(argmax(logits), 1);
  const { options } = fixture();
  for (const request of [{ greedy: true }, { temperature: 0 }])
    assert.equal(pickNext(logits, samplingOptions(request, options), new Random(1)), 1);
});

test("options are checked as Python checks them", () => {
  const { option_cases, options } = fixture();
  for (const { request, valid } of option_cases) {
    const check = () => samplingOptions(request, options);
    if (valid) check();
    else assert.throws(check, (error) => !error.message.includes("\n"), JSON.stringify(request));
  }
});
