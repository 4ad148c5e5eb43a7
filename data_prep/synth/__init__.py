"""Procedural synthetic faces with per-part masks, written in the raw CelebAMask-HQ layout.

    OUT/CelebA-HQ-img/{i}.jpg
    OUT/CelebAMask-HQ-mask-anno/{i // 2000}/{i:05d}_{part}.png   (size // 2, only parts present)
    OUT/CelebA-HQ-to-CelebA-mapping.txt

Each face is drawn from polygons in a head coordinate frame (x right, y down, unit = half the
head width, origin between the eyes' level and the face centre) mapped to pixels by a random
similarity transform (roll, scale, position); the body gets a milder roll of its own. A yaw
shifts the features toward one side and hides the far ear, so a flip that does not swap the
left/right labels is visibly wrong. Part masks follow the CelebAMask-HQ conventions: l_* is the
subject's left (image right), skin covers the whole head under eyes/nose/hair, and a part that
is physically behind another one painted later in DEFAULT_PAINT_ORDER is cut by it, so stacking
the masks gives the visible label map. The image is painted from that same label map.

Modules, in the order a face is made:
    rates       how often each accessory and style appears
    geometry    one dataclass per part's shape (Face holds them all)
    face        pose, head, and the order in which parts are sampled and cut by each other
    features, body, hair    the part samplers (eyes .. ears; neck, cloth, jewellery; hair, hat)
    palette, background, details, shading    painting the image from the label map
    camera      blur and sensor noise
    render      one face: masks + image;  dataset: writing the raw layout;  cli: the subcommand
    draw, colour, labels    drawing primitives, colour tables/noise, masks <-> label maps
"""

from __future__ import annotations

from data_prep.layout import raw_mask_path as mask_path
from data_prep.synth.cli import add_arguments, main
from data_prep.synth.raw_writer import generate, write_face
from data_prep.synth.render import render_face

__all__ = ["add_arguments", "generate", "main", "mask_path", "render_face", "write_face"]
