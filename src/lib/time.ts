// Dify stores naive UTC timestamps and serialises them as integer Unix seconds
// (apps spec §1.4); /app/feedbacks uses Python isoformat() without timezone.

export const toUnix = (d: Date | null | undefined): number | null => (d ? Math.floor(d.getTime() / 1000) : null);

/** Python `datetime.isoformat()` of a naive datetime: microseconds only when non-zero. */
export function toPyIso(d: Date): string {
  const iso = d.toISOString(); // 2025-01-16T14:30:29.123Z
  const base = iso.slice(0, 19);
  const ms = d.getUTCMilliseconds();
  return ms === 0 ? base : `${base}.${String(ms * 1000).padStart(6, "0")}`;
}
