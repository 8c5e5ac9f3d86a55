# ruff: noqa: F821, UP031 -- SCons script: names are injected by SCons (Import), and it runs under PlatformIO's Python
"""PlatformIO pre-script shared by every env (QEMU and real boards): edgeprune's build glue.

* adds firmware/runtime/*.c when the runtime exists (EP_HAVE_RUNTIME=1, else 0: link-only firmware),
* sets model buffer / arena sizes from ``custom_ep_model_max`` / ``custom_ep_arena`` (bytes),
* deploy build: ``EP_BAKED_MODEL_DIR=<dir with model_data.c/.h>`` in the environment bakes the model in
  (-DEP_BAKED_MODEL, no RAM model buffer); ``EP_BAKED_ARENA`` / ``EP_BAKED_MAX_TENSORS`` / ``EP_BAKED_MAX_OPS``
  (set by bench/firmware_build.py from the runtime's own plan of that model; computed here the same way when
  absent) size the arena and the runtime's tables for exactly that model, so the ELF's RAM figure is the model's;
  ``EP_BAKED_KERNELS`` (e.g. ``conv,f32,gru`` / ``gru`` / ``none``) compiles only the kernel families it runs,
* stamps a build id ``<git hash>-<config hash>`` (config hash: flags + every firmware source + the baked
  model) into the firmware and into ``$BUILD_DIR/build_id.txt`` for the host.
"""

import hashlib
import os
import subprocess
from pathlib import Path

Import("env")  # type: ignore[name-defined]  # noqa: F821  (SCons injects Import)

root = Path(env.subst("$PROJECT_DIR"))  # noqa: F821
fw = root / "firmware"
runtime_sources = sorted(p for p in (fw / "runtime").glob("*.c"))
have_runtime = bool(runtime_sources) and (fw / "runtime" / "ep_runtime.h").is_file()
# EP_NO_RUNTIME=1 builds the link-only firmware even when the runtime is present (protocol bring-up).
if os.environ.get("EP_NO_RUNTIME", "") not in ("", "0"):
    have_runtime = False


def option(name, default):
    try:
        return env.GetProjectOption(name)  # noqa: F821
    except Exception:  # noqa: BLE001 - PlatformIO raises its own InvalidProjectConf types
        return default


model_max = int(option("custom_ep_model_max", 65536))
arena = int(option("custom_ep_arena", 32768))
baked_dir = os.environ.get("EP_BAKED_MODEL_DIR", "").strip()

defines = [("EP_HAVE_RUNTIME", 1 if have_runtime else 0)]
if baked_dir:
    baked = Path(baked_dir).resolve()
    if not (baked / "model_data.c").is_file() or not (baked / "model_data.h").is_file():
        raise SystemExit("EP_BAKED_MODEL_DIR=%s holds no model_data.c/.h (run the exporter first)" % baked)
    defines += ["EP_BAKED_MODEL", ("EP_MODEL_MAX", "0u")]
    sizes = {v: os.environ.get(v, "").strip()
             for v in ("EP_BAKED_ARENA", "EP_BAKED_MAX_TENSORS", "EP_BAKED_MAX_OPS", "EP_BAKED_KERNELS")}
    if not sizes["EP_BAKED_ARENA"]:
        # A plain `pio run` (or an upload): plan here exactly as bench/firmware_build.py does, so every way of
        # building the same export gives the same image and build id.
        try:
            from edgeprune.bench.firmware_build import BuildError, deploy_environ
        except ImportError:
            print("edgeprune: not importable here; the deploy build keeps the env's %d B arena" % arena)  # noqa: T201
        else:
            try:
                planned_env, _ = deploy_environ(env.subst("$PIOENV"), baked)  # noqa: F821
            except BuildError as exc:
                raise SystemExit("edgeprune deploy build: %s" % exc) from exc
            sizes = {v: planned_env[v] for v in sizes}
    if sizes["EP_BAKED_ARENA"]:
        arena = int(sizes["EP_BAKED_ARENA"])
    for var in ("EP_BAKED_MAX_TENSORS", "EP_BAKED_MAX_OPS"):
        if sizes[var]:
            defines.append((var.replace("EP_BAKED_", "EP_RT_"), int(sizes[var])))
    if sizes["EP_BAKED_KERNELS"]:
        families = set(sizes["EP_BAKED_KERNELS"].split(","))
        defines += [("EP_RT_%s" % f.upper(), int(f in families)) for f in ("conv", "f32", "gru")]
    env.Append(CPPPATH=[str(baked)])  # noqa: F821
    env.BuildSources(os.path.join("$BUILD_DIR", "baked_model"), str(baked), src_filter="+<model_data.c>")  # noqa: F821
else:
    baked = None
    defines += [("EP_MODEL_MAX", "%du" % model_max)]

defines.append(("EP_ARENA_BYTES", "%du" % arena))
env.Append(CPPPATH=[str(fw / "include"), str(fw / "port"), str(fw / "src")])  # noqa: F821
if have_runtime:
    env.Append(CPPPATH=[str(fw / "runtime")])  # noqa: F821
    # The runtime is a separate source tree; build it as its own group so its tests never get in.
    env.BuildSources(os.path.join("$BUILD_DIR", "runtime"), str(fw / "runtime"), src_filter="+<*.c>")  # noqa: F821

h = hashlib.sha256()
h.update(repr((env.subst("$PIOENV"), env.subst("$BOARD"), env.get("BUILD_FLAGS"), defines)).encode())  # noqa: F821
for sub in ("include", "src", "port", "runtime"):
    for p in sorted((fw / sub).rglob("*")):
        if p.is_file() and p.suffix in (".c", ".h", ".ld") and "tests" not in p.parts:
            h.update(str(p.relative_to(fw)).encode())
            h.update(p.read_bytes())
if baked is not None:
    h.update((baked / "model_data.c").read_bytes())
try:
    git = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                         text=True, timeout=10, check=False).stdout.strip() or "nogit"
except (OSError, subprocess.SubprocessError):
    git = "nogit"
build_id = "%s-%s" % (git, h.hexdigest()[:12])
defines.append(("EP_BUILD_ID", '\\"%s\\"' % build_id))
env.Append(CPPDEFINES=defines)  # noqa: F821

build_dir = Path(env.subst("$BUILD_DIR"))  # noqa: F821
build_dir.mkdir(parents=True, exist_ok=True)
(build_dir / "build_id.txt").write_text(build_id + "\n")
print("edgeprune firmware %s: runtime=%s baked=%s build_id=%s" % (env.subst("$PIOENV"), have_runtime, bool(baked), build_id))  # noqa: T201
