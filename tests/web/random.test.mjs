import { test } from "node:test";
import assert from "node:assert/strict";
import { Random, randomSeed } from "../../src/charrnn/web/random.js";
import { fixture } from "./fixture.mjs";

test("Random(seed).random() draws what numpy's default_rng(seed).random() draws", () => {
  for (const { seed, draws } of fixture().random) {
    const random = new Random(BigInt(seed));
    assert.deepEqual(draws.map(() => random.random()), draws, `seed ${seed}`);
  }
});

test("a seed given as a number or a string is the same seed", () => {
  assert.equal(new Random(42).random(), new Random("42").random());
});

test("randomSeed gives different whole numbers", () => {
  const seeds = new Set(Array.from({ length: 20 }, () => String(randomSeed())));
  assert.equal(seeds.size, 20);
  for (const s of seeds) assert.match(s, /^\d+$/);
});
