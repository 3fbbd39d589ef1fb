"""Bundle -> static web page that encodes on the device with onnxruntime-web.

``build_site(bundle, out)`` writes ``index.html``, one ES module (``edgeae.js``: the page,
its JS API and the ``.eae`` entropy coder), ``style.css``, the chosen encoder/decoder
graphs, ``site.json`` (what the page needs from the manifest) and, with ``ort_web=``, the
onnxruntime-web WASM files. No build step: ``python -m http.server`` serves the folder.
Torch-free: only the standard library, numpy and the runtime's manifest reader.
"""

from edgeae.web.site import (
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
    "MAX_IR_VERSION",
    "MAX_OPSET",
    "ORT_WEB_CDN",
    "ORT_WEB_FILES",
    "ORT_WEB_VERSION",
    "SiteReport",
    "build_site",
    "onnx_header",
]
