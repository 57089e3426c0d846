import { test } from "node:test";
import assert from "node:assert/strict";
import { StopMatcher } from "../../src/charrnn/web/stops.js";
import { fixture } from "./fixture.mjs";

test("StopMatcher lets out and holds back what Python's does, piece by piece", () => {
  for (const { stops, pieces, outputs } of fixture().stops) {
    const matcher = new StopMatcher(stops);
    const got = [];
    for (const piece of pieces) {
      const [text, stopped] = matcher.push(piece);
      got.push([text, stopped]);
      if (stopped) break;
    }
    if (!got.at(-1)?.[1]) got.push([matcher.flush(), false]);
    assert.deepEqual(got, outputs, JSON.stringify({ stops, pieces }));
  }
});
