// The project root: the folder holding package.json above this file. Results, the private databases' cache
// and the eob binary the harness spawns are all found from here, whatever the current directory is.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

export function projectRoot(): string {
  let dir = dirname(new URL(import.meta.url).pathname);
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find package.json above src/');
    dir = up;
  }
  return dir;
}
