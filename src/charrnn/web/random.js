// numpy's default_rng(seed).random(), reproduced: SeedSequence(seed) fills a PCG64 (XSL-RR 128/64),
// and each draw is (next64 >> 11) * 2**-53. The same seed gives the same uniforms as charrnn's Python
// sampler, which is what makes a seeded sample in the page the text `charrnn sample --seed` prints.

const MASK32 = 0xffffffffn;
const MASK64 = (1n << 64n) - 1n;
const MASK128 = (1n << 128n) - 1n;
const PCG_MULTIPLIER = (0x2360ed051fc65da4n << 64n) | 0x4385df649fccf645n;
const [INIT_A, MULT_A, INIT_B, MULT_B] = [0x43b0d7e5n, 0x931e8875n, 0x8b51f9ddn, 0x58f38dedn];
const [MIX_MULT_L, MIX_MULT_R] = [0xca01f9ddn, 0x4973f715n];
const POOL_SIZE = 4;

// A non-negative integer seed as numpy reads it: 32-bit words, least significant first.
function seedWords(seed) {
  let value = BigInt(seed);
  if (value < 0n) throw new RangeError(`seed must not be negative, got ${seed}`);
  const words = [];
  do {
    words.push(value & MASK32);
    value >>= 32n;
  } while (value > 0n);
  return words;
}

// numpy's SeedSequence: the entropy mixed into a pool of four 32-bit words, then hashed out.
function seedSequenceState(seed, words) {
  const entropy = seedWords(seed);
  let hashConst = INIT_A;
  const hashmix = (value) => {
    value = (value ^ hashConst) & MASK32;
    hashConst = (hashConst * MULT_A) & MASK32;
    value = (value * hashConst) & MASK32;
    return value ^ (value >> 16n);
  };
  const mix = (x, y) => {
    const result = (MIX_MULT_L * x - MIX_MULT_R * y) & MASK32;
    return result ^ (result >> 16n);
  };
  const pool = [];
  for (let i = 0; i < POOL_SIZE; i++) pool.push(hashmix(i < entropy.length ? entropy[i] : 0n));
  for (let src = 0; src < POOL_SIZE; src++)
    for (let dst = 0; dst < POOL_SIZE; dst++) if (src !== dst) pool[dst] = mix(pool[dst], hashmix(pool[src]));
  for (let src = POOL_SIZE; src < entropy.length; src++)
    for (let dst = 0; dst < POOL_SIZE; dst++) pool[dst] = mix(pool[dst], hashmix(entropy[src]));
  let outConst = INIT_B;
  const out = [];
  for (let i = 0; i < words; i++) {
    let value = (pool[i % POOL_SIZE] ^ outConst) & MASK32;
    outConst = (outConst * MULT_B) & MASK32;
    value = (value * outConst) & MASK32;
    out.push(value ^ (value >> 16n));
  }
  return out;
}

export class Random {
  constructor(seed) {
    const w = seedSequenceState(seed, 8); // four uint64, little-endian pairs of words
    const u64 = (i) => w[2 * i] | (w[2 * i + 1] << 32n);
    const initState = (u64(0) << 64n) | u64(1);
    const initSeq = (u64(2) << 64n) | u64(3);
    this.increment = ((initSeq << 1n) | 1n) & MASK128;
    this.state = 0n;
    this.#advance();
    this.state = (this.state + initState) & MASK128;
    this.#advance();
  }

  #advance() {
    this.state = (this.state * PCG_MULTIPLIER + this.increment) & MASK128;
  }

  // The next 64-bit output as a BigInt (numpy's next_uint64).
  next64() {
    this.#advance();
    const high = this.state >> 64n;
    const rotation = high >> 58n;
    const x = (high ^ this.state) & MASK64;
    return ((x >> rotation) | (x << ((64n - rotation) & 63n))) & MASK64;
  }

  // A uniform double in [0, 1), as numpy's Generator.random().
  random() {
    return Number(this.next64() >> 11n) * 2 ** -53;
  }
}

// A seed for when none is given: 63 random bits, as the Python sampler draws one.
export function randomSeed() {
  const words = new Uint32Array(2);
  globalThis.crypto.getRandomValues(words);
  return ((BigInt(words[1] & 0x7fffffff) << 32n) | BigInt(words[0])).toString();
}
