"""Limits every reader checks before it builds anything from a file it was given.

A file from a colleague or the internet decides how much a naive reader allocates: a 1 kB
manifest can ask for a model wider than memory, a 40-byte YAML for a hundred million keypoints.
Each reader compares what a file asks for with these bounds first and refuses, naming the file,
anything beyond them. Each bound is far above what real data needs, and says why.
"""

from __future__ import annotations

# Keypoints per skeleton. The largest public skeletons (COCO-WholeBody 133, 300-point face
# meshes) stay well below; every array, loss and table row scales with it.
MAX_KEYPOINTS = 512

# Characters in a keypoint name. Names are labels on a canvas and CSV/JSON headers.
MAX_NAME_LENGTH = 200

# Animals or people on one image (COCO's most crowded images hold a few dozen).
MAX_INSTANCES_PER_IMAGE = 1000

# Longest image side in pixels: JPEG's own maximum, and beyond what a letterboxed model input
# can resolve. Image *area* is bounded separately by image_reader.MAX_PIXELS.
MAX_IMAGE_SIDE = 65_535

# Whole annotation files (COCO JSON, labelme JSON, DeepLabCut CSV, YOLO label lists) are read
# into memory. COCO's person_keypoints_train2017.json, the largest common one, is 238 MB.
MAX_ANNOTATION_BYTES = 1 << 30

# A YOLO data YAML is a dozen lines; YAML parsing in pure Python is slow on large input.
MAX_YAML_BYTES = 1 << 20

# One image file read into memory before decoding (a 200 M pixel 16-bit TIFF is ~1.2 GB).
MAX_IMAGE_BYTES = 2 << 30

# Characters of a foreign value quoted in an error message (a message stays one paragraph).
MAX_QUOTED_CHARS = 80
