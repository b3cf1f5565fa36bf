// The error catalogue in src/admin/errors.ts and the table in docs/admin-api.md must
// list the same codes with the same status and meaning.
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { AdminErrorCode } from '../../src/admin/errors.ts';

const doc = readFileSync(new URL('../../docs/admin-api.md', import.meta.url), 'utf8');

/** Rows of the form | `CODE` | status | meaning |, with the backticks of the meaning removed. */
function documentedCodes(): Map<string, { status: number; summary: string }> {
  const rows = new Map<string, { status: number; summary: string }>();
  for (const match of doc.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \| (.+) \|$/gm)) {
    rows.set(match[1]!, { status: Number(match[2]), summary: match[3]!.replaceAll('`', '') });
  }
  return rows;
}

describe('error catalogue', () => {
  test('docs list every code', () => {
    const documented = documentedCodes();
    expect([...documented.keys()].sort()).toEqual(Object.keys(AdminErrorCode).sort());
  });

  test('docs match status and meaning', () => {
    const documented = documentedCodes();
    for (const [code, entry] of Object.entries(AdminErrorCode)) {
      expect(documented.get(code), code).toEqual({ status: entry.status, summary: entry.summary });
    }
  });
});
