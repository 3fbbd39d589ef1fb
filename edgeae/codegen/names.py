"""The C prefix of generated files and symbols: one default, one rule, checked once per call.

The rule is applied where a user chooses the prefix (:func:`edgeae.codegen.generate_c`,
:func:`edgeae.codegen.codec.write_codec`, ``edgeae codegen --prefix``); names derived from it
(``<prefix>_latent`` for the codec tables next to the graphs) are not checked again.

Every generated name starts with the prefix (``<prefix>_encoder_int8``, ``<prefix>_compress_int8``,
``<prefix>_latent_codec``, ``<PREFIX>_ARENA_BYTES``), stb style. The fixed codec copied beside
them owns the ``eae`` namespace (``eae_codec.h``, ``eae_compress``, ``eae_writer_begin``,
``EAE_OK``), so a prefix may not be ``eae`` or start with ``eae_``: ``write_codec(prefix="eae")``
would overwrite ``eae_codec.h`` itself, and ``eae_compress_fp32`` would sit beside the codec's
``eae_compress``.
"""

from __future__ import annotations

import re

from edgeae.errors import ConfigError

__all__ = ["DEFAULT_PREFIX", "MAX_PREFIX", "RESERVED_PREFIX", "check_prefix"]

DEFAULT_PREFIX = "model"  # model_encoder_int8.c, model_compress.c, model_latent_codec.c, model_codec.c
RESERVED_PREFIX = "eae"  # the fixed codec's names (eae_codec.c, eae_compress, EAE_*)
MAX_PREFIX = 31  # characters: C99's significant length of an external name


def check_prefix(prefix: object) -> str:
    """``prefix`` if edgeae can name generated C with it; a ConfigError saying why not otherwise."""
    if not isinstance(prefix, str) or not re.fullmatch(rf"[a-z][a-z0-9_]{{0,{MAX_PREFIX - 1}}}", prefix):
        raise ConfigError(
            f"prefix {prefix!r} is not a C identifier edgeae can use: lowercase letters, digits and '_', "
            f"starting with a letter, at most {MAX_PREFIX} characters, e.g. --prefix sensor_ae")
    if prefix == RESERVED_PREFIX or prefix.startswith(RESERVED_PREFIX + "_"):
        raise ConfigError(
            f"prefix {prefix!r} would clash with the C codec's own names (eae_codec.h, eae_compress, "
            f"eae_writer_begin, EAE_*): '{RESERVED_PREFIX}' and '{RESERVED_PREFIX}_...' are the codec's; "
            f"pick another, e.g. --prefix sensor_ae (default: {DEFAULT_PREFIX})")
    return prefix
