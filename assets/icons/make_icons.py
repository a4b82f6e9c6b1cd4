"""Draws the app icons (a procedural amber "Q" mark) as RGBA PNGs; run from the repo root."""
import struct
import zlib


def png(size, path):
    rows = []
    c = (size - 1) / 2
    for y in range(size):
        row = bytearray([0])
        for x in range(size):
            dx, dy = x - c, y - c
            r = (dx * dx + dy * dy) ** 0.5
            outer = size * 0.46
            if r <= outer:
                ring = outer * 0.62 <= r <= outer * 0.86
                tail = dx > 0 and dy > 0 and abs(dx - dy) < size * 0.07 and r > outer * 0.45
                px = (38, 34, 30, 255) if ring or tail else (217, 178, 124, 255)
            else:
                px = (0, 0, 0, 0)
            row += bytes(px)
        rows.append(bytes(row))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"".join(rows), 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)


for size, name in [(512, "icon.png"), (32, "32x32.png"), (128, "128x128.png")]:
    png(size, f"assets/icons/{name}")
