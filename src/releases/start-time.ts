// Start times of scheduled releases: parsing an ISO 8601 instant with an explicit UTC
// offset into the one stored form, the UTC string of Date.prototype.toISOString.
// The admin API, the store and ota-tool share these rules, so a value one accepts
// the others accept too.

/** Earliest and latest accepted year. Outside them a start time is a typing error, not a plan. */
export const MIN_START_YEAR = 2000;
export const MAX_START_YEAR = 2999;

/** The accepted format, for error messages. */
export const START_AT_FORMAT = 'an ISO 8601 instant with Z or a UTC offset, such as 2026-12-05T02:00:00Z or 2026-12-05T03:00:00+01:00';

/**
 * RFC 3339 section 5.6 date-time: date, "T", time with optional seconds and fraction,
 * then "Z" or ±hh:mm. Seconds may be omitted, as ISO 8601 allows.
 */
const INSTANT_PATTERN = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

export type ParsedInstant = { ok: true; ms: number; iso: string } | { ok: false; problem: string };

/**
 * Parses an instant such as 2026-12-05T03:00:00+01:00. Returns the time in
 * milliseconds since the epoch and its stored form (2026-12-05T02:00:00.000Z), or the
 * reason it is rejected. Digits of the fraction below one millisecond are dropped.
 */
export function parseInstant(text: string): ParsedInstant {
  const match = INSTANT_PATTERN.exec(text);
  if (!match) return { ok: false, problem: `"${text}" is not ${START_AT_FORMAT}` };

  const [year, month, day, hour, minute] = [1, 2, 3, 4, 5].map((i) => Number(match[i]));
  const second = match[6] === undefined ? 0 : Number(match[6]);
  const millisecond = match[7] === undefined ? 0 : Number(match[7].padEnd(3, '0').slice(0, 3));
  if (year! < MIN_START_YEAR || year! > MAX_START_YEAR) {
    return { ok: false, problem: `"${text}" has the year ${year}, expected ${MIN_START_YEAR}..${MAX_START_YEAR}` };
  }
  // Date.UTC rolls 2026-02-30 over to March 2, so each field is checked against the date it built.
  const local = new Date(Date.UTC(year!, month! - 1, day!, hour!, minute!, second, millisecond));
  if (local.getUTCMonth() !== month! - 1 || local.getUTCDate() !== day! || local.getUTCHours() !== hour! || local.getUTCMinutes() !== minute! || local.getUTCSeconds() !== second) {
    return { ok: false, problem: `"${text}" names no calendar date and time (month 01..12, day within the month, hour 00..23, minute and second 00..59)` };
  }

  let offsetMinutes = 0;
  if (match[8] === undefined) {
    const offsetHours = Number(match[10]);
    const offsetRest = Number(match[11]);
    if (offsetHours > 23 || offsetRest > 59) return { ok: false, problem: `"${text}" has the UTC offset ${match[9]}${match[10]}:${match[11]}, expected -23:59..+23:59` };
    offsetMinutes = (match[9] === '-' ? -1 : 1) * (offsetHours * 60 + offsetRest);
  }
  const ms = local.getTime() - offsetMinutes * 60_000;
  const utcYear = new Date(ms).getUTCFullYear();
  if (utcYear < MIN_START_YEAR || utcYear > MAX_START_YEAR) {
    return { ok: false, problem: `"${text}" falls in the year ${utcYear} in UTC, expected ${MIN_START_YEAR}..${MAX_START_YEAR}` };
  }
  return { ok: true, ms, iso: new Date(ms).toISOString() };
}

/**
 * True when text is a start time in its stored form: the output of toISOString for
 * a year in MIN_START_YEAR..MAX_START_YEAR. Four-digit years keep these strings in
 * time order when sorted as text.
 */
export function isStoredStartAt(text: unknown): text is string {
  if (typeof text !== 'string') return false;
  const parsed = parseInstant(text);
  return parsed.ok && parsed.iso === text;
}
