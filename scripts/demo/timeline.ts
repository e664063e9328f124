/**
 * The demo's HTML timeline: one row per replica, one cell per cron tick second, saying which replica
 * ran the tick and why the others stood aside, with the SIGKILL moment, the payments and the warm-up
 * marked. One self-contained file: inline CSS, no scripts, no external assets.
 */
import { COLUMN_GROUPS, eventRows, type Check, type ReplicaRecord } from './lock-events';

/** Cell colours; `scripts/check-timeline.ts` looks for `ran` in the screenshot. */
export const COLORS = {
  ran: '#1f9d55',
  skipped: '#d9dee5',
  down: '#5b6472',
  unknown: '#ffffff',
  kill: '#d62828',
  warn: '#f4a261',
} as const;

/** Something a job recorded (`demo:log`): a payment, a warm-up, a cleanup. */
export interface TimelineNote {
  at: number;
  replica: string;
  what: string;
  detail?: string;
}

/** Everything the timeline shows. */
export interface TimelineData {
  /** Epoch ms of the run's end. */
  generatedAt: number;
  /** The lock backend, as the demo printed it. */
  backend: string;
  /** First and last tick of the window (epoch seconds). */
  firstTick: number;
  lastTick: number;
  /** Tick second → runs recorded (`demo:count:report`). */
  runsPerTick: Map<number, number>;
  /** The tick the killed replica may have claimed just before SIGKILL, when it did not run. */
  excusedTick?: number;
  replicas: ReplicaRecord[];
  killed: { name: string; at: number };
  notes: TimelineNote[];
  checks: Check[];
}

const esc = (s: string) =>
  s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
const clock = (ms: number) => new Date(ms).toISOString().slice(11, 23);

/** Short label of a note, shown in the cell of the replica that did it. */
function noteLabel(n: TimelineNote): string {
  if (n.what === 'payment') return `paid ${n.detail ?? ''}`.trim();
  if (n.what === 'warmups') return 'warm-up';
  if (n.what === 'cleanups') return 'cleanup';
  // The @Leader outbox relay (src/outbox/outbox-relay.service.ts): who led, in which term.
  if (n.what === 'outbox-relay') return `leads relay, ${n.detail ?? ''}`.trim();
  return n.what;
}

/** One replica's cell for tick `t`: its class, text and hover title. */
function cell(r: ReplicaRecord, t: number): { cls: string; text: string; title: string } {
  const start = t * 1000;
  if (r.ranTicks.has(t)) return { cls: 'ran', text: 'ran', title: `${r.name} ran this tick` };
  const skipped = r.skippedTicks.get(t);
  if (skipped === 'skipped:tick-claimed') {
    return {
      cls: 'skip',
      text: 'skip',
      title: `${r.name} skipped: tick claimed by another replica`,
    };
  }
  if (skipped) {
    return { cls: 'skip other', text: skipped.slice(8), title: `${r.name}: ${skipped}` };
  }
  // Its scheduler starts just before it answers `ready`; a tick fired before that had no chance.
  if (start < r.readyAt) return { cls: 'down', text: '', title: `${r.name} not started yet` };
  if (r.stoppedAt !== undefined && start > r.stoppedAt) {
    return { cls: 'down', text: '', title: `${r.name} stopped` };
  }
  return { cls: 'unknown', text: '?', title: `${r.name}: nothing recorded for this tick` };
}

/** The timeline page. */
export function renderTimeline(d: TimelineData): string {
  const ticks: number[] = [];
  for (let t = d.firstTick; t <= d.lastTick; t += 1) ticks.push(t);
  const killTick = Math.floor(d.killed.at / 1000);
  const killPct = ((d.killed.at % 1000) / 1000) * 100;
  const killLine = (t: number) =>
    t === killTick ? `<span class="kill-line" style="left:${killPct.toFixed(1)}%"></span>` : '';
  const notesAt = (replica: string, t: number) =>
    d.notes.filter(
      (n) =>
        n.replica === replica &&
        Math.min(d.lastTick, Math.max(d.firstTick, Math.floor(n.at / 1000))) === t,
    );

  const header = ticks
    .map((t) => {
      const label = t === killTick ? `<b class="kill-label">${esc(d.killed.name)} killed</b>` : '';
      return `<th title="tick ${clock(t * 1000)} UTC">+${t - d.firstTick}${label}${killLine(t)}</th>`;
    })
    .join('');
  const rows = d.replicas
    .map((r) => {
      const fate = r.killed
        ? `SIGKILL at +${((r.stoppedAt! - d.firstTick * 1000) / 1000).toFixed(1)} s`
        : 'stopped at the end';
      const cells = ticks
        .map((t) => {
          const c = cell(r, t);
          const marks = notesAt(r.name, t)
            .map(
              (n) =>
                `<span class="note" title="${esc(clock(n.at))} UTC">${esc(noteLabel(n))}</span>`,
            )
            .join('');
          return `<td class="${c.cls}" title="${esc(c.title)}">${esc(c.text)}${marks}${killLine(t)}</td>`;
        })
        .join('');
      return `<tr><th class="who">replica ${esc(r.name)}<small>${esc(fate)}</small></th>${cells}</tr>`;
    })
    .join('\n');
  const runs = ticks
    .map((t) => {
      const n = d.runsPerTick.get(t) ?? 0;
      const cls = n === 1 ? 'once' : t === d.excusedTick ? 'excused' : 'bad';
      const title =
        t === d.excusedTick
          ? `not run: the tick ${d.killed.name} may have claimed just before SIGKILL`
          : `${n} run(s)`;
      return `<td class="${cls}" title="${esc(title)}">${n}${killLine(t)}</td>`;
    })
    .join('');

  const table = eventRows(d.replicas);
  const groupRow = `<tr><th colspan="2"></th>${COLUMN_GROUPS.map(([title, span]) => `<th colspan="${span}" class="group">${esc(title)}</th>`).join('')}</tr>`;
  const eventTable =
    groupRow +
    table
      .map(
        (row, i) =>
          `<tr>${row.map((c, j) => (i === 0 ? `<th>${esc(c)}</th>` : j < 2 ? `<th class="name">${esc(c)}</th>` : `<td>${esc(c)}</td>`)).join('')}</tr>`,
      )
      .join('\n');
  const checks = d.checks
    .map(
      ([ok, line]) =>
        `<li class="${ok ? 'ok' : 'fail'}"><b>${ok ? 'ok' : 'FAIL'}</b> ${esc(line)}</li>`,
    )
    .join('\n');
  const passed = d.checks.every(([ok]) => ok);
  const notes = d.notes
    .map(
      (n) =>
        `<li>+${((n.at - d.firstTick * 1000) / 1000).toFixed(1)} s: ${esc(noteLabel(n))} on ${esc(n.replica)}</li>`,
    )
    .join('');

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>nestjs-distributed-lock demo: who ran each tick</title>
<style>
  body { font: 14px/1.4 "DejaVu Sans", "Liberation Sans", Arial, sans-serif; color: #1d232b; margin: 24px; background: #f7f8fa; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  h2 { font-size: 15px; margin: 22px 0 8px; }
  p.sub { margin: 0 0 16px; color: #4a5563; }
  .verdict { display: inline-block; padding: 2px 10px; border-radius: 4px; color: #fff; font-weight: bold; background: ${passed ? COLORS.ran : COLORS.kill}; }
  table.tl { border-collapse: separate; border-spacing: 2px; }
  table.tl th, table.tl td { position: relative; min-width: 44px; height: 40px; text-align: center; font-size: 12px; padding: 0 2px; }
  table.tl thead th { height: 34px; vertical-align: bottom; color: #4a5563; font-weight: normal; }
  table.tl th.who { text-align: left; min-width: 150px; font-size: 14px; padding-right: 8px; }
  table.tl th.who small { display: block; font-weight: normal; color: #6b7583; font-size: 11px; }
  td.ran { background: ${COLORS.ran}; color: #fff; font-weight: bold; }
  td.skip { background: ${COLORS.skipped}; color: #5b6472; }
  td.skip.other { background: ${COLORS.warn}; color: #1d232b; }
  td.down { background: repeating-linear-gradient(45deg, ${COLORS.down}, ${COLORS.down} 4px, #7b8492 4px, #7b8492 8px); }
  td.unknown { background: ${COLORS.unknown}; color: #6b7583; border: 1px dashed #9aa3af; }
  td.once { color: ${COLORS.ran}; font-weight: bold; }
  td.bad { background: ${COLORS.kill}; color: #fff; font-weight: bold; }
  td.excused { background: ${COLORS.warn}; font-weight: bold; }
  .note { display: block; font-size: 10px; font-weight: bold; line-height: 1.1; background: #fff3bf; color: #5c4400; border-radius: 3px; margin: 1px 0; white-space: nowrap; }
  .kill-line { position: absolute; top: -2px; bottom: -2px; width: 3px; margin-left: -1px; background: ${COLORS.kill}; z-index: 2; }
  .kill-label { position: absolute; top: 0; left: 50%; transform: translateX(-50%); white-space: nowrap; color: ${COLORS.kill}; font-size: 12px; }
  .legend span { display: inline-block; width: 14px; height: 14px; vertical-align: -2px; margin: 0 4px 0 14px; border-radius: 2px; }
  table.ev { border-collapse: collapse; background: #fff; }
  table.ev th, table.ev td { border: 1px solid #d9dee5; padding: 3px 8px; font-size: 12px; }
  table.ev td { text-align: right; font-variant-numeric: tabular-nums; }
  table.ev th.group { text-align: center; background: #eef1f5; }
  table.ev th.name { text-align: left; font-weight: normal; }
  ul.checks { list-style: none; padding: 0; margin: 0; }
  ul.checks li { margin: 2px 0; font-size: 13px; }
  ul.checks li.ok b { color: ${COLORS.ran}; }
  ul.checks li.fail b { color: ${COLORS.kill}; }
  ul.notes { margin: 0; padding-left: 18px; font-size: 13px; }
</style>
</head>
<body>
<h1>Who ran each cron tick <span class="verdict">${passed ? 'PASS' : 'FAIL'}</span></h1>
<p class="sub">npm run demo, ${esc(new Date(d.generatedAt).toISOString())}: three replicas of the example app, lock backend ${esc(d.backend)};
<code>TasksService.report</code> is <code>@Cron(EVERY_SECOND) @Exclusive()</code>. Replica ${esc(d.killed.name)} was killed (SIGKILL) at +${((d.killed.at - d.firstTick * 1000) / 1000).toFixed(1)} s (red line).</p>
<p class="legend"><span style="background:${COLORS.ran}"></span>ran the tick<span style="background:${COLORS.skipped}"></span>skipped: another replica claimed the tick<span style="background:${COLORS.warn}"></span>skipped for another reason / not run (excused)<span style="background:${COLORS.down}"></span>not running<span style="background:#fff;border:1px dashed #9aa3af"></span>running, nothing recorded</p>
<table class="tl">
<thead><tr><th class="who">tick (s)</th>${header}</tr></thead>
<tbody>
${rows}
<tr><th class="who">runs of the tick<small>audit: exactly 1 expected</small></th>${runs}</tr>
</tbody>
</table>
<h2>Checks</h2>
<ul class="checks">
${checks}
</ul>
<h2>Lock events per replica (LockService.events)</h2>
<table class="ev">
${eventTable}
</table>
<h2>What the jobs recorded</h2>
<ul class="notes">${notes}</ul>
</body>
</html>
`;
}
