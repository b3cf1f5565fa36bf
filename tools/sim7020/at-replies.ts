// AT reply and URC formats the simulated SIM7020E produces, one function per format,
// each with the public source it follows or marked as assumed. docs/sim7020.md lists
// the same table for readers without the code.

/**
 * Frames one response line in the verbose form: CR LF before and after the text.
 * Consecutive lines therefore show up with blank lines between them, as in the 1nce
 * SIM7020E CoAP example (help.1nce.com "SIM7020E 1NCE OS CoAP": "+CCOAPNEW: 1",
 * blank line, "OK").
 */
export function frameLine(text: string): string {
  return `\r\n${text}\r\n`;
}

/** Final result codes in verbose form, as every SIMCom driver read expects them. */
export const RESULT_OK = 'OK';
export const RESULT_ERROR = 'ERROR';

/** Extended error `+CME ERROR: <n>` in numeric form, as Nordic's nRF91 AT reference shows it. */
export function cmeError(code: number): string {
  return `+CME ERROR: ${code}`;
}

/**
 * `+CPIN: READY`, 3GPP TS 27.007 +CPIN read form. The TinyGSM SIM7020E driver
 * (OloloevReal/TinyGSM, src/TinyGsmClientSIM7020E.h) waits for "+CPIN:" then "READY".
 */
export function cpinReady(): string {
  return '+CPIN: READY';
}

/**
 * `+CSQ: <rssi>,<ber>`, 3GPP TS 27.007 +CSQ syntax. The values the SIM7020 reports on
 * NB-IoT (ber is usually 99, "not known") are assumed.
 */
export function csq(rssi: number, ber: number): string {
  return `+CSQ: ${rssi},${ber}`;
}

/** `+CFUN: <fun>`, 3GPP TS 27.007 +CFUN read form (assumed to match the SIM7020). */
export function cfun(fun: number): string {
  return `+CFUN: ${fun}`;
}

/** `+CGATT: <state>`, 3GPP TS 27.007 +CGATT read form (assumed to match the SIM7020). */
export function cgatt(attached: boolean): string {
  return `+CGATT: ${attached ? 1 : 0}`;
}

/**
 * `+CEREG: <n>,<stat>`, 3GPP TS 27.007 +CEREG read form as documented in Nordic's
 * nRF91 AT command reference (stat 1 home, 2 searching, 5 roaming). The optional
 * tac/ci/AcT fields that n >= 2 adds are not produced.
 */
export function cereg(mode: number, stat: number): string {
  return `+CEREG: ${mode},${stat}`;
}

/**
 * `+CGCONTRDP: <cid>,<bearer_id>,"<apn>","<addr.mask>"`, 3GPP TS 27.007 +CGCONTRDP
 * field order as quoted in public drivers (address and subnet mask dotted together).
 * Quoting and the fields after the address are assumed for the SIM7020.
 */
export function cgcontrdp(cid: number, bearerId: number, apn: string, address: string): string {
  return `+CGCONTRDP: ${cid},${bearerId},"${apn}","${address}.255.255.255.255"`;
}

/**
 * URC `+CDNSGIP: 1,"<host>","<ip>"` after OK, as parsed by the Kampi/ESP32-SIM70XX
 * SIM7020 driver (src/SIM7020/Protocols/sim7020_dns.cpp) and described in Zephyr's
 * SIMCom sim800l offload driver ("+CDNSGIP: 1,<domain name>,<IPv4>").
 */
export function cdnsgipResolved(host: string, ip: string): string {
  return `+CDNSGIP: 1,"${host}","${ip}"`;
}

/**
 * URC `+CDNSGIP: 0,<err>` on failure, same sources. The error number the SIM7020
 * uses for an unknown name is assumed (DNS_ERROR_NOT_FOUND below).
 */
export function cdnsgipFailed(errorCode: number): string {
  return `+CDNSGIP: 0,${errorCode}`;
}
export const DNS_ERROR_NOT_FOUND = 8;

/**
 * `+CCOAPNEW: <id>` before OK. Sources: the 1nce SIM7020E example
 * (`AT+CCOAPNEW="10.60.2.219",5683,1` -> `+CCOAPNEW: 1`, OK) and the TinyGSM SIM7020E
 * driver, which reads the id from this line.
 */
export function ccoapnew(id: number): string {
  return `+CCOAPNEW: ${id}`;
}

/**
 * URC `+CCOAPNMI: <id>,<len>,<hex>`: len counts bytes, hex is the raw datagram. The
 * TinyGSM SIM7020E driver reads exactly 2 * len characters after the second comma,
 * so the real modem sends the hex unquoted; Kampi/ESP32-SIM70XX takes everything after
 * the second comma. Lower-case hex digits are assumed.
 */
export function ccoapnmi(id: number, payload: Uint8Array, quoteHex: boolean): string {
  const hex = Buffer.from(payload).toString('hex');
  const data = quoteHex ? `"${hex}"` : hex;
  return `+CCOAPNMI: ${id},${payload.length},${data}`;
}

/**
 * `+CPSMS: <mode>,,,"<T3412>","<T3324>"`, 3GPP TS 27.007 +CPSMS read form with the
 * GERAN fields empty (assumed to match the SIM7020).
 */
export function cpsms(mode: number, periodicTau: string, activeTime: string): string {
  return `+CPSMS: ${mode},,,"${periodicTau}","${activeTime}"`;
}

/** `+CEDRXS: <AcT-type>,"<value>"`, 3GPP TS 27.007 +CEDRXS read form (assumed for the SIM7020). */
export function cedrxs(actType: number, value: string): string {
  return `+CEDRXS: ${actType},"${value}"`;
}
