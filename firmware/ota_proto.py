"""Device side of the wire contract: CoAP paths, CBOR keys, outcomes, limits.

Mirrors src/protocol/constants.ts, manifest.ts and bundle.ts; the test
test/firmware/proto-sync.test.ts fails when the two sides disagree.
"""
from micropython import const

# Uri-Path segments (one byte each on air).
PATH_CHECK = "c"
PATH_DOWNLOAD = "d"
PATH_REPORT = "r"

# CoAP Content-Format numbers (RFC 7252 section 12.3, RFC 8949 section 9.5).
FORMAT_LINK = const(40)
FORMAT_OCTET_STREAM = const(42)
FORMAT_JSON = const(50)
FORMAT_CBOR = const(60)

# Check request map keys (device to server).
CHECK_DEVICE_ID = const(0)
CHECK_VERSION = const(1)
CHECK_CHANNEL = const(2)
CHECK_INLINE_SZX = const(3)

# Manifest map keys (server to device, when an update is offered).
MANIFEST_VERSION = const(0)
MANIFEST_PATH = const(1)
MANIFEST_SIZE = const(2)
MANIFEST_SHA256 = const(3)
MANIFEST_SIGNATURE = const(4)
MANIFEST_ENCODING = const(5)
MANIFEST_BLOCK_SIZE = const(6)
MANIFEST_PAYLOAD = const(7)

# Report map keys (device to server).
REPORT_DEVICE_ID = const(0)
REPORT_VERSION = const(1)
REPORT_OUTCOME = const(2)
REPORT_TARGET = const(3)
REPORT_DETAIL = const(4)

# Update outcomes.
OUTCOME_INSTALLED = const(0)
OUTCOME_CONFIRMED = const(1)
OUTCOME_VERIFY_FAILED = const(2)
OUTCOME_ROLLED_BACK = const(3)
OUTCOME_DOWNLOAD_FAILED = const(4)
OUTCOME_INSTALL_FAILED = const(5)

# Payload encodings; deflate is a zlib stream (RFC 1950).
ENCODING_RAW = const(0)
ENCODING_DEFLATE = const(1)

MAX_DEVICE_ID_BYTES = const(64)
MAX_VERSION_BYTES = const(32)
MAX_CHANNEL_BYTES = const(32)
MAX_DETAIL_BYTES = const(200)
DEFAULT_CHANNEL = "stable"

# Inline payloads: a check without key 3 means SZX 4 (256 bytes), and the server
# inlines at most SZX 5 (512 bytes) whatever the device sends.
DEFAULT_INLINE_SZX = const(4)
MAX_INLINE_SZX = const(5)

# Hex characters of the SHA-256 that name a download resource (48 bits).
DOWNLOAD_ID_HEX_CHARS = const(12)
# Bytes of the SHA-256 used as the strong ETag.
ETAG_BYTES = const(8)
# Max-Age of image blocks in seconds (one year).
IMAGE_MAX_AGE_S = const(31536000)

# Domain separation prefix of the Ed25519 signed message.
SIGNATURE_CONTEXT = b"pico-ota manifest v1\x00"

# Release bundle: "PB" 0x01, then entries, then a zero name length.
BUNDLE_MAGIC = b"PB\x01"
MAX_NAME_BYTES = const(64)
