"""QR codes for the console's projector view, drawn by the project (segno, pure Python): a check-in link
becomes an SVG path the page draws itself, so the page loads no image from another host and runs no
encoder of its own."""

from __future__ import annotations

import segno

# Four modules of light margin: the quiet zone the QR specification asks for, so phones find the code.
QUIET_ZONE = 4
# Level M (15 % of the symbol may be lost): a projected code survives glare and a blurred phone camera;
# segno raises the level further when the text fits the same size anyway.
ERROR_LEVEL = "m"


def qr_path(text: str) -> tuple[int, str]:
    """`text` as a QR code: (the side in modules, quiet zone included; SVG path data of its dark modules,
    one `M x y h w v1 h-w z` rectangle per run of dark modules in a row, in module units)."""
    code = segno.make(text, error=ERROR_LEVEL, micro=False)
    runs: list[str] = []
    for y, row in enumerate(code.matrix, start=QUIET_ZONE):
        x = 0
        while x < len(row):
            if not row[x]:
                x += 1
                continue
            start = x
            while x < len(row) and row[x]:
                x += 1
            width = x - start
            runs.append(f"M{start + QUIET_ZONE} {y}h{width}v1h-{width}z")
    return len(code.matrix) + 2 * QUIET_ZONE, "".join(runs)
