// Directories a test file makes for itself in the temp dir, deleted when the file's tests are done.
import { after } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/**
 * Registers an after() hook in the current suite and returns the maker: each call makes a fresh directory
 * named `prefix` plus a random suffix, 0700 and owned by the user running the tests (mkdtemp's).
 */
export function useScratchDirectories(prefix: string): () => Promise<string> {
  const made: string[] = [];
  after(async () => {
    for (const dir of made) await rm(dir, { recursive: true, force: true });
  });
  return async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
    made.push(dir);
    return dir;
  };
}
