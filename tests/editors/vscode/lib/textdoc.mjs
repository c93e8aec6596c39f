// A document as VS Code sent it: text edited by LSP ranges. LSP characters are UTF-16 code units,
// which is what JavaScript strings index by, so offsets need no conversion.

/** Offset in `text` of an LSP position; a character past the line's end clamps to it, as LSP says. */
export function offsetAt(text, { line, character }) {
  let start = 0;
  for (let i = 0; i < line; i++) {
    const nl = text.indexOf("\n", start);
    if (nl < 0) return text.length;
    start = nl + 1;
  }
  const end = text.indexOf("\n", start);
  const lineEnd = end < 0 ? text.length : end;
  return Math.min(start + character, lineEnd);
}

/** `text` with `range` replaced by `newText`. */
export function replaceRange(text, range, newText) {
  const from = offsetAt(text, range.start);
  const to = offsetAt(text, range.end);
  return text.slice(0, from) + newText + text.slice(to);
}

/** One `contentChanges` entry of `textDocument/didChange`: incremental (with range) or whole. */
export function applyChange(text, change) {
  return change.range ? replaceRange(text, change.range, change.text) : change.text;
}

/** The text an inline completion item stands for (a snippet's placeholders dropped). */
export function insertTextOf(item) {
  const t = item.insertText;
  if (typeof t === "string") return t;
  if (t && typeof t.value === "string") return t.value.replace(/\$\{\d+(?::([^}]*))?\}|\$\d+/g, "$1");
  return "";
}

/** The document after accepting `item`, answered for `position` in `text`. */
export function applyItem(text, position, item) {
  const range = item.range ?? { start: position, end: position };
  return replaceRange(text, range, insertTextOf(item));
}

/** The items of an inline completion answer: a list object, an array, or nothing. */
export function itemsOf(result) {
  if (Array.isArray(result)) return result;
  if (result && Array.isArray(result.items)) return result.items;
  return [];
}

/**
 * What differs between two texts: the common prefix and suffix stripped, so the middle of
 * `after` is what an edit inserted and the middle of `before` what it removed. `at` (an offset
 * in `before`, e.g. the cursor's) places a pure insertion there when that fits both texts:
 * inserting "⏎x" after a "⏎" could otherwise read as "x⏎".
 */
export function diff(before, after, at) {
  const grown = after.length - before.length;
  if (at !== undefined && grown >= 0 && after.startsWith(before.slice(0, at)) && after.endsWith(before.slice(at))) {
    return { at, removed: "", inserted: after.slice(at, at + grown) };
  }
  let p = 0;
  while (p < before.length && p < after.length && before[p] === after[p]) p++;
  let s = 0;
  while (s < before.length - p && s < after.length - p
    && before[before.length - 1 - s] === after[after.length - 1 - s]) s++;
  return { at: p, removed: before.slice(p, before.length - s), inserted: after.slice(p, after.length - s) };
}
