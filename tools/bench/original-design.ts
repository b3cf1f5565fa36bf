// Cost model of the HTTP/JSON/hex design this product replaces, computed on the same
// payload, so benchmarks can put our figures next to it.
//
// That design posts JSON to an Express server: a check ({"device_id",
// "current_version","action":"check_update"}) and a download ({"device_id",
// "action":"download_update"}) whose answer carries the new main.py hex-encoded in a
// JSON string. Each request is one HTTP/1.1 exchange on its own TCP connection
// (the SIM7020E's HTTP commands open one per request).
//
// Byte counts are IPv4 packets: 20 bytes IPv4 + 20 bytes TCP, plus 12 bytes of TCP
// options (timestamps) on data segments and 20 bytes of options on SYN segments, as
// Linux sends by default. The modem's MSS is taken as 1360 bytes, a common NB-IoT
// value (the carrier's MTU of 1400 minus headers); the receiver acknowledges every
// second segment (RFC 1122 delayed ACK). Round trips count the TCP handshake, the
// request, the extra round trips slow start needs for a large response (initial window
// of 10 segments, RFC 6928, doubling each round trip), and the close.
//
// NOTE: header sets are typical ones (Express 4 and a MicroPython HTTP client), not
// captured from the original firmware, which drove the modem's own HTTP stack.

const IP_TCP_HEADER_BYTES = 40;
const DATA_OPTION_BYTES = 12;
const SYN_OPTION_BYTES = 20;
const MSS_BYTES = 1360;
const INITIAL_WINDOW_SEGMENTS = 10;

export interface TransferCost {
  /** Bytes on air in both directions, IPv4 packets. */
  bytes: number;
  /** Application-level payload bytes (HTTP headers and bodies). */
  applicationBytes: number;
  packets: number;
  roundTrips: number;
}

function requestHead(path: string, bodyBytes: number): string {
  return (
    `POST ${path} HTTP/1.1\r\n` +
    'Host: ota.example.com:3000\r\n' +
    'User-Agent: MicroPython\r\n' +
    'Content-Type: application/json\r\n' +
    `Content-Length: ${bodyBytes}\r\n` +
    'Connection: close\r\n\r\n'
  );
}

function responseHead(bodyBytes: number): string {
  return (
    'HTTP/1.1 200 OK\r\n' +
    'X-Powered-By: Express\r\n' +
    'Content-Type: application/json; charset=utf-8\r\n' +
    `Content-Length: ${bodyBytes}\r\n` +
    'ETag: W/"1f-8a0f9c2d5b3e4a7c1d2e3f40516273"\r\n' +
    'Date: Fri, 04 Dec 2026 20:00:00 GMT\r\n' +
    'Connection: close\r\n\r\n'
  );
}

/** Cost of one HTTP exchange on a fresh TCP connection, including handshake and close. */
export function httpExchangeCost(requestBody: string, responseBody: string): TransferCost {
  const request = requestHead('/ota', Buffer.byteLength(requestBody)) + requestBody;
  const response = responseHead(Buffer.byteLength(responseBody)) + responseBody;
  const requestBytes = Buffer.byteLength(request);
  const responseBytes = Buffer.byteLength(response);

  const synBytes = IP_TCP_HEADER_BYTES + SYN_OPTION_BYTES;
  const bareBytes = IP_TCP_HEADER_BYTES + DATA_OPTION_BYTES;
  let packets = 3;
  let bytes = 2 * synBytes + bareBytes;

  const requestSegments = Math.ceil(requestBytes / MSS_BYTES);
  const responseSegments = Math.ceil(responseBytes / MSS_BYTES);
  packets += requestSegments + responseSegments;
  bytes += requestBytes + responseBytes + (requestSegments + responseSegments) * bareBytes;

  // Delayed ACKs: one per two segments received, at least one per direction.
  const acks = Math.max(1, Math.ceil(requestSegments / 2)) + Math.max(1, Math.ceil(responseSegments / 2));
  packets += acks;
  bytes += acks * bareBytes;

  // Close: FIN and ACK from each side.
  packets += 4;
  bytes += 4 * bareBytes;

  let slowStartRounds = 0;
  let window = INITIAL_WINDOW_SEGMENTS;
  let sent = window;
  while (sent < responseSegments) {
    slowStartRounds += 1;
    window *= 2;
    sent += window;
  }
  return {
    bytes,
    applicationBytes: requestBytes + responseBytes,
    packets,
    roundTrips: 1 + 1 + slowStartRounds + 1,
  };
}

export function originalCheckCost(deviceId: string, currentVersion: string, offered: string | null): TransferCost {
  const request = JSON.stringify({ device_id: deviceId, current_version: currentVersion, action: 'check_update' });
  const response = offered
    ? JSON.stringify({ update_available: true, version: offered, description: 'New feature update' })
    : JSON.stringify({ update_available: false, current_version: currentVersion });
  return httpExchangeCost(request, response);
}

/** Check plus download of `code`, hex-encoded in JSON as that design sends it. */
export function originalUpdateCost(deviceId: string, fromVersion: string, toVersion: string, code: Buffer): TransferCost {
  const check = originalCheckCost(deviceId, fromVersion, toVersion);
  const request = JSON.stringify({ device_id: deviceId, action: 'download_update' });
  const response = JSON.stringify({ version: toVersion, code: code.toString('hex'), description: 'New feature update' });
  const download = httpExchangeCost(request, response);
  return {
    bytes: check.bytes + download.bytes,
    applicationBytes: check.applicationBytes + download.applicationBytes,
    packets: check.packets + download.packets,
    roundTrips: check.roundTrips + download.roundTrips,
  };
}
