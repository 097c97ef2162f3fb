"""The static files storage: WhiteNoise's compressed, content-hashed files, with ES-module imports rewritten.

The console is plain ES modules (`import {x} from "./api.js";`). Django can rewrite such imports to the
hashed names when it hashes the files (`support_js_module_import_aggregation`), so a page that loads
`app.<hash>.js` also gets the matching `api.<hash>.js`: every file can be cached for good, and a deploy
never mixes old and new modules. Only the console's modules are rewritten: third-party bundles (Swagger UI
for /docs) stay byte for byte as shipped.
"""

from django.contrib.staticfiles.storage import HashedFilesMixin
from whitenoise.storage import CompressedManifestStaticFilesStorage

_, _JS_MODULE_IMPORTS = HashedFilesMixin._js_module_import_aggregation_patterns  # type: ignore[attr-defined]


class ConsoleStaticStorage(CompressedManifestStaticFilesStorage):
    support_js_module_import_aggregation = True
    _js_module_import_aggregation_patterns = ("console/*.js", _JS_MODULE_IMPORTS)
