// The dashboard: one self-contained HTML page (inline style and script, no external
// assets) that reads the JSON API every few seconds and renders releases, devices and
// recent events. Every value from the store goes into the page through textContent,
// so it is shown as text and never parsed as HTML.
import { createHash } from 'node:crypto';

/** Seconds between two refreshes of the tables. */
export const REFRESH_INTERVAL_S = 5;
/** Events shown under "Recent events". */
export const DASHBOARD_EVENT_COUNT = 30;

const STYLE = `
body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1.6em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 0.25em 0.6em; border-bottom: 1px solid #ddd; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.revoked td { color: #999; text-decoration: line-through; }
#status { color: #666; font-size: 0.9em; }
#status.failed { color: #b00; }
`;

const SCRIPT = `
'use strict';
const REFRESH_MS = ${REFRESH_INTERVAL_S * 1000};
const EVENT_COUNT = ${DASHBOARD_EVENT_COUNT};

function cell(row, value, className) {
  const td = document.createElement('td');
  td.textContent = value === undefined || value === null ? '' : String(value);
  if (className) td.className = className;
  row.appendChild(td);
}

function fill(tableId, items, columns, rowClass) {
  const body = document.querySelector('#' + tableId + ' tbody');
  const rows = [];
  for (const item of items) {
    const row = document.createElement('tr');
    if (rowClass) row.className = rowClass(item);
    for (const column of columns) cell(row, column.value(item), column.className);
    rows.push(row);
  }
  if (rows.length === 0) {
    const row = document.createElement('tr');
    cell(row, 'none yet');
    row.firstChild.colSpan = columns.length;
    rows.push(row);
  }
  body.replaceChildren(...rows);
}

function formatBytes(bytes) {
  if (bytes < 1024) return bytes + ' B';
  if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(1) + ' KiB';
  return (bytes / 1024 / 1024).toFixed(1) + ' MiB';
}

function formatReport(report) {
  if (!report) return '';
  const detail = report.detail ? ' (' + report.detail + ')' : '';
  return report.outcome + ' ' + report.target + detail + ' at ' + report.time;
}

async function getJson(path) {
  const response = await fetch(path, { cache: 'no-store' });
  if (!response.ok) throw new Error(path + ' returned HTTP ' + response.status);
  return response.json();
}

async function refresh() {
  const status = document.getElementById('status');
  try {
    const [releases, devices, events] = await Promise.all([
      getJson('/api/releases'),
      getJson('/api/devices'),
      getJson('/api/events?limit=' + EVENT_COUNT),
    ]);
    fill('releases', releases.releases, [
      { value: (r) => r.version },
      { value: (r) => r.channel },
      { value: (r) => r.rollout + '%', className: 'num' },
      { value: (r) => (r.revoked ? 'yes' : 'no') },
      { value: (r) => formatBytes(r.size), className: 'num' },
      { value: (r) => r.encoding },
      { value: (r) => r.publishedAt },
      { value: (r) => r.startAt },
      { value: (r) => r.notes },
    ], (r) => (r.revoked ? 'revoked' : ''));
    fill('devices', devices.devices, [
      { value: (d) => d.id },
      { value: (d) => (d.registered ? 'yes' : 'no') },
      { value: (d) => d.label },
      { value: (d) => d.version },
      { value: (d) => d.channel },
      { value: (d) => d.lastSeen },
      { value: (d) => d.status },
      { value: (d) => formatReport(d.lastReport) },
      { value: (d) => d.address },
    ]);
    fill('events', events.events, [
      { value: (e) => e.time },
      { value: (e) => e.type },
      { value: (e) => e.device },
      { value: (e) => e.version },
      { value: (e) => e.outcome },
      { value: (e) => e.detail },
    ]);
    status.className = '';
    status.textContent = 'Updated ' + new Date().toLocaleTimeString() + ', refreshing every ' + REFRESH_MS / 1000 + ' s';
  } catch (err) {
    status.className = 'failed';
    status.textContent = 'Refresh failed: ' + err.message + '; retrying in ' + REFRESH_MS / 1000 + ' s';
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
`;

function table(id: string, headings: string[]): string {
  const cells = headings.map((heading) => `<th>${heading}</th>`).join('');
  return `<table id="${id}"><thead><tr>${cells}</tr></thead><tbody><tr><td colspan="${headings.length}">loading</td></tr></tbody></table>`;
}

export const dashboardHtml = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ota-server dashboard</title>
<style>${STYLE}</style>
</head>
<body>
<h1>ota-server</h1>
<noscript><p>The tables are filled by JavaScript. Without it, read the same data as JSON at <a href="/api/releases">/api/releases</a>, <a href="/api/devices">/api/devices</a> and <a href="/api/events">/api/events</a>.</p></noscript>
<p id="status">Loading</p>
<h2>Releases</h2>
${table('releases', ['Version', 'Channel', 'Rollout', 'Revoked', 'Size', 'Encoding', 'Published', 'Starts', 'Notes'])}
<h2>Devices</h2>
${table('devices', ['Device', 'Registered', 'Label', 'Version', 'Channel', 'Last seen', 'Status', 'Last report', 'Address'])}
<h2>Recent events</h2>
${table('events', ['Time', 'Type', 'Device', 'Version', 'Outcome', 'Detail'])}
<script>${SCRIPT}</script>
</body>
</html>
`;

function cspHash(source: string): string {
  return `'sha256-${createHash('sha256').update(source, 'utf8').digest('base64')}'`;
}

/**
 * Response headers of the page. The Content-Security-Policy allows only this page's
 * own inline script and style (by hash) and fetches to the same origin, so even a
 * value that slipped past textContent could not load or run anything.
 */
export const dashboardHeaders: Record<string, string> = {
  'Content-Security-Policy': [
    "default-src 'none'",
    `script-src ${cspHash(SCRIPT)}`,
    `style-src ${cspHash(STYLE)}`,
    "connect-src 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; '),
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
};
