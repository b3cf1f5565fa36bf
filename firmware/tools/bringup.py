"""Bring-up check of a Pico + SIM7020E board: runs each modem step and prints what it found.

Run on a board that already contains the firmware files and /ota_config.json:

    mpremote run firmware/tools/bringup.py

Steps: AT sync (PWRKEY if silent), SIM, signal, attach, DNS, a CoAP GET of
/.well-known/core, the round-trip time of CoAP pings, the largest PDU that
AT+CCOAPSEND accepts and that comes back answered, the largest block that
arrives as one +CCOAPNMI line, and the time of one Ed25519 verification
(which runs without feeding the watchdog). Values it prints are the ones that
docs/firmware.md lists as unverified without hardware.
"""
import time
import binascii
import config
import coap
import sim7020
from coap_client import CoapClient, CoapError, path_options

# Set to a download path such as "d/3f2a9c01b7e4" (from `ota-tool` or a check response)
# to measure the largest block that arrives in one URC line.
DOWNLOAD_PATH = None
# Set True to also time a full PWRKEY off/on cycle.
POWER_CYCLE = False
PING_COUNT = 5
PDU_SIZES = (64, 128, 256, 384, 512, 640, 768, 1024)


def step(title):
    print()
    print("==", title)


def elapsed_ms(start):
    return time.ticks_diff(time.ticks_ms(), start)


def timed_command(modem, cmd, timeout_ms=sim7020.AT_TIMEOUT_MS):
    start = time.ticks_ms()
    lines = modem.command(cmd, timeout_ms)
    print("  ", cmd, "->", lines, "in", elapsed_ms(start), "ms")
    return lines


def raw_send(modem, context, pdu):
    """AT+CCOAPSEND without the driver's 512-byte cap, to find the modem's own limit."""
    hex_pdu = binascii.hexlify(pdu).decode().upper()
    modem.command('%s%d,%d,"%s"' % (sim7020.CMD_COAP_SEND.decode(), context, len(pdu), hex_pdu))


def padded_get(size, mid):
    """GET /.well-known/core padded to size bytes with a Uri-Query option."""
    padding = 0
    pdu = b""
    for _ in range(3):  # the option's extended length can shift the size once
        options = path_options(".well-known/core") + [(coap.OPT_URI_QUERY, b"p=" + b"x" * padding)]
        pdu = coap.encode(coap.TYPE_CON, coap.GET, mid, b"\x01\x02", options)
        if len(pdu) == size:
            break
        padding = max(0, padding + size - len(pdu))
    return pdu


def largest_pdu(modem, transport, ack_timeout_ms):
    best = 0
    for size in PDU_SIZES:
        pdu = padded_get(size, 0x7100 + size)
        try:
            raw_send(modem, transport.context, pdu)
        except sim7020.ModemError as err:
            print("   %4d bytes: modem rejected the send: %s" % (len(pdu), err))
            break
        reply = transport.receive(ack_timeout_ms)
        print("   %4d bytes: %s" % (len(pdu), "answered" if reply else "no answer"))
        if not reply:
            break
        best = len(pdu)
    return best


def largest_block(client, path):
    for szx in range(coap.MAX_SZX + 1):
        options = path_options(path) + [(coap.OPT_BLOCK2, coap.encode_uint(coap.block_value(0, False, szx)))]
        try:
            response = client.request(coap.GET, options)
        except CoapError as err:
            print("   block size %4d: %s" % (coap.block_size(szx), err))
            return coap.block_size(szx - 1) if szx else 0
        print("   block size %4d: %s, %d bytes" % (coap.block_size(szx), coap.code_string(response.code), len(response.payload)))
    return coap.block_size(coap.MAX_SZX)


def time_ed25519(cfg):
    import ed25519
    key = cfg["public_key_bytes"] or bytes(32)
    start = time.ticks_ms()
    result = ed25519.verify(key, b"bring-up", bytes(64))
    duration = elapsed_ms(start)
    print("   one verification took", duration, "ms (result", result, "as expected for a dummy signature)")
    if duration > 7000:
        print("   longer than the 8 s watchdog: set \"watchdog_ms\": 0 in /ota_config.json")


def main():
    cfg = config.load()
    modem = sim7020.Sim7020(cfg["modem_pwrkey_ms"], debug=True)

    step("sync (PWRKEY pulse only if AT gets no answer)")
    start = time.ticks_ms()
    modem.power_on()
    print("   modem answers AT after", elapsed_ms(start), "ms")
    timed_command(modem, sim7020.CMD_ECHO_OFF)
    if POWER_CYCLE:
        step("PWRKEY off/on cycle")
        start = time.ticks_ms()
        modem.restart()
        print("   off, on and answering after", elapsed_ms(start), "ms")
        timed_command(modem, sim7020.CMD_ECHO_OFF)

    step("SIM and signal")
    timed_command(modem, sim7020.CMD_SIM_STATUS)
    print("   rssi, ber:", modem.signal_quality(), "(rssi 99 = unknown, 0..31 = -113..-51 dBm)")

    step("attach")
    start = time.ticks_ms()
    modem.start(cfg["apn"], cfg["attach_timeout_ms"])
    print("   attached after", elapsed_ms(start), "ms")
    timed_command(modem, sim7020.CMD_PDP_INFO)

    step("DNS")
    start = time.ticks_ms()
    address = modem.resolve(cfg["server"])
    print("  ", cfg["server"], "->", address, "in", elapsed_ms(start), "ms")

    step("CoAP GET /.well-known/core")
    transport = modem.coap_open(address, cfg["port"])
    client = CoapClient(transport, cfg["ack_timeout_ms"], cfg["max_retransmit"])
    start = time.ticks_ms()
    response = client.request(coap.GET, path_options(".well-known/core"))
    print("  ", coap.code_string(response.code), "in", elapsed_ms(start), "ms:", bytes(response.payload))

    step("round-trip times of %d CoAP pings (empty CON, answered by RST)" % PING_COUNT)
    times = []
    for mid in range(PING_COUNT):
        start = time.ticks_ms()
        transport.send(coap.encode(coap.TYPE_CON, coap.EMPTY, 0x7000 + mid))
        reply = transport.receive(cfg["ack_timeout_ms"])
        times.append(elapsed_ms(start) if reply else None)
    print("   ms:", times)

    step("largest PDU through AT+CCOAPSEND")
    print("   largest answered PDU:", largest_pdu(modem, transport, cfg["ack_timeout_ms"]), "bytes")

    if DOWNLOAD_PATH:
        step("largest block in one +CCOAPNMI line")
        print("   largest block received:", largest_block(client, DOWNLOAD_PATH), "bytes")

    step("Ed25519 verification time")
    time_ed25519(cfg)

    transport.close()
    print()
    print("bring-up done, bytes sent through the modem:", modem.bytes_sent)


main()
