"""Install PlatformIO's core package ``tool-scons`` offline, from the PyPI ``scons`` in this interpreter.

PlatformIO 6.2 downloads ``tool-scons`` (requirement ``~4.41101.0``) from its own registry on first
build; these machines reach only PyPI/Debian. The package PlatformIO expects is just a folder with a
``scons.py`` entry point, a ``package.json`` and a ``.piopm`` metadata file, so we build that folder
from ``scons==4.11.1`` (its SCons package is copied in, making the tool independent of this venv).

Idempotent: an existing folder with the right version is left alone (``--force`` rebuilds it).
Usage: ``python tools/provision_scons.py [--dest ~/.platformio/packages/tool-scons] [--force]``
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
from importlib import metadata
from pathlib import Path

log = logging.getLogger("provision_scons")

SCONS_PYPI_VERSION = "4.11.1"
# PlatformIO encodes SCons 4.11.1 as 4.41101.0 (major.minor*10000+patch*100...); its core requires ~4.41101.0.
TOOL_VERSION = "4.41101.0"

ENTRY = '''"""Entry point PlatformIO runs as ``python scons.py``; the SCons package sits next to this file."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from SCons.Script.Main import main  # noqa: E402

if __name__ == "__main__":
    main()
'''


class ProvisionError(RuntimeError):
    """The tool folder could not be built; the message says what to install or fix."""


def default_dest() -> Path:
    core = os.environ.get("PLATFORMIO_CORE_DIR")
    base = Path(core) if core else Path.home() / ".platformio"
    return base / "packages" / "tool-scons"


def is_provisioned(dest: Path) -> bool:
    try:
        pkg = json.loads((dest / "package.json").read_text(encoding="utf8"))
        meta = json.loads((dest / ".piopm").read_text(encoding="utf8"))
    except (OSError, ValueError):
        return False
    return (
        pkg.get("version") == TOOL_VERSION
        and meta.get("version") == TOOL_VERSION
        and (dest / "scons.py").is_file()
        and (dest / "SCons" / "__init__.py").is_file()
    )


def _scons_package_dir() -> Path:
    try:
        version = metadata.version("scons")
    except metadata.PackageNotFoundError as exc:
        raise ProvisionError(f"PyPI scons is not installed: pip install scons=={SCONS_PYPI_VERSION}") from exc
    if version != SCONS_PYPI_VERSION:
        raise ProvisionError(f"scons {version} installed, need {SCONS_PYPI_VERSION}: pip install scons=={SCONS_PYPI_VERSION}")
    import SCons  # imported late: only needed when we actually build the folder

    return Path(SCons.__file__).resolve().parent


def provision(dest: Path | None = None, force: bool = False) -> Path:
    """Create ``dest`` (default ``~/.platformio/packages/tool-scons``) and return it.

    :param dest: target folder; PlatformIO looks in ``$PLATFORMIO_CORE_DIR/packages/tool-scons``.
    :param force: rebuild even if a folder with the right version exists.
    """
    dest = (dest or default_dest()).expanduser()
    if not force and is_provisioned(dest):
        log.info("tool-scons %s already at %s", TOOL_VERSION, dest)
        return dest
    src = _scons_package_dir()
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Build beside the destination and swap in with rename, so a failure never leaves a half package.
    tmp = Path(tempfile.mkdtemp(prefix=".tool-scons-", dir=dest.parent))
    try:
        shutil.copytree(src, tmp / "SCons", ignore=shutil.ignore_patterns("__pycache__"))
        (tmp / "scons.py").write_text(ENTRY, encoding="utf8")
        package = {
            "name": "tool-scons",
            "version": TOOL_VERSION,
            "description": f"SCons {SCONS_PYPI_VERSION} from PyPI, provisioned offline by edgeprune",
            "keywords": ["build tools"],
            "homepage": "https://scons.org",
            "license": "MIT",
        }
        (tmp / "package.json").write_text(json.dumps(package, indent=2), encoding="utf8")
        piopm = {
            "type": "tool",
            "name": "tool-scons",
            "version": TOOL_VERSION,
            "spec": {"owner": "platformio", "id": None, "name": "tool-scons", "requirements": None, "uri": None},
        }
        (tmp / ".piopm").write_text(json.dumps(piopm), encoding="utf8")
        if dest.exists():
            old = dest.with_name(dest.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            dest.rename(old)
            shutil.rmtree(old, ignore_errors=True)
        tmp.rename(dest)
        dest.chmod(0o755)  # mkdtemp creates 0700; PlatformIO may run as another user in CI containers
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ProvisionError(f"could not write {dest}: {exc}") from exc
    log.info("tool-scons %s provisioned at %s", TOOL_VERSION, dest)
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=None, help="target folder (default: %(default)s → ~/.platformio)")
    parser.add_argument("--force", action="store_true", help="rebuild even if present")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        provision(args.dest, args.force)
    except ProvisionError as exc:
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
