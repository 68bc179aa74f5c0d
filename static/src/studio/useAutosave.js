// Drafts save themselves: a short pause after each change, the revision the editor loaded
// travels with every save, and a conflict (someone saved in between) stops saving for good
// in this tab: the server never gets a silent overwrite.
import { useCallback, useEffect, useRef, useState } from "react";

const DEBOUNCE_MS = 700;

export function useAutosave({ api, definition, initialRevision, enabled, onSaved }) {
  const [state, setState] = useState("saved"); // saved | dirty | saving | conflict | error
  const [message, setMessage] = useState("");
  const revision = useRef(initialRevision);
  const savedKey = useRef(null);
  const latest = useRef(definition);
  const inFlight = useRef(null);
  const conflict = useRef(false);
  const timer = useRef(null);
  const key = definition ? JSON.stringify(definition) : null;
  latest.current = definition;

  useEffect(() => {
    if (savedKey.current === null && key !== null) savedKey.current = key; // what was loaded
  }, [key]);

  const saveNow = useCallback(async () => {
    clearTimeout(timer.current);
    if (!enabled || conflict.current || !latest.current) return;
    while (inFlight.current) await inFlight.current;
    const body = latest.current;
    const bodyKey = JSON.stringify(body);
    if (bodyKey === savedKey.current) {
      setState("saved");
      return;
    }
    setState("saving");
    inFlight.current = api
      .saveDraft(body, revision.current)
      .then((result) => {
        revision.current = result.revision;
        savedKey.current = bodyKey;
        setMessage("");
        setState(JSON.stringify(latest.current) === bodyKey ? "saved" : "dirty");
        onSaved(result.problems);
      })
      .catch((error) => {
        if (error.status === 409) {
          conflict.current = true;
          setState("conflict");
        } else {
          setState("error");
        }
        setMessage(error.message);
      })
      .finally(() => {
        inFlight.current = null;
      });
    await inFlight.current;
  }, [api, enabled, onSaved]);

  useEffect(() => {
    if (!enabled || key === null || savedKey.current === null || key === savedKey.current || conflict.current) return undefined;
    setState((current) => (current === "saving" ? current : "dirty"));
    timer.current = setTimeout(saveNow, DEBOUNCE_MS);
    return () => clearTimeout(timer.current);
  }, [key, enabled, saveNow]);

  useEffect(() => {
    const warn = (event) => {
      if (savedKey.current !== null && JSON.stringify(latest.current) !== savedKey.current && enabled) {
        event.preventDefault();
        event.returnValue = "";
      }
    };
    window.addEventListener("beforeunload", warn);
    return () => window.removeEventListener("beforeunload", warn);
  }, [enabled]);

  // Resolves once everything typed so far is saved (or saving failed).
  const flush = useCallback(async () => {
    for (let attempt = 0; attempt < 3 && !conflict.current; attempt += 1) {
      await saveNow();
      if (JSON.stringify(latest.current) === savedKey.current) return true;
    }
    return false;
  }, [saveNow]);

  return { state, message, flush, saveNow };
}
