"""Outbox of update reports that still have to reach the server (/ota_reports.json).

A report waits here when the network is down, and across resets: a rollback is
queued before the launcher switches slots. Entries are [outcome, target, detail];
the running version is added when the report is sent. Writes are atomic
(temporary file plus rename), and an unreadable file counts as empty.
"""
from micropython import const
import json
import os
import log

REPORTS_PATH = "/ota_reports.json"
REPORTS_TMP_PATH = "/ota_reports.tmp"
MAX_PENDING = const(4)

_log = log.Logger("reports")


def pending():
    try:
        with open(REPORTS_PATH) as f:
            entries = json.load(f)
    except (OSError, ValueError):
        return []
    if not isinstance(entries, list):
        return []
    return [entry for entry in entries if isinstance(entry, list) and len(entry) == 3]


def _save(entries):
    text = json.dumps(entries)
    with open(REPORTS_TMP_PATH, "w") as f:
        f.write(text)
    os.rename(REPORTS_TMP_PATH, REPORTS_PATH)


def add(outcome, target, detail=None):
    """Queue a report; an equal outcome for the same target replaces the older one."""
    entries = [entry for entry in pending() if entry[0] != outcome or entry[1] != target]
    entries.append([outcome, target, detail])
    if len(entries) > MAX_PENDING:
        _log.warn("outbox full, oldest report dropped:", entries[0])
        entries = entries[-MAX_PENDING:]
    _save(entries)


def remove(entry):
    entries = [other for other in pending() if other != entry]
    _save(entries)
