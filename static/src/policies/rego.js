// A small Rego tokenizer for CodeMirror's StreamLanguage (no Rego mode exists on npm).
import { StreamLanguage } from "@codemirror/language";

const KEYWORDS = new Set([
  "package", "import", "default", "if", "else", "not", "some", "every", "in", "contains",
  "with", "as", "true", "false", "null",
]);
const BUILTIN_ROOTS = new Set(["input", "data"]);

export const rego = StreamLanguage.define({
  name: "rego",
  token(stream) {
    if (stream.eatSpace()) return null;
    if (stream.match("#")) {
      stream.skipToEnd();
      return "comment";
    }
    if (stream.match(/^"(?:[^"\\]|\\.)*"?/)) return "string";
    if (stream.match(/^`[^`]*`?/)) return "string";
    if (stream.match(/^-?\d+(\.\d+)?([eE][-+]?\d+)?/)) return "number";
    if (stream.match(/^(:=|==|!=|<=|>=|[=<>+\-*/%|&])/)) return "operator";
    const word = stream.match(/^[A-Za-z_][A-Za-z0-9_]*/);
    if (word) {
      const text = word[0];
      if (KEYWORDS.has(text)) return "keyword";
      if (BUILTIN_ROOTS.has(text)) return "variableName.special";
      if (stream.peek() === "(") return "function";
      return "variableName";
    }
    stream.next();
    return null;
  },
  languageData: { commentTokens: { line: "#" } },
});
