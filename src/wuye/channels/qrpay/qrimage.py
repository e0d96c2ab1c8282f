"""Draw a QR code as SVG with reportlab's encoder (already pinned for receipts)."""

from __future__ import annotations

from reportlab.graphics.barcode.qrencoder import QRCode, QRErrorCorrectLevel


def qr_svg(text: str, *, quiet: int = 4) -> str:
    """Return a self-contained SVG of ``text`` as a QR code (error correction M)."""
    code = QRCode(None, QRErrorCorrectLevel.M)
    code.addData(text)
    code.make()
    n = code.getModuleCount()
    size = n + 2 * quiet
    path = "".join(
        f"M{c + quiet},{r + quiet}h1v1h-1z" for r in range(n) for c in range(n) if code.isDark(r, c)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" '
        f'shape-rendering="crispEdges"><rect width="{size}" height="{size}" fill="#fff"/>'
        f'<path d="{path}" fill="#000"/></svg>'
    )
