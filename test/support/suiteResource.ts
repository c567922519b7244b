// Something a test suite opens once and closes at its end: opened in a before() hook, closed in an after()
// hook, and reached through a getter, because the suite's body runs before any hook does.
import { after, before } from 'node:test';

/** Registers the hooks in the current suite; the getter throws `tooEarly` if used before `open` ran. */
export function useSuiteResource<T>(open: () => T | Promise<T>, close: (resource: T) => Promise<void>, tooEarly: string): () => T {
  let resource: T | undefined;
  before(async () => {
    resource = await open();
  });
  after(async () => {
    if (resource !== undefined) await close(resource);
  });
  return () => {
    if (resource === undefined) throw new Error(tooEarly);
    return resource;
  };
}
