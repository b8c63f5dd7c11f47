"""Small helpers the capture-writing scripts share."""
import struct


def checksum(b):
    """The Internet checksum (RFC 1071) of `b`, as IPv4, TCP and UDP headers carry it."""
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF
