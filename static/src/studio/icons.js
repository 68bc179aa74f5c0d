// Block icons: the catalogue names an icon; each maps to a small glyph. Categories get a
// colour (see editor.css .cat-*).
const GLYPHS = {
  globe: "◎",
  reply: "↩",
  layers: "❐",
  clock: "◷",
  split: "⋔",
  repeat: "↻",
  merge: "⤝",
  route: "⇶",
  pencil: "✎",
  shield: "◈",
  hand: "▶",
  calendar: "▦",
  webhook: "⚡",
  brain: "✦",
  user: "☺",
  "user-check": "☑",
  cube: "⬢",
  send: "➤",
  users: "☺",
  sparkles: "✦",
  cpu: "▣",
  tag: "⌗",
  message: "✉",
  "message-square": "✉",
  file: "▤",
  "file-text": "▤",
  filter: "⏷",
  code: "⟨⟩",
  key: "⚿",
  mail: "✉",
  database: "⛁",
};

export function glyph(icon) {
  return GLYPHS[icon] || "◆";
}

export const CATEGORY_ORDER = ["trigger", "connector", "model", "policy", "logic", "human", "flow"];
export const CATEGORY_LABELS = {
  trigger: "Triggers",
  connector: "Connectors",
  model: "Models",
  policy: "Policies",
  logic: "Logic",
  human: "Human",
  flow: "Flow",
};
