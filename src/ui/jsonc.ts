/**
 * Reads VS Code's settings files (JSON with comments and trailing commas). Pure. Used only to *report*
 * folder values that VS Code hides from the extension in Restricted Mode, so a file we cannot read is
 * simply reported as setting nothing.
 */
import { parse, type ParseError } from 'jsonc-parser';

/** Parses JSONC with VS Code's own parser; undefined when the text has syntax errors. */
export function parseJsonc(text: string): unknown {
  const errors: ParseError[] = [];
  const value: unknown = parse(text, errors, { allowTrailingComma: true, disallowComments: false });
  return errors.length === 0 ? value : undefined;
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
