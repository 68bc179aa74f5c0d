// Undo/redo over document snapshots ({nodes, edges}). Callers record a snapshot *before*
// each discrete change (add, delete, connect, drag end, config edit, paste, layout).
import { useCallback, useRef, useState } from "react";

const LIMIT = 100;

export function useHistory() {
  const past = useRef([]);
  const future = useRef([]);
  const [, setVersion] = useState(0);
  const bump = () => setVersion((value) => value + 1);

  const record = useCallback((state) => {
    past.current.push(state);
    if (past.current.length > LIMIT) past.current.shift();
    future.current = [];
    bump();
  }, []);

  const undo = useCallback((current) => {
    const previous = past.current.pop();
    if (!previous) return null;
    future.current.push(current);
    bump();
    return previous;
  }, []);

  const redo = useCallback((current) => {
    const next = future.current.pop();
    if (!next) return null;
    past.current.push(current);
    bump();
    return next;
  }, []);

  return {
    record,
    undo,
    redo,
    canUndo: past.current.length > 0,
    canRedo: future.current.length > 0,
  };
}
