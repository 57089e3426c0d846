// One step of a trained charrnn model in the browser: the recurrent cells of PyTorch's nn.LSTM, nn.GRU
// and nn.RNN (gate order and biases as PyTorch keeps them), any depth and width, on float32 weights
// held in one WebAssembly memory so that the SIMD product reads them in place. The first layer's
// input product is tabulated per character (a row lookup), as the Python sampler does.

import { matvecJs, packedIndex, simdKernel } from "./kernel.js";

const GATES = { lstm: 4, gru: 3, rnn: 1 };
const pad4 = (n) => Math.ceil(n / 4) * 4;
const sigmoid = (x) => 1 / (1 + Math.exp(-x));

export class Engine {
  // tensors: {name: Float32Array} in PyTorch's layouts; config: the run's model settings.
  constructor(config, tensors, { kernel = "auto" } = {}) {
    const { cell, hidden, layers, vocab_size: vocab, embed_dim: embed } = config;
    if (!(cell in GATES)) throw new Error(`unknown cell ${JSON.stringify(cell)}`);
    Object.assign(this, { cell, hidden, layers, vocab });
    this.gateRows = GATES[cell] * hidden;
    this.#allocate(tensors, embed);
    const simd = kernel === "js" ? null : simdKernel(this.memory);
    if (kernel === "simd" && !simd) throw new Error("this browser has no WebAssembly SIMD");
    this.kernel = simd ? "simd" : "js";
    this.matvec = simd || matvecJs;
    this.#tabulate(tensors, embed);
    this.reset();
  }

  // Lays every matrix out padded to multiples of 4 (rows and columns) in one memory.
  #allocate(tensors, embed) {
    const H = this.hidden, Hp = pad4(H), G = pad4(this.gateRows), V = pad4(this.vocab);
    const plan = [];
    const take = (name, floats) => plan.push([name, floats]);
    take("table", this.vocab * G);
    take("embedScratch", pad4(embed));
    for (let i = 0; i < this.layers; i++) {
      if (i > 0) take(`wih${i}`, G * Hp);
      take(`whh${i}`, G * Hp);
      take(`bih${i}`, G);
      take(`bhh${i}`, G);
      take(`h${i}`, Hp);
      take(`c${i}`, Hp);
    }
    take("gates", G);
    take("hidden", G);
    take("headW", V * Hp);
    take("headB", V);
    take("logits", V);
    take("wih0", G * pad4(embed));
    const total = plan.reduce((sum, [, floats]) => sum + floats + 4, 0) * 4;
    this.memory = new WebAssembly.Memory({ initial: Math.ceil(total / 65536) + 1 });
    this.heap = new Float32Array(this.memory.buffer);
    this.at = {};
    let offset = 4; // 16-byte aligned, past address 0
    for (const [name, floats] of plan) {
      this.at[name] = offset;
      offset += pad4(floats);
    }
    const put = (name, source, rows, cols, stride) => {
      for (let r = 0; r < rows; r++) this.heap.set(source.subarray(r * cols, (r + 1) * cols), this.at[name] + r * stride);
    };
    const putMatrix = (name, source, rows, cols) => { // packed as the kernel reads it (kernel.js)
      const base = this.at[name], padded = pad4(cols);
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) this.heap[base + packedIndex(r, c, padded)] = source[r * cols + c];
    };
    for (let i = 0; i < this.layers; i++) {
      const inCols = i === 0 ? embed : H;
      putMatrix(`wih${i}`, tensors[`rnn.weight_ih_l${i}`], this.gateRows, inCols);
      putMatrix(`whh${i}`, tensors[`rnn.weight_hh_l${i}`], this.gateRows, H);
      put(`bih${i}`, tensors[`rnn.bias_ih_l${i}`], 1, this.gateRows, 0);
      put(`bhh${i}`, tensors[`rnn.bias_hh_l${i}`], 1, this.gateRows, 0);
      if (this.cell !== "gru") {
        // The GRU keeps b_hh apart (it sits inside r * (W_hn h + b_hn)); the others fold it in.
        const b = this.at[`bih${i}`], bh = this.at[`bhh${i}`];
        for (let k = 0; k < this.gateRows; k++) {
          this.heap[b + k] += this.heap[bh + k];
          this.heap[bh + k] = 0;
        }
      }
    }
    putMatrix("headW", tensors["head.weight"], this.vocab, H);
    put("headB", tensors["head.bias"], 1, this.vocab, 0);
    this.embedding = tensors["embed.weight"];
  }

  // table[v] = W_ih0 embed[v] + b_ih0: the first layer's input part for each character.
  #tabulate(tensors, embed) {
    const G = pad4(this.gateRows), E = pad4(embed), at = this.at;
    for (let v = 0; v < this.vocab; v++) {
      this.heap.set(this.embedding.subarray(v * embed, (v + 1) * embed), at.embedScratch);
      const row = at.table + v * G;
      this.heap.copyWithin(row, at.bih0, at.bih0 + G);
      this.matvec(this.heap, at.wih0, at.embedScratch, row, G, E);
    }
  }

  reset() {
    const Hp = pad4(this.hidden);
    for (let i = 0; i < this.layers; i++) {
      this.heap.fill(0, this.at[`h${i}`], this.at[`h${i}`] + Hp);
      this.heap.fill(0, this.at[`c${i}`], this.at[`c${i}`] + Hp);
    }
    this.#head();
  }

  // Feeds one character id; the logits for the next one are then `logits()`.
  step(id) {
    const heap = this.heap, at = this.at, G = pad4(this.gateRows), Hp = pad4(this.hidden);
    for (let i = 0; i < this.layers; i++) {
      const gates = at.gates, h = at[`h${i}`];
      if (i === 0) heap.copyWithin(gates, at.table + id * G, at.table + (id + 1) * G);
      else {
        heap.copyWithin(gates, at[`bih${i}`], at[`bih${i}`] + G);
        this.matvec(heap, at[`wih${i}`], at[`h${i - 1}`], gates, G, Hp);
      }
      if (this.cell === "gru") {
        heap.copyWithin(at.hidden, at[`bhh${i}`], at[`bhh${i}`] + G);
        this.matvec(heap, at[`whh${i}`], h, at.hidden, G, Hp);
      } else this.matvec(heap, at[`whh${i}`], h, gates, G, Hp);
      this.#cell(gates, h, at[`c${i}`]);
    }
    this.#head();
  }

  // The logits from the top layer's output.
  #head() {
    const heap = this.heap, at = this.at;
    heap.copyWithin(at.logits, at.headB, at.headB + pad4(this.vocab));
    this.matvec(heap, at.headW, at[`h${this.layers - 1}`], at.logits, pad4(this.vocab), pad4(this.hidden));
  }

  #cell(gates, h, c) {
    const heap = this.heap, H = this.hidden;
    if (this.cell === "lstm") {
      for (let k = 0; k < H; k++) {
        const i = sigmoid(heap[gates + k]), f = sigmoid(heap[gates + H + k]);
        const g = Math.tanh(heap[gates + 2 * H + k]), o = sigmoid(heap[gates + 3 * H + k]);
        heap[c + k] = f * heap[c + k] + i * g;
        heap[h + k] = o * Math.tanh(heap[c + k]);
      }
    } else if (this.cell === "gru") {
      const part = this.at.hidden;
      for (let k = 0; k < H; k++) {
        const r = sigmoid(heap[gates + k] + heap[part + k]);
        const z = sigmoid(heap[gates + H + k] + heap[part + H + k]);
        const n = Math.tanh(heap[gates + 2 * H + k] + r * heap[part + 2 * H + k]);
        heap[h + k] = (1 - z) * n + z * heap[h + k];
      }
    } else for (let k = 0; k < H; k++) heap[h + k] = Math.tanh(heap[gates + k]);
  }

  // The logits for the next character (a view: copy it to keep it past the next step).
  logits() {
    return this.heap.subarray(this.at.logits, this.at.logits + this.vocab);
  }

  // The recurrent state as plain arrays: {h: [layer][unit], c: (LSTM only) the same}.
  getState() {
    const part = (key) => Array.from({ length: this.layers }, (_, i) =>
      Array.from(this.heap.subarray(this.at[`${key}${i}`], this.at[`${key}${i}`] + this.hidden)));
    return this.cell === "lstm" ? { h: part("h"), c: part("c") } : { h: part("h") };
  }

  setState(state) {
    const parts = this.cell === "lstm" ? ["h", "c"] : ["h"];
    for (const key of parts) {
      const layers = state?.[key];
      const ok = Array.isArray(layers) && layers.length === this.layers &&
        layers.every((units) => units?.length === this.hidden && Array.from(units).every(Number.isFinite));
      if (!ok) throw new Error(`state.${key} must be ${this.layers} arrays of ${this.hidden} finite numbers`);
    }
    for (const key of parts) state[key].forEach((units, i) => this.heap.set(units, this.at[`${key}${i}`]));
    this.#head(); // the logits follow the state given
  }
}
