// Field validators for options objects: each error names the component, the field and the bad value, and
// says what is accepted; and how given options lay over their defaults.

export class OptionsError extends Error {
  override readonly name = 'OptionsError';
}

/**
 * The given options without their undefined fields, to spread over the defaults: `{ port: undefined }` from a
 * flag left out must keep the default, not replace it.
 */
export function definedOnly<T extends object>(o: Partial<T>): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export function intInRange(component: string, field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new OptionsError(`${component}: ${field} must be a whole number from ${min} to ${max} (got ${JSON.stringify(value)})`);
  }
  return value;
}

export function oneOf<T extends string>(component: string, field: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new OptionsError(`${component}: ${field} must be one of ${allowed.join(', ')} (got ${JSON.stringify(value)})`);
  }
  return value as T;
}

export function nonEmptyString(component: string, field: string, value: unknown): string {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new OptionsError(`${component}: ${field} must be a non-empty string (got ${JSON.stringify(value)})`);
  }
  return value;
}

export function matches(component: string, field: string, value: unknown, pattern: RegExp, what: string): string {
  if (typeof value !== 'string' || !pattern.test(value)) {
    throw new OptionsError(`${component}: ${field} must be ${what} (got ${JSON.stringify(value)})`);
  }
  return value;
}

export function numberAtLeast(component: string, field: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !(value >= min)) {
    throw new OptionsError(`${component}: ${field} must be a number >= ${min} (got ${JSON.stringify(value)})`);
  }
  return value;
}
