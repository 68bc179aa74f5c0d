// Keyboard shortcuts for the editor. Typing in a field never triggers them (except save).
import { useEffect, useRef } from "react";

function typing(target) {
  return target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}

export function useShortcuts({ root, readOnly, actions }) {
  const latest = useRef(actions);
  latest.current = actions;
  useEffect(() => {
    const onKey = (event) => {
      const act = latest.current;
      const mod = event.ctrlKey || event.metaKey;
      const key = event.key.toLowerCase();
      if (mod && key === "s") {
        event.preventDefault();
        act.save();
        return;
      }
      if (mod && key === "enter") {
        event.preventDefault();
        act.test();
        return;
      }
      if (typing(event.target)) return;
      if (mod && key === "z" && !event.shiftKey && !readOnly) act.undo();
      else if (mod && ((key === "z" && event.shiftKey) || key === "y") && !readOnly) act.redo();
      else if (mod && key === "c") act.copy();
      else if (mod && key === "v" && !readOnly) act.paste();
      else if (mod && key === "d" && !readOnly) act.duplicate();
      else if (!mod && !event.altKey && key === "f") act.fit();
      else if (!mod && !event.altKey && key === "l" && !readOnly) act.tidy();
      else if (key === "escape") act.escape();
      else return;
      event.preventDefault();
    };
    // The whole page, not just the editor's box: focus lands on <body> after a node is
    // deleted or on load, and Ctrl+S must not open the browser's "Save page" there.
    const page = root.ownerDocument;
    page.addEventListener("keydown", onKey);
    return () => page.removeEventListener("keydown", onKey);
  }, [root, readOnly]);
}
