"""How often each accessory and style is drawn (per face): the long tail of the class table."""

from __future__ import annotations

P_GLASSES = 0.17
P_SUNGLASSES = 0.25  # of glasses
P_HAT = 0.1
P_EARRINGS = 0.28  # drawn only where an ear shows, so ~15% of faces end up with ear_r
P_NECKLACE = 0.12  # some end up under a high neckline
P_CLOTH = 0.93
P_MOUTH_OPEN = 0.35
P_BLINK = 0.1
P_WINK = 0.03  # of faces that do not blink
HAIR_STYLES = ("bald", "short", "long", "bun")
HAIR_STYLE_P = (0.08, 0.37, 0.4, 0.15)
