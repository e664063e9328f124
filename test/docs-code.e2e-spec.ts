import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  REPO_ROOT,
  docFiles,
  extractSnippets,
  missingPaths,
  typeCheckSnippets,
} from './support/doc-snippets';

/**
 * Docs that stay true: every ```ts block of README.md and docs/*.md (pages added later included)
 * type-checks against the library as `nestjs-distributed-lock`, and every repository path a page
 * cites exists. Type-checking only: nothing is run, no server is needed.
 */
describe('docs: code blocks compile, cited paths exist', () => {
  const files = docFiles();
  const snippets = files.flatMap((f) => extractSnippets(f));

  it('finds the pages and their ts blocks', () => {
    expect(files.some((f) => f.endsWith('README.md'))).toBe(true);
    expect(files.length).toBeGreaterThan(1);
    // Each page's blocks counted by hand would rot; a floor catches an extractor that finds none.
    expect(snippets.length).toBeGreaterThanOrEqual(20);
    for (const skipped of snippets.filter((s) => s.skip)) {
      expect(skipped.skip).toMatch(/\S{3}/);
    }
  });

  it('type-checks every ts block of README.md and docs/*.md (one program, strict)', () => {
    const errors = typeCheckSnippets(snippets).map((d) => `${d.where}: ${d.message}`);
    expect(errors).toEqual([]);
  });

  it('cites no repository path that does not exist', () => {
    const missing = files.flatMap((f) => missingPaths(f)).map((m) => `${m.where}: ${m.path}`);
    expect(missing).toEqual([]);
  });
});

describe('docs check: fails when the docs go stale', () => {
  let work: string;
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'doc-snippets-'));
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('reports the blocks that use an export after it is renamed in the library (a temp copy)', () => {
    const lib = join(work, 'lib');
    cpSync(join(REPO_ROOT, 'libs/distributed-lock/src'), lib, { recursive: true });
    const index = join(lib, 'index.ts');
    const before = readFileSync(index, 'utf8');
    const renamed = before.replace(
      "export { LockService } from './lock.service';",
      "export { LockService as LockManagerService } from './lock.service';",
    );
    expect(renamed).not.toBe(before);
    writeFileSync(index, renamed);
    const snippets = docFiles().flatMap((f) => extractSnippets(f));
    const users = snippets.filter((s) => !s.skip && /\bLockService\b/.test(s.code));
    expect(users.length).toBeGreaterThan(5);

    const errors = typeCheckSnippets(snippets, lib);
    const renamedExport = errors.filter((e) => /TS(2305|2724)\b.*'LockService'/.test(e.message));
    // Every block importing LockService fails, at the page and line of its import.
    expect(new Set(renamedExport.map((e) => e.where.split(':')[0])).size).toBeGreaterThan(2);
    expect(renamedExport.length).toBe(
      users.filter((s) =>
        /import[^;]*\bLockService\b[^;]*from 'nestjs-distributed-lock'/.test(s.code),
      ).length,
    );
  });

  it('reports a block with a type error, and honours skip and prelude', () => {
    const page = join(work, 'PAGE.md');
    writeFileSync(
      page,
      [
        '```ts',
        "import { LockService } from 'nestjs-distributed-lock';",
        'declare const locks: LockService;',
        "const n: number = locks.tryAcquire('k');",
        '```',
        '<!-- snippet: skip pseudo-code -->',
        '```ts',
        'this is not TypeScript',
        '```',
        "<!-- snippet: prelude=import { LockService } from 'nestjs-distributed-lock'; declare const locks: LockService; -->",
        '```ts',
        "void locks.runExclusive('k', () => 1);",
        '```',
        '',
      ].join('\n'),
    );
    const snippets = extractSnippets(page, work);
    expect(snippets.map((s) => [s.line, s.skip ?? null])).toEqual([
      [2, null],
      [8, 'pseudo-code'],
      [12, null],
    ]);
    const errors = typeCheckSnippets(snippets);
    expect(errors.map((e) => e.where)).toEqual(['PAGE.md:4']);
    expect(errors[0].message).toMatch(/^TS2322: Type 'Promise<Lock \| null>' is not assignable/);
  });

  it('reports a cited repository path that does not exist', () => {
    const page = join(work, 'PATHS.md');
    writeFileSync(
      page,
      [
        'See `libs/distributed-lock/src/redis/lock.scripts.ts` and redis/quorum.ts.',
        'Stale: `libs/distributed-lock/src/redlock/lock.scripts.ts`, src/redlock/quorum.ts,',
        'and test/nothing.e2e-spec.ts; not paths: https://example.com/a/b.ts, @nestjs/common, busy/down.',
        '',
      ].join('\n'),
    );
    expect(missingPaths(page, work).map((m) => `${m.where} ${m.path}`)).toEqual([
      'PATHS.md:2 libs/distributed-lock/src/redlock/lock.scripts.ts',
      'PATHS.md:2 src/redlock/quorum.ts',
      'PATHS.md:3 test/nothing.e2e-spec.ts',
    ]);
  });
});
