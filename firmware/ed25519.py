# Ed25519 signature verification (RFC 8032 section 5.1.7) in pure MicroPython, used
# by the OTA client to check a release manifest before anything is installed.
# Verification only: the device has no private key. All arithmetic is on Python
# ints, and MicroPython's C three-argument pow() does the two exponentiations.
from sha512 import sha512

# Field prime p = 2**255 - 19 and group order L (RFC 8032 section 5.1).
_P = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFED
_L = 0x1000000000000000000000000000000014DEF9DEA2F79CD65812631A5CF5D3ED
# Curve constant d = -121665 / 121666 mod p, and 2 * d for the addition formula.
_D = 0x52036CEE2B6FFE738CC740797779E89800700A4D4141D8AB75EB4DCA135978A3
_D2 = (2 * _D) % _P
# A square root of -1 mod p, 2**((p - 1) / 4) (RFC 8032 section 5.1.3 step 3).
_SQRT_M1 = 0x2B8324804FC1DF0B2B4D00993DFBD7A72F431806AD2FE478C4EE1B274A0EA0B0
# Base point B (RFC 8032 section 5.1): y = 4/5, x even.
_BX = 0x216936D3CD6E53FEC0A4E231FDD6DC5C692CC7609525A7B2C9562D608F25D51A
_BY = 0x6666666666666666666666666666666666666666666666666666666666666658

_Y_MASK = (1 << 255) - 1

# wNAF window widths. Digits of a width-w NAF are odd, lie in (-2**(w-1), 2**(w-1))
# and are followed by at least w - 1 zeros. So a 253-bit scalar costs about
# 253 / (w + 1) point additions, with a table of 2**(w-2) odd multiples. A wider
# table for B would save a few additions per call but cost heap on every device.
_B_WINDOW = 5
_A_WINDOW = 5

# 1B, 3B, ..., 15B in affine cached form (Y + X, Y - X, 2Z, 2dT) with Z = 1, so
# that the first verification after boot builds nothing for B. The test suite
# recomputes these values from B.
_B_MULTIPLES = (
    (
        0x07CF9D3A33D4BA65270B4898643D42C2CF932DC6FB8C0E192FBC93C6F58C3B85,
        0x44FD2F9298F81267A5C18434688F8A09FD399F05D140BEB39D103905D740913E,
        2,
        0x6F117B689F0C65A85A1B7DCBDD43598C26D9E823CCAAC49EABC91205877AAA68,
    ),
    (
        0x7A164E1B9A80F8F4C11B50029F016732025A8430E8864B8AAF25B0A84CEE9730,
        0x2AB91587555BDA628131F31A214BD6BD3BD353FDE5C1BA7D56611FE8A4FCD265,
        2,
        0x5A2826AF12B9B4C6D170E5458CF2DB4C589423221C35DA6214AE933F0DD0D889,
    ),
    (
        0x2945CCF146E206EBDD1BEB0C5ABFEC448D5048C3C75EED02A212BC4408A5BB33,
        0x154A7E73EB1B55F3E33CF11CB864A087D50014D14B2729B77F9182C3A447D6BA,
        2,
        0x43AABE696B3BB69AB41B670B1BBDA72D270E0807D0BDD1FCBCBBDBF1812A8285,
    ),
    (
        0x461BEA69283C927E71B2528228542E497470353AB39DC0D26B1A5CD0944EA3BF,
        0x1D6EDD5D2E5317E09DEA764F92192C3A6CA021533BBA23A7BA6F2C9AAA3221B1,
        2,
        0x7A9FBB1C6A0F90A7529C41BA5877ADF3B3035F47053EA49AF1836DC801B8B3A2,
    ),
    (
        0x34B9ED338ADD7F59CEB233C9C686F5B5A6509E6F51BC46C59B2E678AA6A8632F,
        0x49C05A51FADC9C8F96CBC608E75EB04498A081B6F520419BF36E217E039D8064,
        2,
        0x73C172021B008B06AAF6FC2993D4CF16E2FF83E8A719D22F06B4E8BF9045AF1B,
    ),
    (
        0x4275AAE2546D8FAF113E847117703406E5D9FECF02302E272FBF00848A802ADE,
        0x18AB598029D5C77FA3A075556A8DEB953ED6B36977088381315F5B0249864348,
        2,
        0x3DC65522B53DF94844311199B51A8622031EB4A13282E4A4D82B2CC5FD6089E9,
    ),
    (
        0x234FD7EEC346F241537A0E12FB07BA07BF84B39AB5BCDEDBBF70C222A2007F6D,
        0x0267882D176024A79D12B232AAAD5968AEFCEBC99B776F6B506F013B327FBF93,
        2,
        0x497BA6FDAA097863A2EF37F891A7E5332437E6B1DF8DD4715360A119732EA378,
    ),
    (
        0x61E22917F12DE72B2DBDBDFAC1F2D4D08648C28D189C246D24CECC0313CFEAA0,
        0x43B5CD4218D05EBF7508300807B25192D3829BA42A9910D6040BCD86468CCF0B,
        2,
        0x511D61210AE4D842032E5A7D93D64270EB38AF4E373FDEEE5D9A762F9BD0B516,
    ),
)


def verify(public_key, message, signature):
    """Return True if signature is a valid Ed25519 signature of message by public_key.

    Return False, and never raise, for a key that is not 32 bytes or does not
    decode to a curve point, a signature that is not 64 bytes, a non-canonical S
    (S >= L), or a signature that does not match. Inputs are bytes-like objects.
    The check is the cofactorless equation [S]B = R + [k]A, done as
    encode([S]B - [k]A) == R, which also rejects a non-canonical R.
    """
    try:
        return _verify(public_key, message, signature)
    except (TypeError, ValueError, MemoryError):
        # Fails closed: an input of the wrong type or running out of heap means
        # "not verified", never an exception inside the update state machine.
        return False


def _verify(public_key, message, signature):
    if len(public_key) != 32 or len(signature) != 64:
        return False
    r_bytes = bytes(signature[:32])
    s = int.from_bytes(bytes(signature[32:]), "little")
    if s >= _L:
        return False
    key_point = _decode_point(bytes(public_key))
    if key_point is None:
        return False

    # Challenge k = SHA-512(R || A || M) as a little-endian integer mod L
    # (RFC 8032 section 5.1.7 step 2).
    h = sha512(r_bytes)
    h.update(public_key)
    h.update(message)
    k = int.from_bytes(h.digest(), "little") % _L

    # [S]B - [k]A = [S]B + [k](-A), and -(x, y) = (-x, y).
    x, y = key_point
    X, Y, Z = _double_scalar_mult(s, k, _P - x, y)
    z_inv = pow(Z, _P - 2, _P)
    x = X * z_inv % _P
    y = Y * z_inv % _P
    return (y | (x & 1) << 255) == int.from_bytes(r_bytes, "little")


def _decode_point(encoded):
    """Decode a 32-byte point (RFC 8032 section 5.1.3) to affine (x, y), or None.

    Rejects y >= p, a y with no x on the curve, and x = 0 with the sign bit set.
    """
    n = int.from_bytes(encoded, "little")
    sign = n >> 255
    y = n & _Y_MASK
    if y >= _P:
        return None

    # x**2 = u / v with u = y**2 - 1 and v = d * y**2 + 1. The candidate root
    # x = u * v**3 * (u * v**7) ** ((p - 5) / 8) needs one exponentiation and no
    # separate inversion.
    yy = y * y % _P
    u = (yy - 1) % _P
    v = (_D * yy + 1) % _P
    v3 = v * v % _P * v % _P
    uv3 = u * v3 % _P
    x = uv3 * pow(uv3 * v3 % _P * v % _P, (_P - 5) >> 3, _P) % _P

    vxx = v * x % _P * x % _P
    if vxx != u:
        if vxx != _P - u:
            return None
        x = x * _SQRT_M1 % _P

    if x == 0 and sign:
        return None
    if x & 1 != sign:
        x = _P - x
    return x, y


def _wnaf(scalar, width):
    """Return the width-w NAF digits of a scalar below 2**253, least significant first.

    Works on the scalar's bytes so that the loop handles small ints only. The
    list has 256 entries, because the last carry can reach bit 253.
    """
    data = scalar.to_bytes(32, "little") + b"\x00\x00"
    window_mask = (1 << width) - 1
    half = 1 << (width - 1)
    digits = [0] * 256
    carry = 0
    bit = 0
    while bit < 256:
        byte_index = bit >> 3
        bits = ((data[byte_index] | data[byte_index + 1] << 8 | data[byte_index + 2] << 16) >> (bit & 7)) & window_mask
        if bits & 1 == carry:
            bit += 1
            continue
        # The window plus the carry from the digit below. A window of half or
        # more becomes a negative digit and carries one into the next window.
        value = bits + carry
        carry = 1 if value >= half else 0
        digits[bit] = value - (carry << width)
        bit += width
    return digits


def _cached_multiples(x, y, z, t, count):
    """Return [P, 3P, 5P, ...] (count odd multiples of the extended point P) in cached form.

    The cached form of a point is (Y + X, Y - X, 2Z, 2dT), the values of the
    addition formula (RFC 8032 section 5.1.4) that depend on the second point only.
    """
    p = _P
    # 2P by the doubling formula of RFC 8032 section 5.1.4.
    a = x * x % p
    b = y * y % p
    c = z * z % p
    c += c
    h = a + b
    s = x + y
    e = h - s * s % p
    g = a - b
    f = c + g
    x2 = e * f % p
    y2 = g * h % p
    twice = ((y2 + x2) % p, (y2 - x2) % p, 2 * f * g % p, _D2 * e % p * h % p)

    table = [((y + x) % p, (y - x) % p, 2 * z % p, _D2 * t % p)]
    for _ in range(count - 1):
        y_plus_x, y_minus_x, z2, t2d = twice
        a = (y - x) * y_minus_x % p
        b = (y + x) * y_plus_x % p
        c = t * t2d % p
        d = z * z2 % p
        e = b - a
        f = d - c
        g = d + c
        h = b + a
        x = e * f % p
        y = g * h % p
        z = f * g % p
        t = e * h % p
        table.append(((y + x) % p, (y - x) % p, 2 * z % p, _D2 * t % p))
    return table


def _double_scalar_mult(s, k, x, y):
    """Return [s]B + [k]P in projective (X, Y, Z) for the affine point P = (x, y).

    Straus-Shamir: one chain of doublings shared by both scalars, with wNAF
    digits picking odd multiples from the two tables. Formulas are the extended
    twisted Edwards ones of RFC 8032 section 5.1.4, written inline because a
    call per step would cost more than the field arithmetic it wraps.
    """
    b_table = _B_MULTIPLES
    a_table = _cached_multiples(x, y, 1, x * y % _P, 1 << (_A_WINDOW - 2))
    s_digits = _wnaf(s, _B_WINDOW)
    k_digits = _wnaf(k, _A_WINDOW)
    p = _P

    top = 255
    while top >= 0 and s_digits[top] == 0 and k_digits[top] == 0:
        top -= 1

    # Start from the neutral element (0, 1, 1, 0).
    X = 0
    Y = 1
    Z = 1
    T = 0
    for i in range(top, -1, -1):
        s_digit = s_digits[i]
        k_digit = k_digits[i]

        # Doubling. T is computed only when an addition follows, because the
        # doubling formula does not read T.
        a = X * X % p
        b = Y * Y % p
        c = Z * Z % p
        c += c
        h = a + b
        e = X + Y
        e = h - e * e % p
        g = a - b
        f = c + g
        X = e * f % p
        Y = g * h % p
        Z = f * g % p
        if s_digit == 0 and k_digit == 0:
            continue
        T = e * h % p

        for digit, table in ((s_digit, b_table), (k_digit, a_table)):
            if digit == 0:
                continue
            # Addition of a cached point. Subtracting it swaps Y + X with
            # Y - X and negates 2dT, because -(X, Y, Z, T) = (-X, Y, Z, -T).
            if digit > 0:
                y_plus_x, y_minus_x, z2, t2d = table[digit >> 1]
                c = T * t2d % p
            else:
                y_minus_x, y_plus_x, z2, t2d = table[(-digit) >> 1]
                c = -(T * t2d % p)
            a = (Y - X) * y_minus_x % p
            b = (Y + X) * y_plus_x % p
            d = Z * z2 % p
            e = b - a
            f = d - c
            g = d + c
            h = b + a
            X = e * f % p
            Y = g * h % p
            Z = f * g % p
            T = e * h % p

    return X, Y, Z
