// Every relative link of the README and docs leads to a file or folder that exists, and every repository path
// they name in backticks exists: a page, a source file or a named run moved or renamed without its mentions
// fails here. Unit test: no database.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { projectRoot } from '../src/projectRoot.ts';

const root = projectRoot();

/** The relative targets of markdown links and images in `text` (no scheme, no pure #anchor), anchors dropped. */
export function relativeLinks(text: string): string[] {
  const withoutCode = text.replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '');
  return [...withoutCode.matchAll(/\]\(([^)\s]+)\)/g)]
    .map((m) => m[1]!)
    .filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target) && !target.startsWith('#'))
    .map((target) => target.replace(/#.*$/, ''));
}

/**
 * The repository paths a text names in backticks (`src/...`, `test/...`, `scripts/...`, `docker/...`,
 * `docs/...`, `bin/...`), placeholders left out (`<case>`, `*`, an all-capitals part such as `RUN`).
 */
export function namedPaths(text: string): string[] {
  return [...text.matchAll(/`((?:src|test|scripts|docker|docs|bin)\/[A-Za-z0-9_./<>*-]+)`/g)]
    .map((m) => m[1]!)
    .filter((path) => !/[<*]/.test(path) && !path.split('/').some((part) => /^[A-Z_]+$/.test(part)));
}

function documents(): string[] {
  const pages = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? pages(join(dir, e.name)) : e.name.endsWith('.md') ? [join(dir, e.name)] : []);
  return [join(root, 'README.md'), join(root, 'CHANGELOG.md'), ...pages(join(root, 'docs'))];
}

test('links are found, external ones and anchors left out (the control included)', () => {
  assert.deepEqual(relativeLinks('[a](docs/a.md) [b](https://x.org/b) [c](#top) ![d](img/d.svg#x) `[e](no.md)`'), ['docs/a.md', 'img/d.svg']);
});

test('every relative link of the README and docs exists', () => {
  const broken = documents().flatMap((file) => relativeLinks(readFileSync(file, 'utf8'))
    .filter((target) => !existsSync(join(dirname(file), target)))
    .map((target) => `${relative(root, file)}: ${target}`));
  assert.deepEqual(broken, []);
});

test('named paths are found, placeholders left out (the control included)', () => {
  assert.deepEqual(namedPaths('`src/a.ts` and `test/x.test.ts`, not `results/x` or `docs/results/RUN/` or `cases/<case>/` or `src/*.ts`'), ['src/a.ts', 'test/x.test.ts']);
});

test('every repository path the README and docs name in backticks exists', () => {
  const missing = documents().flatMap((file) => namedPaths(readFileSync(file, 'utf8'))
    .filter((path) => !existsSync(join(root, path)))
    .map((path) => `${relative(root, file)}: ${path}`));
  assert.deepEqual(missing, []);
});
