// The controls both pages share (the exported page here, and `charrnn serve`'s page): reading the
// request from the form, the output area, the status line and the model card.

export const $ = (id) => document.getElementById(id);

// The form's values; an empty field is left out (the model's default), a stop written as \n is a line break.
export function readControls() {
  const number = (id) => ($(id).value === "" ? undefined : Number($(id).value));
  const out = { prime: $("prime").value, length: number("length"), temperature: number("temperature"),
    topK: number("top_k"), topP: number("top_p") };
  if ($("seed").value !== "") out.seed = $("seed").value.trim();
  if ($("stop_at")?.value) out.stop = [$("stop_at").value.replaceAll("\\n", "\n")];
  return out;
}

// Empties the output, shows the prime, and returns the element the new text goes into.
export function startOutput() {
  const prime = document.createElement("span");
  prime.className = "prime";
  prime.textContent = $("prime").value;
  const text = document.createElement("span");
  text.id = "generated";
  $("output").replaceChildren(prime, text);
  return text;
}

export function setRunning(on) {
  $("generate").disabled = on;
  $("stop").disabled = !on;
}

export function status(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

// The model card: rows of [name, value].
export function showCard(rows) {
  const table = document.createElement("table");
  for (const [k, v] of rows) {
    const tr = table.insertRow();
    tr.insertCell().textContent = k;
    tr.insertCell().textContent = v;
  }
  $("card").replaceChildren(table);
}
