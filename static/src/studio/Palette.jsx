// The block palette: every registered block grouped by category, searchable. Drag a block
// onto the canvas, or press Enter/click to add it after the selected node.
import { useMemo, useState } from "react";
import { CATEGORY_LABELS, CATEGORY_ORDER, glyph } from "./icons.js";

export const DRAG_TYPE = "application/x-flowgate-block";

export default function Palette({ catalog, onAdd, readOnly }) {
  const [query, setQuery] = useState("");
  const groups = useMemo(() => {
    const needle = query.trim().toLowerCase();
    const matches = catalog.filter(
      (block) =>
        !needle ||
        block.title.toLowerCase().includes(needle) ||
        block.key.toLowerCase().includes(needle) ||
        (block.description || "").toLowerCase().includes(needle),
    );
    const byCategory = new Map();
    for (const block of matches) {
      if (!byCategory.has(block.category)) byCategory.set(block.category, []);
      byCategory.get(block.category).push(block);
    }
    const order = [...CATEGORY_ORDER, ...[...byCategory.keys()].filter((c) => !CATEGORY_ORDER.includes(c))];
    return order.filter((category) => byCategory.has(category)).map((category) => [category, byCategory.get(category)]);
  }, [catalog, query]);

  return (
    <aside className="palette" aria-label="Blocks">
      <div className="palette-search">
        <label className="visually-hidden" htmlFor="palette-search">Search blocks</label>
        <input
          id="palette-search"
          type="search"
          placeholder="Search blocks…"
          value={query}
          onChange={(event) => setQuery(event.target.value)}
        />
      </div>
      <div className="palette-groups">
        {groups.length === 0 && <p className="palette-empty">No block matches “{query}”.</p>}
        {groups.map(([category, blocks]) => (
          <section key={category} className="palette-group" aria-label={CATEGORY_LABELS[category] || category}>
            <h3 className="palette-heading">{CATEGORY_LABELS[category] || category}</h3>
            <ul>
              {blocks.map((block) => (
                <li key={block.key}>
                  <button
                    type="button"
                    className={`palette-item cat-${block.category}`}
                    draggable={!readOnly}
                    disabled={readOnly}
                    data-block={block.key}
                    title={block.description || block.title}
                    onDragStart={(event) => {
                      event.dataTransfer.setData(DRAG_TYPE, block.key);
                      event.dataTransfer.effectAllowed = "move";
                    }}
                    onClick={() => onAdd(block.key)}
                  >
                    <span className="block-icon" aria-hidden="true">{glyph(block.icon)}</span>
                    <span className="palette-text">
                      <span className="palette-title">{block.title}</span>
                      <span className="palette-desc">{firstSentence(block.description)}</span>
                    </span>
                  </button>
                </li>
              ))}
            </ul>
          </section>
        ))}
      </div>
    </aside>
  );
}

function firstSentence(text) {
  if (!text) return "";
  const sentence = text.split(/(?<=\.)\s/)[0];
  return sentence.length > 80 ? `${sentence.slice(0, 77)}…` : sentence;
}
