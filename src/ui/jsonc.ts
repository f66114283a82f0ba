/**
 * Reads VS Code's settings files (JSON with comments and trailing commas). Pure. Used only to *report*
 * folder values that VS Code hides from the extension in Restricted Mode, so a file we cannot read is
 * simply reported as setting nothing.
 */

/** Parses JSONC; undefined when the text is not valid even after removing comments and trailing commas. */
export function parseJsonc(text: string): unknown {
  const out: string[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i];
    if (c === '"') {
      // Copy the string with its escapes untouched.
      let j = i + 1;
      while (j < n && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      out.push(text.slice(i, j + 1));
      i = j + 1;
    } else if (c === '/' && text[i + 1] === '/') {
      while (i < n && text[i] !== '\n') i++;
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end < 0 ? n : end + 2;
    } else {
      if (c === '}' || c === ']') dropTrailingComma(out);
      out.push(c);
      i++;
    }
  }
  try {
    return JSON.parse(out.join('')) as unknown;
  } catch {
    return undefined;
  }
}

function dropTrailingComma(out: string[]): void {
  for (let k = out.length - 1; k >= 0; k--) {
    if (/^\s*$/.test(out[k])) continue;
    if (out[k] === ',') out.splice(k, 1);
    return;
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The values a settings object gives to `section`'s `keys` (relative names such as `listen.host`).
 * VS Code accepts both `"socksRelay.listen.host": …` and nested objects (`"socksRelay": {"listen": {…}}`),
 * so both spellings are found; `[language]` blocks are skipped (the proxy reads no language overrides).
 */
export function sectionValues(settings: unknown, section: string, keys: readonly string[]): Map<string, unknown> {
  const found = new Map<string, unknown>();
  const wanted = new Set(keys.map((k) => `${section}.${k}`));
  const visit = (obj: Record<string, unknown>, prefix: string): void => {
    for (const [k, v] of Object.entries(obj)) {
      if (prefix === '' && k.startsWith('[')) continue;
      const path = prefix === '' ? k : `${prefix}.${k}`;
      if (!(path === section || path.startsWith(`${section}.`) || `${section}.`.startsWith(`${path}.`))) continue;
      if (wanted.has(path)) found.set(path.slice(section.length + 1), v);
      else if (isPlainObject(v)) visit(v, path);
    }
  };
  if (isPlainObject(settings)) visit(settings, '');
  return found;
}
