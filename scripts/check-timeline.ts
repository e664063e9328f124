/**
 * `npm run demo:timeline-check [file.html]`: renders the demo's timeline (default
 * demo-output/timeline.html, written by `npm run demo`) with headless Chromium to a PNG beside it,
 * and checks the PNG is a real picture of the timeline: a valid PNG of the window's size, more than a
 * few KB, not one uniform colour, and with the "ran" cells' green covering a visible area. Fails with
 * an install hint when Chromium is missing. Outside CI on purpose: Chromium is too heavy for it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { inflateSync } from 'node:zlib';
import { COLORS } from './demo/timeline';

const WIDTH = 1600;
const HEIGHT = 1100;
const MIN_BYTES = 8 * 1024;
const INSTALL_HINT =
  'Chromium was not found (looked for $CHROMIUM, chromium, chromium-browser). Install it with ' +
  '`sudo apt-get install -y chromium` (Debian/Ubuntu) or set CHROMIUM to its path.';

/** The first Chromium that answers `--version`. */
function findChromium(): string | undefined {
  const candidates = [process.env.CHROMIUM, 'chromium', 'chromium-browser'].filter(
    (c): c is string => Boolean(c),
  );
  return candidates.find((c) => {
    const r = spawnSync(c, ['--version'], { encoding: 'utf8', timeout: 30_000 });
    return !r.error && r.status === 0;
  });
}

/** A decoded 8-bit RGB(A) PNG. */
interface Picture {
  width: number;
  height: number;
  /** Bytes per pixel: 3 (RGB) or 4 (RGBA). */
  channels: number;
  /** Unfiltered rows, `width * channels` bytes each. */
  pixels: Buffer;
}

/** Decodes a non-interlaced 8-bit RGB or RGBA PNG (what Chromium writes); throws otherwise. */
function decodePng(png: Buffer): Picture {
  if (!png.subarray(0, 8).equals(Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]))) {
    throw new Error('not a PNG (bad signature)');
  }
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Buffer[] = [];
  for (let at = 8; at < png.length;) {
    const length = png.readUInt32BE(at);
    const type = png.toString('latin1', at + 4, at + 8);
    const data = png.subarray(at + 8, at + 8 + length);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      const [depth, colorType, , , interlace] = data.subarray(8, 13);
      channels = colorType === 2 ? 3 : colorType === 6 ? 4 : 0;
      if (depth !== 8 || channels === 0 || interlace !== 0) {
        throw new Error(
          `unsupported PNG: depth ${depth}, colour type ${colorType}, interlace ${interlace}`,
        );
      }
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
    at += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const pixels = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y += 1) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const out = pixels.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? pixels.subarray((y - 1) * stride, y * stride) : undefined;
    for (let x = 0; x < stride; x += 1) {
      const a = x >= channels ? out[x - channels] : 0;
      const b = prev ? prev[x] : 0;
      const c = prev && x >= channels ? prev[x - channels] : 0;
      let v = line[x];
      if (filter === 1) v += a;
      else if (filter === 2) v += b;
      else if (filter === 3) v += (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else if (filter !== 0) throw new Error(`bad PNG filter ${filter} on row ${y}`);
      out[x] = v & 0xff;
    }
  }
  return { width, height, channels, pixels };
}

/** Pixel counts: distinct colours, the most common colour's share, and pixels near `rgb`. */
function measure(pic: Picture, rgb: [number, number, number]) {
  const colours = new Map<number, number>();
  let near = 0;
  for (let i = 0; i < pic.pixels.length; i += pic.channels) {
    const [r, g, b] = [pic.pixels[i], pic.pixels[i + 1], pic.pixels[i + 2]];
    const key = (r << 16) | (g << 8) | b;
    colours.set(key, (colours.get(key) ?? 0) + 1);
    if (Math.abs(r - rgb[0]) + Math.abs(g - rgb[1]) + Math.abs(b - rgb[2]) <= 12) near += 1;
  }
  const total = pic.width * pic.height;
  return {
    distinct: colours.size,
    dominantShare: Math.max(...colours.values()) / total,
    nearShare: near / total,
  };
}

const hex = (h: string): [number, number, number] => [
  parseInt(h.slice(1, 3), 16),
  parseInt(h.slice(3, 5), 16),
  parseInt(h.slice(5, 7), 16),
];

function main(): number {
  const html = resolve(process.argv[2] ?? join(__dirname, '../demo-output/timeline.html'));
  if (!existsSync(html)) {
    console.error(`${html} does not exist: run \`npm run demo\` first (it writes the timeline).`);
    return 1;
  }
  const chromium = findChromium();
  if (!chromium) {
    console.error(INSTALL_HINT);
    return 1;
  }
  const png = join(dirname(html), `${basename(html, '.html')}.png`);
  rmSync(png, { force: true });
  const profile = mkdtempSync(join(tmpdir(), 'timeline-chromium-'));
  try {
    const run = spawnSync(
      chromium,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--hide-scrollbars',
        `--user-data-dir=${profile}`,
        `--window-size=${WIDTH},${HEIGHT}`,
        `--screenshot=${png}`,
        pathToFileURL(html).href,
      ],
      { encoding: 'utf8', timeout: 120_000 },
    );
    if (run.error || !existsSync(png)) {
      console.error(
        `FAIL  Chromium wrote no screenshot (${run.error?.message ?? `exit ${run.status}`}):\n${run.stderr}`,
      );
      return 1;
    }
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }

  const bytes = statSync(png).size;
  const pic = decodePng(readFileSync(png));
  const m = measure(pic, hex(COLORS.ran));
  const checks: Array<[boolean, string]> = [
    [bytes > MIN_BYTES, `size: ${(bytes / 1024).toFixed(1)} KB (more than ${MIN_BYTES / 1024} KB)`],
    [
      pic.width === WIDTH && pic.height === HEIGHT,
      `dimensions: ${pic.width}x${pic.height} (window ${WIDTH}x${HEIGHT})`,
    ],
    [
      m.distinct >= 16 && m.dominantShare < 0.95,
      `not blank: ${m.distinct} distinct colours (at least 16), the most common covers ${(m.dominantShare * 100).toFixed(1)}% (less than 95%)`,
    ],
    [
      m.nearShare > 0.005,
      `timeline drawn: the "ran" green (${COLORS.ran}) covers ${(m.nearShare * 100).toFixed(2)}% of the pixels (more than 0.5%)`,
    ],
  ];
  console.log(`Screenshot of ${relative(process.cwd(), html)}: ${relative(process.cwd(), png)}`);
  for (const [ok, line] of checks) console.log(`${ok ? 'ok  ' : 'FAIL'}  ${line}`);
  const ok = checks.every(([passed]) => passed);
  console.log(ok ? 'PASS: the timeline renders as a real picture.' : 'FAIL: see above.');
  return ok ? 0 : 1;
}

process.exit(main());
