"""Makes the template's ``function`` package our core, so both can keep their name.

The python3-http template imports the handler folder as the package ``function``
(``from function import handler``), which is also the name of our core. stack.yml copies
the core into the handler folder (``configuration.copy: [./function]``), so in the image it
sits at ``/home/app/function/function/``. The template's empty ``__init__.py`` is replaced by
this file, which loads that copy under the name ``function`` in this package's place, with
both folders on its path: ``function.runtime`` and every core module resolve to the core,
``function.handler`` to ours, and the core's packaged files (the default policy) are found
where they are. Nowhere else (this repository) does it do anything.
"""

import importlib.util
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
_core = os.path.join(_here, "function", "__init__.py")

if __name__ == "function" and os.path.isfile(_core):
    _spec = importlib.util.spec_from_file_location(
        "function", _core, submodule_search_locations=[os.path.dirname(_core), _here])
    assert _spec is not None and _spec.loader is not None
    _module = importlib.util.module_from_spec(_spec)
    # The import system returns whatever sys.modules holds once this file has run.
    sys.modules["function"] = _module
    _spec.loader.exec_module(_module)
