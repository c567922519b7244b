// Opens a local page in Debian's headless Chromium and returns its DOM after load, with a probe that writes
// each image's natural width into the page first (0 = the image did not load). No network: the page is a
// file:// URL and the flags turn off Chromium's own background traffic.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const BINARIES = ['chromium', 'chromium-browser'];

/** The Chromium binary on PATH, or undefined. */
export function findChromium(): string | undefined {
  return BINARIES.find((b) => spawnSync(b, ['--version'], { stdio: 'ignore', timeout: 30_000 }).status === 0);
}

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const PROBE = `<script>addEventListener('load', () => {
  const out = document.createElement('pre'); out.id = 'probe';
  out.textContent = JSON.stringify([...document.images].map((i) => ({ src: i.getAttribute('src'), width: i.naturalWidth })));
  document.body.append(out);
});</script>`;

export interface OpenedPage {
  dom: string;
  images: { src: string; width: number }[];
}

/** Copies `page` to a probe page beside it (so relative links resolve), opens it and reads the probe back. */
export function openInChromium(binary: string, page: string): OpenedPage {
  const probe = path.join(path.dirname(page), `.probe-${process.pid}.html`);
  writeFileSync(probe, readFileSync(page, 'utf8').replace('</body>', `${PROBE}</body>`));
  const profile = mkdtempSync(path.join(os.tmpdir(), 'eob-chromium-'));
  try {
    const r = spawnSync(binary, [...FLAGS, `--user-data-dir=${profile}`, '--virtual-time-budget=5000', '--dump-dom', `file://${probe}`], {
      encoding: 'utf8',
      timeout: 60_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    if (r.status !== 0) throw new Error(`chromium exited ${r.status ?? r.signal}: ${r.stderr.slice(-2000)}`);
    const m = /<pre id="probe">([^<]*)<\/pre>/.exec(r.stdout);
    if (m === null) throw new Error(`chromium's DOM has no probe output (the load event did not run):\n${r.stdout.slice(0, 2000)}`);
    const json = m[1]!.replace(/&quot;/g, '"').replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>');
    return { dom: r.stdout, images: JSON.parse(json) as { src: string; width: number }[] };
  } finally {
    rmSync(probe, { force: true });
    rmSync(profile, { recursive: true, force: true });
  }
}
