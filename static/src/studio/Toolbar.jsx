// The editor's top bar: back to the list, the flow's name, save state, edit and view
// actions, test run and publish.
const SAVE_LABELS = {
  saved: "All changes saved",
  dirty: "Unsaved changes…",
  saving: "Saving…",
  conflict: "Not saved: conflict",
  error: "Not saved",
};

export default function Toolbar({
  settings,
  name,
  onName,
  saveState,
  saveMessage,
  published,
  canUndo,
  canRedo,
  onUndo,
  onRedo,
  onTidy,
  onFit,
  onTest,
  onPublish,
  problemCount,
  exportUrl,
  testing,
}) {
  const readOnly = !settings.canEdit;
  return (
    <header className="editor-toolbar">
      <a className="toolbar-back" href={settings.listUrl} aria-label="Back to all flows">
        <span aria-hidden="true">←</span> Flows
      </a>
      <div className="flow-name">
        <label className="visually-hidden" htmlFor="flow-name">Flow name</label>
        <input id="flow-name" type="text" maxLength={200} value={name} disabled={readOnly} onChange={(event) => onName(event.target.value)} />
        {published ? <span className="status status-published">v{published} live</span> : <span className="status status-draft">Draft</span>}
      </div>
      <span className={`save-state save-${saveState}`} role="status" title={saveMessage || undefined} data-save-state={saveState}>
        {readOnly ? "Read only" : SAVE_LABELS[saveState]}
      </span>
      <div className="toolbar-group" role="group" aria-label="Edit">
        <button type="button" className="icon-button" onClick={onUndo} disabled={!canUndo || readOnly} aria-label="Undo" title="Undo (Ctrl+Z)">↶</button>
        <button type="button" className="icon-button" onClick={onRedo} disabled={!canRedo || readOnly} aria-label="Redo" title="Redo (Ctrl+Shift+Z)">↷</button>
        <button type="button" className="icon-button" onClick={onTidy} disabled={readOnly} aria-label="Tidy up layout" title="Tidy up (L)">⊞</button>
        <button type="button" className="icon-button" onClick={onFit} aria-label="Fit to view" title="Fit (F)">⤢</button>
        <a className="icon-button" href={exportUrl} aria-label="Export flow file" title="Export .flow.json">⤓</a>
      </div>
      {settings.guideUrl && <a className="button button-quiet guide-link" href={settings.guideUrl} target="_blank" rel="noopener">Guide</a>}
      <a className="button button-quiet runs-link" href={settings.runsUrl}>Runs</a>
      <div className="toolbar-actions">
        {problemCount > 0 && <span className="problem-count" title="Problems to fix before publishing">⚠ {problemCount}</span>}
        <button type="button" className="button" onClick={onTest} disabled={readOnly || testing} title="Test run (Ctrl+Enter)">
          <span aria-hidden="true">▶</span> {testing ? "Running…" : "Test run"}
        </button>
        {settings.canPublish && (
          <button type="button" className="button button-primary" onClick={onPublish}>Publish</button>
        )}
        {settings.requestPublishUrl && (
          <a className={settings.canPublish ? "button" : "button button-primary"} href={settings.requestPublishUrl}>Request publish</a>
        )}
      </div>
    </header>
  );
}
