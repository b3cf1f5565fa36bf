"""OTA client: check-in, resumable Block2 download, verification, install, reports.

A check-in sends POST /c, confirms a trial version when that succeeds and
sends the queued reports (POST /r). When a manifest is offered, it verifies
the signature and downloads the image block by block into /ota_staging.bin.
Then it checks the SHA-256, unpacks the image into the inactive slot, switches
to that slot on trial and resets. Nothing is unpacked before the Ed25519
signature and the digest both pass.
"""
from micropython import const
import binascii
import hashlib
import json
import os
import struct
import cbor
import coap
import log
import ota_proto as proto
import reports
import slots
from coap_client import CoapClient, CoapError, RequestSlot, path_options

STAGING_PATH = "/ota_staging.bin"
STAGING_MANIFEST_PATH = "/ota_staging.json"
# Tries per block on top of the CoAP retransmissions of each try.
BLOCK_TRIES = const(3)
# Whole downloads of one offer before a SHA-256 mismatch rejects the version. The
# modem's UART carries the hex without parity or checksum, so one mismatch may come
# from a line error, and a second download from scratch distinguishes it from a bad release.
DIGEST_TRIES = const(2)
# Free flash kept after the staging file, for the state, outbox and log files.
FLASH_RESERVE_BYTES = const(8192)
# Consecutive failed check-ins after which the modem is power-cycled.
MODEM_RESTART_AFTER = const(2)
# Wait after a 5.03 without Max-Age: the option's default (RFC 7252 section 5.10.5).
DEFAULT_MAX_AGE_S = const(60)
# Maximum wait taken from a 5.03, one day: time.ticks_add takes at most half the
# ticks period (about 6 days of ms on rp2), and a longer pause would strand the device.
MAX_RETRY_AFTER_S = const(86400)
BUFFER_BYTES = const(512)
# A block GET is header 4, token 4, Uri-Path "d" and the 12-character id 15, Block2
# up to 4 and Size2 1 bytes: 28 bytes; 64 leaves room for a longer path.
BLOCK_REQUEST_BYTES = const(64)

_log = log.Logger("ota")
# Outcome codes as words for the serial log; reports carry the codes.
_OUTCOME_WORDS = {
    proto.OUTCOME_VERIFY_FAILED: "verification failed",
    proto.OUTCOME_DOWNLOAD_FAILED: "download failed, staged bytes kept for the next check-in",
    proto.OUTCOME_INSTALL_FAILED: "installation failed",
}


class UpdateError(Exception):
    """An update stopped; outcome is the report code, detail the text for people."""

    def __init__(self, outcome, detail):
        super().__init__(detail)
        self.outcome = outcome
        self.detail = detail


class ServerBusy(Exception):
    """The server responded 5.03; retry_after_s is its Max-Age, capped at MAX_RETRY_AFTER_S."""

    def __init__(self, retry_after_s, detail):
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class CheckRejected(Exception):
    """The server responded to the check with an error code: the link works, the request does not."""


def _server_busy(response, request_name):
    max_age_s = response.uint_option(coap.OPT_MAX_AGE)
    retry_after_s = min(DEFAULT_MAX_AGE_S if max_age_s is None else max_age_s, MAX_RETRY_AFTER_S)
    return ServerBusy(retry_after_s, "%s returned 5.03, retry in %d s: %s" % (request_name, retry_after_s, bytes(response.payload)))


class DigestMismatch(UpdateError):
    """The staged image does not hash to the manifest's SHA-256."""

    def __init__(self, detail):
        super().__init__(proto.OUTCOME_VERIFY_FAILED, detail)


def signed_message(version, size, sha256, encoding):
    """Build the bytes the release signature covers (src/protocol/manifest.ts)."""
    return proto.SIGNATURE_CONTEXT + sha256 + struct.pack(">IB", size, encoding) + version.encode()


def parse_manifest(manifest):
    """Check the types and ranges of a manifest map; return it as a dict with names."""
    try:
        offer = {
            "version": manifest[proto.MANIFEST_VERSION],
            "path": manifest[proto.MANIFEST_PATH],
            "size": manifest[proto.MANIFEST_SIZE],
            "sha256": manifest[proto.MANIFEST_SHA256],
            "signature": manifest[proto.MANIFEST_SIGNATURE],
            "encoding": manifest.get(proto.MANIFEST_ENCODING, proto.ENCODING_RAW),
            "block_size": manifest.get(proto.MANIFEST_BLOCK_SIZE, 1024),
            "payload": manifest.get(proto.MANIFEST_PAYLOAD),
        }
    except (KeyError, TypeError) as err:
        raise UpdateError(proto.OUTCOME_VERIFY_FAILED, "manifest lacks key %s" % err)
    problems = (
        (isinstance(offer["version"], str) and 0 < len(offer["version"]) <= proto.MAX_VERSION_BYTES, "version"),
        (isinstance(offer["path"], str) and offer["path"].strip("/").startswith(proto.PATH_DOWNLOAD + "/"), "path"),
        (isinstance(offer["size"], int) and 0 < offer["size"] < 0x100000000, "size"),
        (isinstance(offer["sha256"], bytes) and len(offer["sha256"]) == 32, "sha256"),
        (isinstance(offer["signature"], bytes) and len(offer["signature"]) == 64, "signature"),
        (offer["encoding"] in (proto.ENCODING_RAW, proto.ENCODING_DEFLATE), "encoding"),
        (isinstance(offer["block_size"], int) and 16 <= offer["block_size"] <= 1024, "block size"),
    )
    payload = offer["payload"]
    if payload is not None and not (isinstance(payload, bytes) and len(payload) == offer["size"]):
        raise UpdateError(proto.OUTCOME_VERIFY_FAILED, "manifest payload invalid: %s, expected %d bytes"
                          % ("%d bytes" % len(payload) if isinstance(payload, bytes) else type(payload).__name__, offer["size"]))
    for ok, name in problems:
        if not ok:
            raise UpdateError(proto.OUTCOME_VERIFY_FAILED, "manifest %s invalid: %r" % (name, offer[name.replace(" ", "_")]))
    return offer


class Updater:
    """Runs check-ins for the launcher; everything comes from the configuration dict.

    transport_factory() -> transport replaces the modem (tests, other links);
    idle() runs while waiting (WDT feed, LED); reset() restarts the board.
    """

    def __init__(self, config, led=None, idle=None, reset=None, transport_factory=None):
        self.config = config
        self.led = led
        self.idle = idle
        self._reset = reset
        self._transport_factory = transport_factory
        self._modem = None
        self._transport = None
        self.client = None
        self._failures = 0
        # Seconds the server asked the next check-in to wait (Max-Age of a 5.03), else 0.
        self.retry_after_s = 0
        self._buf = bytearray(BUFFER_BYTES)
        self._slots = []
        self._hold = bytearray(0)

    # Connection ----------------------------------------------------------

    def _connect(self):
        config = self.config
        if self._transport_factory:
            self._transport = self._transport_factory()
        else:
            import sim7020
            if self._modem is None:
                self._modem = sim7020.Sim7020(config["modem_pwrkey_ms"], config["modem_debug"], self.idle)
            elif self._failures >= MODEM_RESTART_AFTER:
                self._modem.restart()
                self._failures = 0
            self._modem.start(config["apn"], config["attach_timeout_ms"])
            address = self._modem.resolve(config["server"])
            self._transport = self._modem.coap_open(address, config["port"])
        self.client = CoapClient(self._transport, config["ack_timeout_ms"], config["max_retransmit"],
                                 config["exchange_deadline_ms"], idle=self.idle)
        return self.client

    def disconnect(self):
        """Close the CoAP context; the next check-in opens a new one."""
        transport = self._transport
        self.client = None
        self._transport = None
        if transport and hasattr(transport, "close"):
            try:
                transport.close()
            except Exception as err:  # the link is being dropped anyway
                _log.warn("closing the CoAP context failed:", err)

    # Check-in ------------------------------------------------------------

    def check_in(self, state):
        """Run one check-in and return the (possibly new) slot state.

        Resets the board after a successful install, so it returns only when no
        update was installed. After a 5.03, retry_after_s is the wait the server asked for.
        """
        self.retry_after_s = 0
        try:
            client = self._connect()
            manifest = self.check(client, state)
        except ServerBusy as err:
            # The link works and the server responded, so this is no link failure and
            # does not count toward a modem restart.
            self._failures = 0
            self.retry_after_s = err.retry_after_s
            _log.warn("server busy, next check-in in", err.retry_after_s, "s at the earliest:", err)
            self.disconnect()
            return state
        except CheckRejected as err:
            # Such as 4.03 for a device the server does not know: power-cycling the
            # modem cannot fix that, so it is no link failure either.
            self._failures = 0
            _log.error("check-in rejected by the server:", err)
            self.disconnect()
            return state
        except Exception as err:  # modem, network or server fault: retry next interval
            self._failures += 1
            _log.error("check-in failed:", err)
            self.disconnect()
            return state
        self._failures = 0
        try:
            if state["trial"]:
                _log.info("trial version confirmed:", slots.running_version(state))
                # Queued before the state leaves the trial: after a power cut in between,
                # the next boot is still a trial and confirms again, and the outbox keeps
                # one report per outcome and version. The other order lost the report.
                reports.add(proto.OUTCOME_CONFIRMED, slots.running_version(state))
                state = slots.confirmed(state)
                slots.save(state)
            self.send_reports(client, state)
            if manifest is None:
                _log.info("no update offered, up to date on", slots.running_version(state))
                _remove_staging()
                self.request_power_saving()
                return state
            return self.update(client, state, manifest)
        finally:
            # A fresh CoAP context per check-in: opening one costs no air time, and a
            # modem reset between check-ins would leave the old context id invalid.
            self.disconnect()

    def request_power_saving(self):
        """Send AT+CPSMS with the configured timers, so the modem enters PSM until the next check-in.

        Sent after every check-in without an update: one AT command costs no air
        time, and a modem that lost power since the last one forgot the request.
        """
        modem = self._modem
        if modem is None:
            return
        import psm
        import sim7020
        tau_s = self.config["psm_tau_s"]
        try:
            if tau_s:
                modem.set_psm(True, psm.encode_tau(tau_s), psm.encode_active(self.config["psm_active_s"]))
            else:
                modem.set_psm(False, psm.DEACTIVATED, psm.DEACTIVATED)
        except sim7020.ModemError as err:  # the modem still works, only without PSM
            _log.warn("power saving mode request failed:", err)

    def check(self, client, state):
        """POST /c; return the manifest map, or None when no update is offered."""
        request = {proto.CHECK_DEVICE_ID: self.config["device_id"], proto.CHECK_VERSION: slots.running_version(state)}
        if self.config["channel"] != proto.DEFAULT_CHANNEL:
            request[proto.CHECK_CHANNEL] = self.config["channel"]
        # The answer may carry a payload that fits one block of this device's size.
        inline_szx = min(coap.szx_for(self.config["block_size"]), proto.MAX_INLINE_SZX)
        if inline_szx != proto.DEFAULT_INLINE_SZX:
            request[proto.CHECK_INLINE_SZX] = inline_szx
        options = path_options(proto.PATH_CHECK)
        options.append((coap.OPT_CONTENT_FORMAT, coap.encode_uint(proto.FORMAT_CBOR)))
        response = client.request(coap.POST, options, cbor.encode(request))
        if response.code == coap.SERVICE_UNAVAILABLE:
            raise _server_busy(response, "check")
        if response.code != coap.CONTENT:
            raise CheckRejected("check returned %s: %s" % (coap.code_string(response.code), bytes(response.payload)))
        manifest = cbor.decode(response.payload)
        if not isinstance(manifest, dict):
            raise ValueError("check response is not a CBOR map: %r" % (manifest,))
        return manifest or None

    def send_reports(self, client, state):
        """POST /r each queued report; keep those that could not be delivered."""
        for entry in reports.pending():
            outcome, target, detail = entry
            body = {proto.REPORT_DEVICE_ID: self.config["device_id"], proto.REPORT_VERSION: slots.running_version(state),
                    proto.REPORT_OUTCOME: outcome, proto.REPORT_TARGET: target}
            if detail:
                body[proto.REPORT_DETAIL] = detail[:proto.MAX_DETAIL_BYTES]
            options = path_options(proto.PATH_REPORT)
            options.append((coap.OPT_CONTENT_FORMAT, coap.encode_uint(proto.FORMAT_CBOR)))
            try:
                response = client.request(coap.POST, options, cbor.encode(body))
            except CoapError as err:
                _log.warn("report not sent, kept for later:", err)
                return
            if response.code == coap.SERVICE_UNAVAILABLE:
                _log.warn("report not sent, kept for later:", _server_busy(response, "report"))
                return
            if response.code != coap.CHANGED:
                # A 4.xx will not change on a retry, so the report is dropped, not kept forever.
                _log.error("report rejected by the server:", coap.code_string(response.code), bytes(response.payload))
            reports.remove(entry)

    # Update --------------------------------------------------------------

    def update(self, client, state, manifest):
        """Verify, download, install and reset; on failure report and keep running."""
        offer = None
        target = manifest.get(proto.MANIFEST_VERSION)
        try:
            offer = parse_manifest(manifest)
            if offer["version"] in state["rejected"]:
                _log.info("offer ignored, version rejected earlier:", offer["version"])
                return state
            _log.info("update offered: %s, %d bytes (%s)" % (offer["version"], offer["size"],
                      "deflate" if offer["encoding"] == proto.ENCODING_DEFLATE else "raw"))
            if self.led:
                self.led.set_updating(True)
            self.verify_signature(offer)
            self.download(client, offer)
            state = self.install(state, offer)
        except UpdateError as err:
            return self._fail(client, state, offer, target, err)
        finally:
            if self.led:
                self.led.set_updating(False)
        # NOTE: a power cut between the state switch above and this write loses the
        # "installed" report; the "confirmed" report of the trial still reaches the server.
        reports.add(proto.OUTCOME_INSTALLED, offer["version"])
        _remove_staging()
        self.send_reports(client, state)
        _log.info("installed, resetting into the trial:", offer["version"])
        self.reset()
        return state

    def _fail(self, client, state, offer, target, err):
        if not isinstance(target, str):
            target = "unknown"
        _log.error("update of %s failed (%s): %s" % (target, _OUTCOME_WORDS.get(err.outcome, err.outcome), err.detail))
        if err.outcome in (proto.OUTCOME_VERIFY_FAILED, proto.OUTCOME_INSTALL_FAILED):
            _remove_staging()
            if offer:
                state = slots.rejecting(state, offer["version"])
                slots.save(state)
            if self.led:
                self.led.sos(1, self.idle)
        reports.add(err.outcome, target, err.detail)
        self.send_reports(client, state)
        return state

    def verify_signature(self, offer):
        key = self.config["public_key_bytes"]
        if key is None:
            raise UpdateError(proto.OUTCOME_VERIFY_FAILED, "no public_key configured: add it with ota-tool device add")
        message = signed_message(offer["version"], offer["size"], offer["sha256"], offer["encoding"])
        import ed25519
        if not ed25519.verify(key, message, offer["signature"]):
            raise UpdateError(proto.OUTCOME_VERIFY_FAILED, "Ed25519 signature of %s invalid" % offer["version"])
        _log.info("signature verified")

    def download(self, client, offer):
        """Fetch the image into the staging file, resuming, and check its SHA-256.

        After a mismatch the staged bytes are discarded and the image is fetched again
        over Block2, also when it came inline; DIGEST_TRIES mismatches raise DigestMismatch.
        """
        for attempt in range(1, DIGEST_TRIES + 1):
            try:
                for _ in self.download_blocks(client, offer):
                    pass
                return
            except DigestMismatch as err:
                _remove_staging()
                if attempt == DIGEST_TRIES:
                    raise DigestMismatch("%s, %d downloads" % (err.detail, DIGEST_TRIES))
                _log.warn("%s: %s, fetching it again (download %d of %d)"
                          % (offer["version"], err.detail, attempt + 1, DIGEST_TRIES))
                offer["payload"] = None

    def download_blocks(self, client, offer):
        """Run download() as a generator that yields the staged byte count after each block response.

        A block that arrives ahead of a gap is held, and the count repeats. download()
        consumes it in one loop. The heap test drives it one response per top-level
        call of the test harness, so garbage is collected between responses.
        A payload that came inline with the manifest is staged in one step.
        """
        size = offer["size"]
        digest = hashlib.sha256()
        if offer["payload"] is not None:
            if self._resume_offset(offer, size, digest) < size:
                self._stage_inline(offer["payload"], digest)
                yield size
        else:
            for offset in self._download_window(client, offer, digest):
                yield offset

        if digest.digest() != offer["sha256"]:
            raise DigestMismatch("SHA-256 of the %d downloaded bytes does not match the manifest" % size)
        _log.info("download complete, SHA-256 verified")

    def _stage_inline(self, payload, digest):
        """Write a payload that the check answer carried to the staging file, as a download would."""
        with open(STAGING_PATH, "wb") as staging:
            staging.write(payload)
            staging.flush()
        digest.update(payload)
        _log.info("payload of %d bytes came with the manifest, no Block2 request needed" % len(payload))

    def _download_window(self, client, offer, digest):
        """Fetch the missing blocks with up to block_window requests in flight; yield after each response.

        RFC 7252 section 4.7 limits a client to NSTART = 1 outstanding interaction per
        server by default and lets configuration raise it. This client raises it for
        the one server it is configured for, because each NB-IoT round trip costs a
        second or more of radio time, and the server keeps no per-request state
        (any block, any order). block_window 1 restores stop-and-wait.
        Blocks are requested only inside [next to write, next to write + window), so
        a block number owns hold buffer num % window while it is in flight or held,
        and nothing is allocated per block for reordering.
        """
        size = offer["size"]
        szx = coap.szx_for(min(self.config["block_size"], offer["block_size"]))
        block_bytes = coap.block_size(szx)
        window = self.config["block_window"]
        offset = self._resume_offset(offer, block_bytes, digest)
        if offset >= size:
            return  # staged whole before a reset; only the digest check is left
        last_num = (size - 1) // block_bytes

        etag = offer["sha256"][:proto.ETAG_BYTES]
        options = path_options(offer["path"])
        options.append(None)  # Block2, set per request
        block_index = len(options) - 1
        request_slots = self._request_slots(window)
        hold_buffers = self._hold_buffers(window, block_bytes)
        hold_lengths = [0] * window  # 0 marks a free hold buffer
        tries = [0] * window

        _log.info("downloading %d bytes in blocks of %d, from byte %d, %d in flight"
                  % (size, block_bytes, offset, window))
        with open(STAGING_PATH, "r+b" if offset else "wb") as staging:
            staging.seek(offset)
            next_write = offset // block_bytes
            next_request = next_write
            while next_write <= last_num:
                for slot in request_slots:
                    if next_request > last_num or next_request >= next_write + window:
                        break
                    if not slot.active:
                        tries[next_request % window] = 0
                        self._start_block(client, slot, options, block_index, next_request, szx, tries, window)
                        next_request += 1

                try:
                    slot, result = client.poll(request_slots)
                except CoapError as err:  # the transport failed, not one exchange
                    raise UpdateError(proto.OUTCOME_DOWNLOAD_FAILED, "receiving block %d: %s" % (next_write, err))
                num = slot.tag
                if isinstance(result, CoapError):
                    self._start_block(client, slot, options, block_index, num, szx, tries, window, result)
                    continue
                payload = self._check_block(result, num, szx, etag, size, num * block_bytes)
                if num != next_write:
                    # Arrived ahead of a block still in flight: held until the gap fills.
                    index = num % window
                    hold_buffers[index][:len(payload)] = payload
                    hold_lengths[index] = len(payload)
                    yield offset
                    continue
                self._write_block(staging, payload, digest)
                offset += len(payload)
                next_write += 1
                yield offset
                while next_write <= last_num and hold_lengths[next_write % window]:
                    index = next_write % window
                    self._write_block(staging, hold_buffers[index][:hold_lengths[index]], digest)
                    offset += hold_lengths[index]
                    hold_lengths[index] = 0
                    next_write += 1
                    yield offset

    def _start_block(self, client, slot, options, block_index, num, szx, tries, window, failure=None):
        """Send the GET of block num on slot; after failure, retry until BLOCK_TRIES tries of num failed."""
        while True:
            if failure is not None:
                tries[num % window] += 1
                _log.warn("block", num, "try", tries[num % window], "failed:", failure)
                if tries[num % window] >= BLOCK_TRIES:
                    raise UpdateError(proto.OUTCOME_DOWNLOAD_FAILED, "block %d: %s" % (num, failure))
            options[block_index] = (coap.OPT_BLOCK2, coap.encode_uint(coap.block_value(num, False, szx)))
            if num == 0:
                options.append((coap.OPT_SIZE2, b""))
            try:
                client.start(slot, coap.GET, options, tag=num)
                return
            except CoapError as err:
                failure = err
            finally:
                if num == 0:
                    options.pop()

    def _write_block(self, staging, payload, digest):
        staging.write(payload)
        staging.flush()
        digest.update(payload)
        if self.led:
            self.led.service()

    def _request_slots(self, window):
        """Return window request slots, allocated once per Updater and reused by every download."""
        if len(self._slots) != window:
            self._slots = [RequestSlot(BLOCK_REQUEST_BYTES) for _ in range(window)]
        for slot in self._slots:
            slot.active = False  # a download that failed left its requests behind
        return self._slots

    def _hold_buffers(self, window, block_bytes):
        """Return window views of block_bytes each into one buffer kept for the next download."""
        needed = window * block_bytes
        if len(self._hold) < needed:
            self._hold = bytearray(needed)
        view = memoryview(self._hold)
        return [view[i * block_bytes:(i + 1) * block_bytes] for i in range(window)]

    def _check_block(self, response, num, szx, etag, size, offset):
        """Return the payload of a block response after checking it fits the image."""
        if response.code != coap.CONTENT:
            raise UpdateError(proto.OUTCOME_DOWNLOAD_FAILED, "block %d returned %s: %s"
                              % (num, coap.code_string(response.code), bytes(response.payload)))
        got_etag = response.option(coap.OPT_ETAG)
        if got_etag is None or bytes(got_etag) != etag:
            raise UpdateError(proto.OUTCOME_DOWNLOAD_FAILED, "block %d ETag %s, expected %s"
                              % (num, got_etag and binascii.hexlify(got_etag), binascii.hexlify(etag)))
        block = response.uint_option(coap.OPT_BLOCK2)
        if block is None:
            raise UpdateError(proto.OUTCOME_DOWNLOAD_FAILED, "block %d response has no Block2 option" % num)
        got_num, more, got_szx = coap.parse_block(block)
        if got_num != num or got_szx != szx:
            raise UpdateError(proto.OUTCOME_DOWNLOAD_FAILED, "asked block %d SZX %d, got block %d SZX %d" % (num, szx, got_num, got_szx))
        total = response.uint_option(coap.OPT_SIZE2)
        if total is not None and total != size:
            raise UpdateError(proto.OUTCOME_DOWNLOAD_FAILED, "Size2 %d, manifest size %d" % (total, size))
        expected = min(coap.block_size(szx), size - offset)
        payload = response.payload
        if len(payload) != expected or more != (offset + expected < size):
            raise UpdateError(proto.OUTCOME_DOWNLOAD_FAILED, "block %d has %d bytes and M=%d, expected %d bytes of %d"
                              % (num, len(payload), more, expected, size))
        return payload

    def _resume_offset(self, offer, block_bytes, digest):
        """Return where to continue: the staged bytes when they belong to this offer.

        The staged bytes are re-hashed into digest. A partial last block (staged
        with another block size) is fetched again.
        """
        staged = _read_staging_manifest()
        fingerprint = _fingerprint(offer)
        if staged == fingerprint:
            try:
                staged_bytes = os.stat(STAGING_PATH)[6]
            except OSError:
                staged_bytes = 0
            if staged_bytes <= offer["size"]:
                if staged_bytes < offer["size"]:
                    staged_bytes -= staged_bytes % block_bytes
                if staged_bytes:
                    # A power cut can leave the manifest without the staging file: nothing to hash then.
                    self._hash_file(staged_bytes, digest)
                    _log.info("resuming a staged download at byte", staged_bytes)
                return staged_bytes
        _remove_staging()
        free = _free_bytes()
        if free is not None and free < offer["size"] + FLASH_RESERVE_BYTES:
            raise UpdateError(proto.OUTCOME_DOWNLOAD_FAILED, "%d bytes of flash free, the image needs %d plus %d reserve"
                              % (free, offer["size"], FLASH_RESERVE_BYTES))
        text = json.dumps(fingerprint)
        with open(STAGING_MANIFEST_PATH, "w") as f:
            f.write(text)
        return 0

    def _hash_file(self, count, digest):
        buf = self._buf
        view = memoryview(buf)
        with open(STAGING_PATH, "rb") as f:
            left = count
            while left:
                n = f.readinto(view[:min(left, len(buf))])
                if not n:
                    raise UpdateError(proto.OUTCOME_DOWNLOAD_FAILED, "staging file shorter than %d bytes" % count)
                digest.update(view[:n])
                left -= n

    def install(self, state, offer):
        """Unpack the verified staging file into the inactive slot and switch to it on trial."""
        import bundle
        target = slots.other(state["active"])
        _log.info("unpacking into slot", target)
        try:
            slots.clear(target)
            with open(STAGING_PATH, "rb") as staging:
                names = bundle.unpack(staging, slots.slot_dir(target), offer["encoding"] == proto.ENCODING_DEFLATE, self._buf,
                                      self.idle)
        except (ValueError, OSError) as err:
            raise UpdateError(proto.OUTCOME_INSTALL_FAILED, "unpacking %s failed: %s" % (offer["version"], err))
        if slots.APP_FILE not in names:
            raise UpdateError(proto.OUTCOME_INSTALL_FAILED, "bundle of %s has no %s" % (offer["version"], slots.APP_FILE))
        state = slots.begin_trial(state, target, offer["version"])
        slots.save(state)
        return state

    def reset(self):
        self.disconnect()
        if self._reset:
            self._reset()
        else:
            import machine
            machine.reset()


def _fingerprint(offer):
    return {"version": offer["version"], "path": offer["path"], "size": offer["size"],
            "sha256": binascii.hexlify(offer["sha256"]).decode(), "encoding": offer["encoding"]}


def _read_staging_manifest():
    try:
        with open(STAGING_MANIFEST_PATH) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _remove_staging():
    for path in (STAGING_PATH, STAGING_MANIFEST_PATH):
        try:
            os.remove(path)
        except OSError:
            pass  # already gone


def _free_bytes():
    try:
        stat = os.statvfs("/")
    except (OSError, AttributeError):
        return None
    return stat[1] * stat[4]  # f_frsize * f_bavail
