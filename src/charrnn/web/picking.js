// Choosing the next character from float32 logits: charrnn's `pick_next_row` (generate/picking.py),
// step for step in the same float32 arithmetic, so that the same logits and the same uniform draw
// choose the same character. Math.fround rounds each result to float32 as numpy does; only exp may
// differ from numpy's in its last bit, which can flip a draw that lands within that bit of a boundary.

const f32 = Math.fround;

// numpy's pairwise summation of float32 (what `weights.sum()` does): 8 lanes up to 128, halves above.
function pairwiseSum(values, start, n) {
  if (n < 8) {
    let sum = -0;
    for (let i = 0; i < n; i++) sum = f32(sum + values[start + i]);
    return sum;
  }
  if (n <= 128) {
    const r = [0, 1, 2, 3, 4, 5, 6, 7].map((k) => values[start + k]);
    let i = 8;
    for (; i < n - (n % 8); i += 8) for (let k = 0; k < 8; k++) r[k] = f32(r[k] + values[start + i + k]);
    let sum = f32(f32(f32(r[0] + r[1]) + f32(r[2] + r[3])) + f32(f32(r[4] + r[5]) + f32(r[6] + r[7])));
    for (; i < n; i++) sum = f32(sum + values[start + i]);
    return sum;
  }
  let half = Math.floor(n / 2);
  half -= half % 8;
  return f32(pairwiseSum(values, start, half) + pairwiseSum(values, start + half, n - half));
}

// Indices of the logits, likeliest first, ties in index order (numpy's stable argsort of -logits).
function ranked(logits) {
  const order = Array.from(logits.keys());
  return order.sort((a, b) => logits[b] - logits[a] || a - b);
}

export function argmax(logits) {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

// options: {temperature, topK, topP, greedy}, already checked; random: a `Random`.
export function pickNext(logits, options, random) {
  const { temperature, topK, topP, greedy } = options;
  if (greedy || temperature === 0) return argmax(logits);
  let order = ranked(logits);
  if (topK > 0 && topK < order.length) order = order.slice(0, topK);
  const scale = f32(1 / temperature);
  const scaled = order.map((i) => f32(logits[i] * scale));
  let weights = new Float32Array(scaled.map((s) => f32(Math.exp(f32(s - scaled[0])))));
  if (topP < 1) {
    const limit = f32(f32(topP) * pairwiseSum(weights, 0, weights.length));
    let before = 0;
    const keep = [];
    for (let i = 0; i < weights.length; i++) {
      const cumulative = f32(before + weights[i]);
      if (i === 0 || f32(cumulative - weights[i]) < limit) keep.push(i);
      before = cumulative;
    }
    order = keep.map((i) => order[i]);
    weights = new Float32Array(keep.map((i) => weights[i]));
  }
  const cumulative = new Float32Array(weights.length);
  let sum = 0;
  for (let i = 0; i < weights.length; i++) cumulative[i] = sum = f32(sum + weights[i]);
  const target = f32(f32(random.random()) * cumulative[cumulative.length - 1]);
  let chosen = 0;
  while (chosen < cumulative.length && cumulative[chosen] <= target) chosen++;
  return order[Math.min(chosen, cumulative.length - 1)];
}

// A setting checked against its declaration (written by the export from Python's): one line if not.
function checkSetting(name, value, spec) {
  if (spec.type === "bool") {
    if (typeof value !== "boolean") throw new Error(`${name} must be true or false, got ${JSON.stringify(value)}`);
    return;
  }
  if (typeof value !== "number" || Number.isNaN(value) || (spec.type === "int" && !Number.isInteger(value)))
    throw new Error(`${name} must be ${spec.type === "int" ? "a whole number" : "a number"}, got ${JSON.stringify(value)}`);
  const low = spec.low == null || (spec.low_open ? value > spec.low : value >= spec.low);
  const high = spec.high == null || (spec.high_open ? value < spec.high : value <= spec.high);
  if (!low || !high) throw new Error(`${name} ${spec.bounds}, got ${value}`);
}

// The sampling options of a request, each checked, with the declared defaults for the rest.
export function samplingOptions(request, declared) {
  const out = {};
  for (const [name, spec] of Object.entries(declared)) {
    const value = request[name] ?? spec.default;
    checkSetting(name, value, spec);
    out[name] = value;
  }
  return out;
}
