// Semantic Versioning 2.0.0: parsing and precedence (semver.org, section 11). Build
// metadata is kept in the text but ignored for precedence, as the specification requires.

const SEMVER_PATTERN =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$/;

export interface SemVer {
  major: number;
  minor: number;
  patch: number;
  /** Pre-release identifiers, numeric ones as numbers; empty for a release. */
  prerelease: Array<string | number>;
}

/** Parses a semantic version, or returns undefined when the text is not one. */
export function parseSemVer(text: string): SemVer | undefined {
  const match = SEMVER_PATTERN.exec(text);
  if (!match) return undefined;
  const numbers = [match[1], match[2], match[3]].map(Number);
  if (numbers.some((n) => !Number.isSafeInteger(n))) return undefined;
  const prerelease = match[4] === undefined ? [] : match[4].split('.').map((id) => (/^\d+$/.test(id) ? Number(id) : id));
  return { major: numbers[0]!, minor: numbers[1]!, patch: numbers[2]!, prerelease };
}

/** Compares by precedence: negative when a < b, 0 when equal, positive when a > b. */
export function compareSemVer(a: SemVer, b: SemVer): number {
  const core = a.major - b.major || a.minor - b.minor || a.patch - b.patch;
  if (core !== 0) return Math.sign(core);
  // A pre-release has lower precedence than the release with the same core.
  if (a.prerelease.length === 0 || b.prerelease.length === 0) {
    return Math.sign(b.prerelease.length - a.prerelease.length);
  }
  const count = Math.min(a.prerelease.length, b.prerelease.length);
  for (let i = 0; i < count; i++) {
    const x = a.prerelease[i]!;
    const y = b.prerelease[i]!;
    if (x === y) continue;
    // Numeric identifiers sort below alphanumeric ones.
    if (typeof x === 'number' && typeof y === 'number') return Math.sign(x - y);
    if (typeof x === 'number') return -1;
    if (typeof y === 'number') return 1;
    return x < y ? -1 : 1;
  }
  return Math.sign(a.prerelease.length - b.prerelease.length);
}

/** Compares two version texts by precedence; throws when either is not a version. */
export function compareVersions(a: string, b: string): number {
  const left = parseSemVer(a);
  const right = parseSemVer(b);
  if (!left) throw new Error(`"${a}" is not a semantic version such as 1.2.3`);
  if (!right) throw new Error(`"${b}" is not a semantic version such as 1.2.3`);
  return compareSemVer(left, right);
}
