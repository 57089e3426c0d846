// Stop strings, as charrnn's Python `StopMatcher` (generate/stops.py): a sample ends where one appears,
// the stop itself left out, and text that may begin one is held back until the next characters decide.

export class StopMatcher {
  constructor(stops) {
    this.stops = stops.filter((s) => s);
    this.text = "";
    this.sent = 0;
  }

  // [text that may go out now, whether a stop string was reached]
  push(chars) {
    this.text += chars;
    const hits = this.stops.map((s) => this.text.indexOf(s, Math.max(0, this.sent - s.length + 1))).filter((h) => h >= 0);
    if (hits.length) {
      const end = Math.min(...hits);
      const out = this.text.slice(this.sent, end);
      this.sent = end;
      return [out, true];
    }
    let hold = 0;
    for (const s of this.stops)
      for (let k = 1; k < s.length; k++) if (this.text.endsWith(s.slice(0, k))) hold = Math.max(hold, k);
    const end = Math.max(this.sent, this.text.length - hold);
    const out = this.text.slice(this.sent, end);
    this.sent = end;
    return [out, false];
  }

  flush() {
    const out = this.text.slice(this.sent);
    this.sent = this.text.length;
    return out;
  }
}
