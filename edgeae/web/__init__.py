"""Bundle -> static web page that encodes on the device with onnxruntime-web.

``build_site(bundle, out)`` writes ``index.html``, four ES modules (``page.mjs``: the page
and its JS API; ``inputs.mjs``: drawing pad and sample strip; ``runner.mjs``: hash-checked
graphs in onnxruntime-web and the self-check; ``coder.mjs``: the ``.eae`` entropy coder, which
Node imports too), ``style.css``, the chosen encoder/decoder graphs, ``site.json`` (what
the page needs from the manifest, with every graph's SHA-256) and, with ``ort_web=``, the
onnxruntime-web WASM files. No build step: ``python -m http.server`` serves the folder.
Torch-free: only the standard library, numpy and the runtime's manifest reader.
"""

from edgeae.web.site import (
    ASSETS,
    MAX_IR_VERSION,
    MAX_OPSET,
    ORT_WEB_CDN,
    ORT_WEB_FILES,
    ORT_WEB_VERSION,
    SiteReport,
    build_site,
    onnx_header,
)

__all__ = [
    "ASSETS",
    "MAX_IR_VERSION",
    "MAX_OPSET",
    "ORT_WEB_CDN",
    "ORT_WEB_FILES",
    "ORT_WEB_VERSION",
    "SiteReport",
    "build_site",
    "onnx_header",
]
