// JSON Schema helpers for the inspector: resolve $ref/anyOf, and check a config locally so
// the form says what is wrong before the server is asked (the server stays the authority).

export function resolve(schema, root) {
  if (!schema) return {};
  if (schema.$ref) {
    const name = schema.$ref.split("/").pop();
    const target = (root.$defs || {})[name] || {};
    return {
      ...target,
      title: schema.title || target.title,
      description: schema.description || target.description,
    };
  }
  return schema;
}

// anyOf [X, null] is "optional X"; anyOf of several real options stays a choice.
export function options(schema, root) {
  if (!schema.anyOf) return null;
  const real = schema.anyOf.map((option) => resolve(option, root)).filter((option) => option.type !== "null");
  return real;
}

export function kindOf(schema) {
  if (schema.enum) return "enum";
  if (schema.type === "string") return schema.format === "cel" || schema.format === "cel-template" ? "expression" : "string";
  if (schema.type === "integer" || schema.type === "number") return "number";
  if (schema.type === "boolean") return "boolean";
  if (schema.type === "array") return "array";
  if (schema.type === "object") {
    if (schema.properties && Object.keys(schema.properties).length) return "object";
    if (schema.additionalProperties && typeof schema.additionalProperties === "object") return "map";
    return "json";
  }
  return "json";
}

export function normalisePath(path) {
  return (path || "").replace(/\[(\d+)\]/g, ".$1");
}

export function localProblems(schema, value, root = schema, path = "") {
  schema = resolve(schema, root);
  const found = [];
  const add = (at, message) => found.push({ field: at, message, local: true });
  const choice = options(schema, root);
  if (choice) {
    if (value === null || value === undefined) return found;
    const fitting = choice.find((option) => matchesType(option, value));
    return fitting ? localProblems(fitting, value, root, path) : found;
  }
  if (value === undefined || value === null) return found;
  const kind = kindOf(schema);
  if (kind === "number") {
    if (typeof value !== "number" || Number.isNaN(value)) add(path, "must be a number");
    else {
      if (schema.type === "integer" && !Number.isInteger(value)) add(path, "must be a whole number");
      if (schema.minimum !== undefined && value < schema.minimum) add(path, `must be at least ${schema.minimum}`);
      if (schema.maximum !== undefined && value > schema.maximum) add(path, `must be at most ${schema.maximum}`);
      if (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum)
        add(path, `must be more than ${schema.exclusiveMinimum}`);
    }
  } else if (kind === "string" || kind === "expression") {
    if (typeof value !== "string") add(path, "must be text");
    else {
      if (schema.minLength && value.length < schema.minLength) add(path, "is required");
      if (schema.maxLength && value.length > schema.maxLength) add(path, `must be at most ${schema.maxLength} characters`);
      if (schema.pattern && value && !patternMatches(schema.pattern, value))
        add(path, "has characters that are not allowed here");
    }
  } else if (kind === "object") {
    for (const name of schema.required || []) {
      const item = value[name];
      if (item === undefined || item === "") add(join(path, name), "is required");
    }
    for (const [name, sub] of Object.entries(schema.properties || {})) {
      if (value[name] !== undefined) found.push(...localProblems(sub, value[name], root, join(path, name)));
    }
  } else if (kind === "map") {
    const count = Object.keys(value).length;
    if (schema.minProperties && count < schema.minProperties) add(path, `needs at least ${schema.minProperties} entry`);
    for (const [key, item] of Object.entries(value)) {
      if (!key) add(path, "every entry needs a name");
      found.push(...localProblems(schema.additionalProperties, item, root, join(path, key)));
    }
  } else if (kind === "array" && Array.isArray(value)) {
    if (schema.minItems && value.length < schema.minItems) add(path, `needs at least ${schema.minItems} item(s)`);
    value.forEach((item, index) => found.push(...localProblems(schema.items || {}, item, root, join(path, String(index)))));
  }
  return found;
}

function join(path, name) {
  return path ? `${path}.${name}` : name;
}

export function matchesType(schema, value) {
  switch (schema.type) {
    case "object":
      return value !== null && typeof value === "object" && !Array.isArray(value);
    case "array":
      return Array.isArray(value);
    case "string":
      return typeof value === "string";
    case "number":
    case "integer":
      return typeof value === "number";
    case "boolean":
      return typeof value === "boolean";
    default:
      return true;
  }
}

export function emptyValue(schema, root) {
  schema = resolve(schema, root);
  if (schema.default !== undefined && schema.default !== null) return structuredClone(schema.default);
  switch (kindOf(schema)) {
    case "object": {
      const value = {};
      for (const name of schema.required || []) value[name] = emptyValue(schema.properties[name], root);
      return value;
    }
    case "map":
    case "json":
      return {};
    case "array":
      return [];
    case "boolean":
      return false;
    case "number":
      return undefined;
    default:
      return "";
  }
}

// Server patterns are Python regular expressions; one JavaScript cannot compile is left to
// the server's validation rather than breaking the form.
function patternMatches(pattern, value) {
  try {
    return new RegExp(pattern).test(value);
  } catch {
    return true;
  }
}
