/** A value created on first use, then kept for the container's life; a bad environment fails each call clearly. */
export function lazy<T>(create: () => T): () => T {
  let value: T | undefined;
  return () => {
    value ??= create();
    return value;
  };
}
