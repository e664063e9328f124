/**
 * The default `lock.name` of a lock taken through `LockService`: its first key up to the first `:`
 * (`'order:42'` → `'order'`, `'nightly-report'` → `'nightly-report'`). Keys usually end in an id;
 * the prefix names the kind of resource, which keeps metric cardinality low.
 * @internal
 */
export function defaultMetricName(key: string): string {
  const colon = key.indexOf(':');
  return colon < 0 ? key : key.slice(0, colon);
}
