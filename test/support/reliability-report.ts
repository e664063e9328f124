import { appendFileSync } from 'node:fs';

/** One line of docs/RELIABILITY.md: a scenario, what ran, what was injected, and what was counted. */
export interface ReliabilityRow {
  scenario: string;
  operations: string;
  faults: string;
  violations: number;
  notes: string;
}

/**
 * Records a row for `npm run reliability` (scripts/reliability.js), which sets RELIABILITY_ROWS to a
 * scratch file and renders the rows into docs/RELIABILITY.md. Under plain `npm test` it does nothing:
 * tests never rewrite tracked files.
 */
export function reportRow(row: ReliabilityRow): void {
  const file = process.env.RELIABILITY_ROWS;
  if (file) appendFileSync(file, JSON.stringify(row) + '\n');
}
