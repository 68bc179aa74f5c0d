// The policy editor island: CodeMirror over the draft textarea, compile errors from the
// server shown in the lint gutter, and the editor's text sent with playground requests.
import "./editor.css";
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import { HighlightStyle, bracketMatching, syntaxHighlighting } from "@codemirror/language";
import { lintGutter, setDiagnostics } from "@codemirror/lint";
import { EditorState } from "@codemirror/state";
import { EditorView, highlightActiveLine, keymap, lineNumbers } from "@codemirror/view";
import { tags } from "@lezer/highlight";
import { rego } from "./rego.js";

const highlight = HighlightStyle.define([
  { tag: tags.keyword, class: "tok-keyword" },
  { tag: tags.string, class: "tok-string" },
  { tag: tags.number, class: "tok-number" },
  { tag: tags.comment, class: "tok-comment" },
  { tag: tags.special(tags.variableName), class: "tok-root" },
  { tag: tags.operator, class: "tok-operator" },
]);

function diagnosticsFrom(container, state) {
  const items = container ? container.querySelectorAll("[data-line]") : [];
  return Array.from(items).map((item) => {
    const lineNumber = Math.min(Math.max(Number(item.dataset.line) || 1, 1), state.doc.lines);
    const line = state.doc.line(lineNumber);
    const from = Math.min(line.from + Math.max((Number(item.dataset.column) || 1) - 1, 0), line.to);
    return { from, to: Math.min(from + 1, line.to), severity: "error", message: item.dataset.message };
  });
}

function mount(form) {
  const textarea = form.querySelector("textarea[name=source]");
  const host = form.querySelector("[data-policy-editor]");
  if (!textarea || !host) return;
  const readOnly = host.hasAttribute("data-readonly");
  const view = new EditorView({
    parent: host,
    state: EditorState.create({
      doc: textarea.value,
      extensions: [
        lineNumbers(),
        history(),
        bracketMatching(),
        highlightActiveLine(),
        lintGutter(),
        rego,
        syntaxHighlighting(highlight),
        keymap.of([...defaultKeymap, ...historyKeymap, indentWithTab]),
        EditorState.readOnly.of(readOnly),
        // CodeMirror injects its base theme as <style> elements: the page's CSP admits
        // them by this request's nonce (no 'unsafe-inline').
        EditorView.cspNonce.of(host.dataset.cspNonce || ""),
        EditorView.contentAttributes.of({ "aria-label": textarea.getAttribute("aria-label") || "Policy source (Rego)" }),
        EditorView.updateListener.of((update) => {
          if (update.docChanged) textarea.value = update.state.doc.toString();
        }),
      ],
    }),
  });
  textarea.hidden = true;
  const showErrors = () => {
    const container = document.querySelector("[data-compile-errors]");
    view.dispatch(setDiagnostics(view.state, diagnosticsFrom(container, view.state)));
  };
  showErrors();
  document.body.addEventListener("htmx:afterSwap", showErrors);
  const playground = document.querySelector("[data-playground-form]");
  if (playground && !readOnly) {
    playground.addEventListener("htmx:configRequest", (event) => {
      event.detail.parameters.source = view.state.doc.toString();
    });
  }
}

document.querySelectorAll("[data-policy-editor-form]").forEach(mount);
