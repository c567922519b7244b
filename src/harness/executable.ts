// Whether a path is a file this process may execute: how both engines' launchers find their server binaries.
import { access, constants, stat } from 'node:fs/promises';

export async function isExecutable(file: string): Promise<boolean> {
  try {
    const s = await stat(file);
    if (!s.isFile()) return false;
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
