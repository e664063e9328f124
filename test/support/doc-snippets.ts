import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import * as ts from 'typescript';

/** The repository root (test/support/..). */
export const REPO_ROOT = resolve(__dirname, '../..');

/** README.md and every docs/*.md, found at run time (a page added later is picked up). */
export function docFiles(root = REPO_ROOT): string[] {
  const docs = join(root, 'docs');
  const pages = existsSync(docs)
    ? readdirSync(docs)
        .filter((f) => f.endsWith('.md'))
        .sort()
        .map((f) => join(docs, f))
    : [];
  return [join(root, 'README.md'), ...pages];
}

/** One fenced ```ts block of a Markdown page. */
export interface DocSnippet {
  /** The page, relative to the repository root. */
  file: string;
  /** 1-based line of the block's first code line in the page. */
  line: number;
  /** The block's code. */
  code: string;
  /** Declarations put before the code (`<!-- snippet: prelude=... -->`). */
  prelude: string;
  /** Why the block is not compiled (`<!-- snippet: skip reason -->`), if so. */
  skip?: string;
}

const FENCE_OPEN = /^```(ts|typescript)\s*$/;
const DIRECTIVE = /^<!--\s*snippet:\s*(skip|prelude=)([\s\S]*?)-->\s*$/;

/**
 * The ```ts / ```typescript blocks of `path`. An HTML comment on the line before a block (blank lines
 * between are allowed) steers it: `<!-- snippet: prelude=declare const locks: LockService; -->`
 * puts declarations before the code, `<!-- snippet: skip why -->` leaves it out (a reason is required).
 */
export function extractSnippets(path: string, root = REPO_ROOT): DocSnippet[] {
  const lines = readFileSync(path, 'utf8').split('\n');
  const file = relative(root, path);
  const out: DocSnippet[] = [];
  for (let i = 0; i < lines.length; i += 1) {
    if (!FENCE_OPEN.test(lines[i])) continue;
    let j = i - 1;
    while (j >= 0 && lines[j].trim() === '') j -= 1;
    const directive = j >= 0 ? DIRECTIVE.exec(lines[j].trim()) : null;
    const start = i + 1;
    let end = start;
    while (end < lines.length && !/^```\s*$/.test(lines[end])) end += 1;
    if (end >= lines.length) throw new Error(`${file}:${i + 1}: a \`\`\`ts block is never closed`);
    const snippet: DocSnippet = {
      file,
      line: start + 1,
      code: lines.slice(start, end).join('\n'),
      prelude: '',
    };
    if (directive?.[1] === 'skip') {
      const reason = directive[2].trim();
      if (!reason) throw new Error(`${file}:${j + 1}: <!-- snippet: skip --> needs a reason`);
      snippet.skip = reason;
    } else if (directive) {
      snippet.prelude = directive[2].trim();
    }
    out.push(snippet);
    i = end;
  }
  return out;
}

/** A type error in a snippet, at its line in the page. */
export interface SnippetDiagnostic {
  /** `README.md:31` */
  where: string;
  /** `TS2305: Module '"nestjs-distributed-lock"' has no exported member 'Foo'.` */
  message: string;
}

/**
 * Type-checks every snippet in one program: the library is path-mapped as `nestjs-distributed-lock`
 * (and its subpaths) onto `libDir` (its source), the peers come from the repository's node_modules.
 * Each snippet is its own module. Returns the errors (syntax and types) found in the snippets.
 */
export function typeCheckSnippets(
  snippets: DocSnippet[],
  libDir = join(REPO_ROOT, 'libs/distributed-lock/src'),
): SnippetDiagnostic[] {
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.CommonJS,
    moduleResolution: ts.ModuleResolutionKind.Node10,
    target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2022.d.ts'],
    strict: true,
    experimentalDecorators: true,
    emitDecoratorMetadata: true,
    esModuleInterop: true,
    skipLibCheck: true,
    noEmit: true,
    types: ['node', 'jest'],
    typeRoots: [join(REPO_ROOT, 'node_modules/@types')],
    baseUrl: REPO_ROOT,
    paths: {
      'nestjs-distributed-lock': [join(libDir, 'index')],
      'nestjs-distributed-lock/*': [join(libDir, '*/index')],
      // The peers from the repository, also for a copy of the library outside it (the tests).
      '*': [join(REPO_ROOT, 'node_modules/*'), join(REPO_ROOT, 'node_modules/@types/*')],
    },
  };
  const files = new Map<string, { text: string; snippet: DocSnippet; offset: number }>();
  for (const snippet of snippets.filter((s) => !s.skip)) {
    const name = join(
      REPO_ROOT,
      '.doc-snippets',
      `${snippet.file.replace(/[^A-Za-z0-9]+/g, '_')}_${snippet.line}.ts`,
    );
    const prelude = snippet.prelude ? `${snippet.prelude}\n` : '';
    // `export {}` makes every block a module, so the names of one block never clash with another's.
    files.set(name, {
      text: `${prelude}${snippet.code}\nexport {};\n`,
      snippet,
      offset: prelude ? prelude.split('\n').length - 1 : 0,
    });
  }
  const host = ts.createCompilerHost(options);
  const { fileExists, readFile, getSourceFile } = host;
  host.fileExists = (f) => files.has(f) || fileExists.call(host, f);
  host.readFile = (f) => files.get(f)?.text ?? readFile.call(host, f);
  host.getSourceFile = (f, version, onError, create) => {
    const virtual = files.get(f);
    return virtual
      ? ts.createSourceFile(f, virtual.text, version, true)
      : getSourceFile.call(host, f, version, onError, create);
  };
  const program = ts.createProgram([...files.keys()], options, host);
  const out: SnippetDiagnostic[] = [];
  for (const [name, { snippet, offset }] of files) {
    const source = program.getSourceFile(name)!;
    const found = [
      ...program.getSyntacticDiagnostics(source),
      ...program.getSemanticDiagnostics(source),
    ];
    for (const d of found) {
      const line = d.start === undefined ? 0 : source.getLineAndCharacterOfPosition(d.start).line;
      const inPrelude = line < offset;
      out.push({
        where: inPrelude
          ? `${snippet.file}:${snippet.line} (prelude)`
          : `${snippet.file}:${snippet.line + line - offset}`,
        message: `TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`,
      });
    }
  }
  return out;
}

/** A repository path a page cites that does not exist. */
export interface MissingPath {
  /** `docs/SAFETY.md:10` */
  where: string;
  /** The path as written. */
  path: string;
}

const TOP_LEVEL = /^(libs|src|test|scripts|bench|compat|docs|etc|\.ci)\//;
const CANDIDATE =
  /(?<![A-Za-z0-9_.@:/-])\.?[A-Za-z0-9_-][A-Za-z0-9_.-]*\/[A-Za-z0-9_./-]*[A-Za-z0-9_/]/g;
const FILE_LIKE = /\.(ts|js|sh|md|json|lua|sql|yml|yaml)$/;

/**
 * Paths a page cites (`libs/...`, `src/...`, `test/...`, `scripts/...`, `bench/...`, `compat/...`,
 * `docs/...`, or any `dir/file.ext`) that exist neither from the repository root, nor under the
 * library's `libs/distributed-lock/src`, nor beside the page. URLs, package names (`@scope/x`),
 * `node_modules/` and build output (`dist/`) are not paths of the repository. `root` only names
 * the page in the result; paths are looked up in the repository.
 */
export function missingPaths(path: string, root = REPO_ROOT): MissingPath[] {
  const file = relative(root, path);
  const out: MissingPath[] = [];
  const lines = readFileSync(path, 'utf8').split('\n');
  lines.forEach((text, index) => {
    const withoutUrls = text.replace(/[a-z][a-z0-9+.-]*:\/\/[^\s)>\]`'"]+/gi, ' ');
    for (const match of withoutUrls.matchAll(CANDIDATE)) {
      const cited = match[0].replace(/[.,;:]+$/, '');
      if (!TOP_LEVEL.test(cited) && !FILE_LIKE.test(cited)) continue;
      if (/^(dist|node_modules)\//.test(cited) || cited.includes('*') || cited.includes('<'))
        continue;
      const asSource = cited.replace(/\.d\.ts$/, '.ts');
      const bases = [REPO_ROOT, join(REPO_ROOT, 'libs/distributed-lock/src'), dirname(path)];
      if (bases.some((base) => existsSync(join(base, cited)) || existsSync(join(base, asSource)))) {
        continue;
      }
      out.push({ where: `${file}:${index + 1}`, path: cited });
    }
  });
  return out;
}
