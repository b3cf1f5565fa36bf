// Parsing of AT command lines as the simulated SIM7020E receives them.

/** A command line split into its name with the command type, and its argument text. */
export interface ParsedCommand {
  /**
   * Upper-cased name with the type suffix: "AT+CSQ" (execute), "AT+CFUN?" (read),
   * "AT+CFUN=" (set). Basic commands keep their letters: "AT", "ATE0".
   */
  key: string;
  /** Text after "=", unchanged (quotes kept); empty for other types. */
  args: string;
}

export function parseCommand(line: string): ParsedCommand {
  const trimmed = line.trim();
  const extended = /^(AT[+*][A-Z0-9]+)(\?|=)?(.*)$/is.exec(trimmed);
  if (extended === null) {
    return { key: trimmed.toUpperCase(), args: '' };
  }
  const name = extended[1]!.toUpperCase();
  const type = extended[2] ?? '';
  const rest = extended[3] ?? '';
  if (type === '?' && rest === '') {
    return { key: `${name}?`, args: '' };
  }
  if (type === '=') {
    return { key: `${name}=`, args: rest };
  }
  // Anything after a name without "=" makes the line unknown, so it gets ERROR.
  return { key: rest === '' && type === '' ? name : trimmed.toUpperCase(), args: '' };
}

/**
 * Splits comma-separated arguments; commas inside double quotes do not split.
 * Returns each value without its quotes; an empty value stays an empty string.
 */
export function splitArgs(args: string): string[] {
  const values: string[] = [];
  let current = '';
  let quoted = false;
  for (const char of args) {
    if (char === '"') {
      quoted = !quoted;
    } else if (char === ',' && !quoted) {
      values.push(current.trim());
      current = '';
    } else {
      current += char;
    }
  }
  values.push(current.trim());
  return values;
}

/** Parses a decimal integer argument; returns null for anything else. */
export function parseInteger(value: string | undefined): number | null {
  if (value === undefined || !/^\d{1,9}$/.test(value)) {
    return null;
  }
  return Number.parseInt(value, 10);
}

export function isIpv4(value: string): boolean {
  const parts = value.split('.');
  return parts.length === 4 && parts.every((part) => /^\d{1,3}$/.test(part) && Number(part) <= 255);
}
