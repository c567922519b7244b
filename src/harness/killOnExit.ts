// Child processes (private database servers, the harness's server and workers) run detached in their own
// process groups, so a Ctrl-C on the terminal reaches only the parent, which then stops them in order. If the
// parent exits without stopping one, this hook SIGKILLs it as the parent exits, so none outlives it.
import type { ChildProcess } from 'node:child_process';

const live = new Set<ChildProcess>();
let installed = false;

/** Kills `child` when this process exits, unless it has exited first. */
export function killOnExit(child: ChildProcess): void {
  if (!installed) {
    installed = true;
    process.on('exit', () => {
      for (const c of live) {
        try {
          if (c.pid !== undefined) process.kill(c.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    });
  }
  live.add(child);
  child.once('exit', () => live.delete(child));
}
