import type { HeldLock } from '../admin/held-lock.interface';

/**
 * What the CLI prints: a table or JSON, and error lines with credentials removed.
 * @internal
 */

/** `2m03s`, `4.2s`, `expired`. */
export function expiresIn(ms: number): string {
  if (ms <= 0) return 'expired';
  if (ms >= Number.MAX_SAFE_INTEGER / 2) return 'never';
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** The table of `list`: key, kind, holder, token, expires in. */
export function heldTable(held: readonly HeldLock[], now: number): string {
  if (held.length === 0) return 'no locks held\n';
  const rows = [
    ['KEY', 'KIND', 'HOLDER', 'TOKEN', 'EXPIRES IN'],
    ...held.map((h) => [
      h.key,
      h.permit === undefined ? h.kind : `${h.kind} (permit ${h.permit})`,
      h.identity || '-',
      String(h.fencingToken),
      expiresIn(h.expiresAt - now),
    ]),
  ];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return (
    rows
      .map((r) =>
        r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join('  '),
      )
      .join('\n') + '\n'
  );
}

/**
 * `text` with credentials removed: the user-info part of URLs (`redis://user:secret@host` →
 * `redis://***@host`), `password=` parameters, and every `secrets` string (the URLs as given).
 */
export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length >= 4) out = out.split(secret).join('***');
  }
  return out
    .replace(/([a-z][a-z0-9+.-]*:\/\/)[^\s/@]*@/gi, '$1***@')
    .replace(/(password=)[^&\s]*/gi, '$1***');
}
