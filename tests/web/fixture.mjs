// The reference values the Python side wrote (tests/test_web_node.py runs these files with the path of
// its fixture in CHARRNN_WEB_FIXTURE): numpy's draws, Python's picks and stop matching.
import { readFileSync } from "node:fs";

export function fixture() {
  const path = process.env.CHARRNN_WEB_FIXTURE;
  if (!path) throw new Error("no CHARRNN_WEB_FIXTURE: run these through pytest tests/test_web_node.py");
  return JSON.parse(readFileSync(path, "utf8"));
}
