// View state the canvas nodes read without it being part of the flow document:
// the block catalogue, validation problems and the current test run's steps.
import { createContext, useContext } from "react";

export const EditorView = createContext({ blocks: {}, problems: {}, steps: {}, readOnly: true });

export function useEditorView() {
  return useContext(EditorView);
}
