"""The Cloud Native Buildpack's build step.

buildpack/bin/build runs `python -m servestatic.platform.cnb build`.

It runs under the Python an earlier buildpack provided, with only this package's
own wheel on sys.path (brotli and friends are not installed yet), so it uses
nothing but the standard library and `servestatic.config.settings`. Compression itself
runs later, as `servestatic compress`, from the layer this step installs.

Layers it writes (Buildpack API 0.10):
  servestatic/     a venv with servestatic and gunicorn, plus the shared entrypoint;
                   launch + cache, rebuilt only when its key (wheels, Python,
                   entrypoint) changes. Its SBOM beside it, as CycloneDX and SPDX
                   (servestatic/platform/sbom.py).
  compress-cache/  compressed outputs by content hash; cache only, so an unchanged
                   rebuild compresses nothing.
  launch-env/      env.launch/SERVESTATIC_*.default from BP_SERVESTATIC_*; launch only.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from servestatic.config.settings import SETTINGS, Setting, SettingError, load_settings
from servestatic.platform import sbom
from servestatic.site.names import MANIFEST_NAME

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: build() refuses it first, in one line (shipped_wheel_dirs)
    tomllib = None  # type: ignore[assignment]

ENTRYPOINT = "servestatic-entrypoint"
# The process type an app's own Procfile `web` is kept under (servestatic's is `web`).
APP_PROCESS = "app"
BUILD_PREFIX = "BP_"
# Settings a buildpack user does not set through BP_*, and why. Every other SERVESTATIC_*
# setting in settings.py is a BP_SERVESTATIC_* build variable, checked by its own parser.
NOT_FROM_BUILD = {
    "PORT": "the platform sets it",
    "WEB_CONCURRENCY": "the platform sets it",
    "SERVESTATIC_BIND": "the platform owns the port (PORT)",
    "SERVESTATIC_CACHE_DIR": "the compression cache is the buildpack's own layer",
    "SERVESTATIC_DICTIONARIES_FROM": "earlier versions come from the buildpack's cache layer",
}

# What buildpack/package ships wheels for (servestatic.platform.cnbpackage): every CPython from
# pyproject's requires-python that has reached its first release. 3.10 is left out: it
# reached its end of life in October 2026, and servestatic uses 3.11's tomllib and
# hashlib.file_digest.
SUPPORTED_PYTHONS = ("3.11", "3.12", "3.13", "3.14")
# CNB target architectures and the machine names in their wheels' platform tags.
WHEEL_ARCH = {"amd64": "x86_64", "arm64": "aarch64"}
# The oldest glibc the shipped wheels run on (zopfli's arm64 wheels are manylinux_2_28).
GLIBC_FLOOR = (2, 28)
WHEELS_INDEX = "index.json"


class BuildError(Exception):
    """The build cannot go on; the message is one line for the user."""


def target_dir_name(os_name: str, arch: str) -> str:
    """The wheels/ subdirectory holding one target's wheels."""
    return f"{os_name}-{arch}"


def shipped_wheel_dirs(wheels: Path, environ: Mapping[str, str]) -> list[Path]:
    """The wheel directories for this build's Python and CPU, or one line saying why there are none.

    Checked before anything is installed, so that a build this package cannot serve
    fails at its start, naming the Python and the architecture, instead of in pip.
    """
    try:
        index = json.loads((wheels / WHEELS_INDEX).read_text())
    except (OSError, ValueError):
        raise BuildError(f"{wheels} has no {WHEELS_INDEX}: run buildpack/package") from None
    machine = platform.machine()
    arch = environ.get("CNB_TARGET_ARCH") or {v: k for k, v in WHEEL_ARCH.items()}.get(machine, machine)
    target = f"{environ.get('CNB_TARGET_OS') or 'linux'}/{arch}"
    python = "{}.{}".format(*sys.version_info[:2])
    implementation = "CPython" if sys.implementation.name == "cpython" else sys.implementation.name
    if implementation != "CPython" or python not in index["pythons"] or target not in index["targets"]:
        raise BuildError(f"{implementation} {python} on {target} is not supported: this buildpack has wheels "
                         f"for CPython {', '.join(index['pythons'])} on {', '.join(index['targets'])}")
    libc, version = platform.libc_ver()
    floor = tuple(int(part) for part in index["glibc"].split("."))
    found = tuple(int(part) for part in re.findall(r"\d+", version)[:2])
    if libc != "glibc" or found < floor:
        raise BuildError(f"CPython {python} on {target} with {libc or 'an unknown libc'} {version}: "
                         f"the wheels need glibc {index['glibc']} or later")
    return [wheels, wheels / target_dir_name(*target.split("/"))]


def buildable_settings() -> list[Setting]:
    """The settings a BP_SERVESTATIC_* variable may set, in table order."""
    return [s for s in SETTINGS if s.env.startswith("SERVESTATIC_") and s.env not in NOT_FROM_BUILD]


def settings_from_build_env(environ: Mapping[str, str]) -> dict[str, str]:
    """SERVESTATIC_* values from BP_SERVESTATIC_*, checked by the same parsers as at run time.

    A typo (an unknown BP_SERVESTATIC_ name) is an error rather than silently ignored.
    """
    known = {BUILD_PREFIX + s.env: s.env for s in buildable_settings()}
    values: dict[str, str] = {}
    for name, value in environ.items():
        if not name.startswith(BUILD_PREFIX + "SERVESTATIC_"):
            continue
        if name not in known:
            raise BuildError(f"{name}: not a servestatic build setting (see the buildpack's README.md)")
        values[known[name]] = value
    try:
        load_settings(environ=values)
    except SettingError as error:
        raise BuildError(BUILD_PREFIX + str(error)) from None
    return values


def planned_root(plan_path: Path) -> str:
    """The static root bin/detect found, as it wrote it into the build plan."""
    plan = tomllib.loads(plan_path.read_text())
    for entry in plan.get("entries", []):
        if entry.get("name") == "servestatic" and entry.get("metadata", {}).get("root"):
            return str(entry["metadata"]["root"])
    raise BuildError(f"{plan_path}: no servestatic entry with a root; was bin/detect run?")


def toml_value(value: object) -> str:
    """TOML for the few value types written here (JSON strings are valid TOML basic strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def write_layer_toml(layers: Path, name: str, *, launch: bool, cache: bool,
                     metadata: Mapping[str, str] | None = None) -> None:
    lines = ["[types]", f"launch = {toml_value(launch)}", "build = false", f"cache = {toml_value(cache)}"]
    if metadata:
        lines += ["", "[metadata]"] + [f"{key} = {toml_value(value)}" for key, value in metadata.items()]
    (layers / f"{name}.toml").write_text("\n".join(lines) + "\n")


def layer_metadata(layers: Path, name: str) -> dict[str, object]:
    """What the previous build recorded for a layer (the restorer brings it back)."""
    try:
        return tomllib.loads((layers / f"{name}.toml").read_text()).get("metadata", {})
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def install_key(wheels: list[Path], entrypoint: Path) -> str:
    """Changes whenever what the venv holds would change: the wheels, the Python, the entrypoint."""
    digest = hashlib.sha256()
    digest.update(f"{sys.version}\0{os.path.realpath(sys.executable)}\0".encode())
    for path in [*sorted(wheels), entrypoint]:
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as stream:
            digest.update(hashlib.file_digest(stream, "sha256").digest())
    return digest.hexdigest()


def install(layer: Path, wheel_dirs: list[Path], entrypoint: Path) -> None:
    """A venv over the provided Python, so the app's own packages (installed into
    that Python by the Python buildpack) stay importable for SERVESTATIC_APP."""
    shutil.rmtree(layer, ignore_errors=True)
    if _pip_can_target_a_venv():
        # Seeding the venv with its own pip (ensurepip) takes longer than the whole install.
        run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", os.fspath(layer)])
        pip = [sys.executable, "-m", "pip", "--python", os.fspath(layer / "bin" / "python")]
    else:
        run([sys.executable, "-m", "venv", "--system-site-packages", os.fspath(layer)])
        pip = [os.fspath(layer / "bin" / "python"), "-m", "pip"]
    find_links = [arg for directory in wheel_dirs for arg in ("--find-links", os.fspath(directory))]
    # The zstd extra (dcz deltas, .zst): backports.zstd, which its marker leaves out on 3.14+.
    run([*pip, "install", "--quiet", "--no-index", "--no-compile",
         "--disable-pip-version-check", "--no-cache-dir", "--ignore-installed",
         *find_links, "servestatic-origin[zstd]"])
    # Bytecode checked by hash, not mtime: the lifecycle resets mtimes when it exports and
    # restores layers, and timestamp-checked .pyc files would then be rewritten at the next
    # run, changing the layer (no reuse) or failing on a read-only one.
    run([os.fspath(layer / "bin" / "python"), "-m", "compileall", "-q", "-j", "0",
         "--invalidation-mode", "unchecked-hash", os.fspath(layer / "lib")])
    shutil.copy2(entrypoint, layer / "bin" / ENTRYPOINT)
    (layer / "bin" / ENTRYPOINT).chmod(0o755)


def _pip_can_target_a_venv() -> bool:
    """pip 22.3 and later install into another environment with --python."""
    try:
        major, minor = (int(part) for part in importlib.metadata.version("pip").split(".")[:2])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return False
    return (major, minor) >= (22, 3)


def run(command: list[str], env: Mapping[str, str] | None = None) -> str:
    result = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True)
    if result.returncode != 0:
        raise BuildError(f"{' '.join(command[:4])} ... failed with exit code {result.returncode}")
    return result.stdout


def compress_environment(settings: Mapping[str, str], cache: Path) -> dict[str, str]:
    """The environment `servestatic compress` (or servestatic's Django storage) runs in: the
    build's compress settings, the cache layer, and no root or mounts (each run names its root)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SERVESTATIC_")}
    env.update({key: value for key, value in settings.items()
                if key not in {"SERVESTATIC_ROOT", "SERVESTATIC_MOUNTS"}})
    env["SERVESTATIC_CACHE_DIR"] = os.fspath(cache)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # leave the launch layer exactly as installed
    return env


def compress(layer: Path, root: Path, env: Mapping[str, str]) -> dict[str, object]:
    """`servestatic compress` from the installed layer, its cache in a cache layer."""
    output = run([os.fspath(layer / "bin" / "servestatic"), "compress", os.fspath(root), "--json"], env=env)
    return json.loads(output)


def collectstatic(venv: Path, app_dir: Path, env: Mapping[str, str]) -> None:
    """Django's static root is made at build time. Python buildpacks that run collectstatic
    themselves leave it in place; for the others it is run here, with the venv's Python,
    which sees the packages the Python buildpack installed. With servestatic's storage
    (servestatic.django) it compresses too, so it gets compress's environment and cache."""
    print("servestatic: running python manage.py collectstatic --noinput")
    run([os.fspath(venv / "bin" / "python"), os.fspath(app_dir / "manage.py"), "collectstatic",
         "--noinput"], env=env)


# The compress cache's layout (buildtime/compress.py and buildtime/deltas.py, cache_dirs),
# named here because this step runs before brotli, which those import, is installed.
VERSIONS_CACHE = "versions"  # earlier versions of hashed files: the dictionaries of deltas
DELTA_CACHE_PREFIX = "dcz-"  # deltas, each named <file SHA-256>.<dictionary SHA-256>


def prune_cache(cache: Path, roots: list[Path]) -> int:
    """Drop cached outputs no file in the roots has any more, so the cache layer holds one
    build's worth instead of growing with every deploy. `compress --cache-dir` names each
    cached variant by the content hash of its original, the hash the manifest records, and
    each cached delta by its file's SHA-256 (the manifest's sha-256 digest) and then its
    dictionary's. The earlier versions under versions/ are kept: they are what the next
    build makes its deltas against, and compress itself keeps only a few per family
    (SERVESTATIC_DELTA_VERSIONS)."""
    wanted: set[str] = set()
    current_sha256: set[str] = set()
    for root in roots:
        manifest = json.loads((root / MANIFEST_NAME).read_text())
        for entry in manifest["files"].values():
            wanted.add(entry["hash"])
            digest = entry.get("digests", {}).get("sha-256")
            if digest:
                current_sha256.add(base64.b64decode(digest).hex())
    removed = 0
    for path in cache.rglob("*"):
        if not path.is_file():
            continue
        top = path.relative_to(cache).parts[0]
        if top == VERSIONS_CACHE:
            continue
        used = (path.name.partition(".")[0] in current_sha256 if top.startswith(DELTA_CACHE_PREFIX)
                else path.name in wanted)
        if not used:
            path.unlink()
            removed += 1
    return removed


def write_launch_env(layer: Path, values: Mapping[str, str]) -> None:
    """`.default` files: a variable set at launch still wins over the build's choice."""
    shutil.rmtree(layer, ignore_errors=True)
    env_dir = layer / "env.launch"
    env_dir.mkdir(parents=True)
    for name, value in values.items():
        (env_dir / f"{name}.default").write_text(value)


def procfile_web(app_dir: Path) -> str | None:
    """The command of the app's own Procfile `web` process, if it has one."""
    try:
        lines = (app_dir / "Procfile").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        match = re.match(r"^web\s*:\s*(\S.*)$", line.strip())
        if match:
            return match.group(1)
    return None


def launch_processes(entrypoint: Path, app_web: str | None) -> list[dict[str, object]]:
    """servestatic's `web`, the default, exec'd directly by the launcher (no shell; it reads
    PORT itself). An app's own Procfile `web` is kept as APP_PROCESS, through bash as a
    Procfile runs it, so that the platform can still start it by name."""
    processes: list[dict[str, object]] = [
        {"type": "web", "command": [os.fspath(entrypoint)], "args": [], "default": True}]
    if app_web is not None:
        processes.append({"type": APP_PROCESS, "command": ["bash", "-c", app_web], "args": [],
                          "default": False})
    return processes


def write_launch_toml(layers: Path, processes: list[dict[str, object]]) -> None:
    lines = []
    for process in processes:
        lines += ["[[processes]]"] + [f"{key} = {toml_value(value)}" for key, value in process.items()]
    (layers / "launch.toml").write_text("\n".join(lines) + "\n")


def inside_app(app_dir: Path, relative: str) -> Path:
    """A static root named relative to the app, resolved; one outside the app is an error."""
    root = (app_dir / relative).resolve()
    if not root.is_relative_to(app_dir.resolve()):
        raise BuildError(f"static root {relative!r} is not inside the app")
    return root


def build(environ: Mapping[str, str], app_dir: Path) -> None:
    layers = Path(environ["CNB_LAYERS_DIR"])
    buildpack = Path(environ["CNB_BUILDPACK_DIR"])
    wheel_dirs = shipped_wheel_dirs(buildpack / "wheels", environ)  # first: nothing else works without
    settings = settings_from_build_env(environ)
    mounts = load_settings(environ=settings).mounts
    if mounts:
        relative_roots = [os.fspath(mount.root) for mount in mounts]
    else:
        relative_roots = [planned_root(Path(environ["CNB_BP_PLAN_PATH"]))]
    roots = [inside_app(app_dir, relative) for relative in relative_roots]
    if mounts:
        settings["SERVESTATIC_MOUNTS"] = ",".join(
            f"{mount.prefix}={os.fspath(root)}" for mount, root in zip(mounts, roots, strict=True))
    else:
        settings["SERVESTATIC_ROOT"] = os.fspath(roots[0])
    django = (app_dir / "manage.py").is_file()

    def missing() -> BuildError:
        absent = [relative for relative, root in zip(relative_roots, roots, strict=True) if not root.is_dir()]
        return BuildError(f"static root {absent[0]!r} is not a directory in the app (set "
                          f"BP_SERVESTATIC_{'MOUNTS' if mounts else 'ROOT'} to where your static files are)")

    if not all(root.is_dir() for root in roots) and not django:
        raise missing()  # before the install: nothing here could make it

    wheels = sorted(wheel for directory in wheel_dirs for wheel in directory.glob("*.whl"))
    entrypoint = buildpack / "entrypoint" / ENTRYPOINT
    if not wheels or not entrypoint.is_file():
        raise BuildError(f"{buildpack} is not packaged (no wheels/ or entrypoint/): run buildpack/package")

    venv = layers / "servestatic"
    key = install_key(wheels, entrypoint)
    if layer_metadata(layers, "servestatic").get("key") == key and (venv / "bin" / "servestatic").exists():
        print("servestatic: reusing the servestatic layer (nothing changed)")
    else:
        print(f"servestatic: installing servestatic and gunicorn on {platform.python_implementation()} "
              f"{platform.python_version()} ({platform.machine()})")
        install(venv, wheel_dirs, entrypoint)
    write_layer_toml(layers, "servestatic", launch=True, cache=True, metadata={"key": key})
    site_packages = venv / "lib" / "python{}.{}".format(*sys.version_info[:2]) / "site-packages"
    sbom.write(layers, "servestatic", "servestatic layer",
               sbom.installed_packages(site_packages, wheel_dirs))

    cache = layers / "compress-cache"
    cache.mkdir(exist_ok=True)
    write_layer_toml(layers, "compress-cache", launch=False, cache=True)
    env = compress_environment(settings, cache)
    if not all(root.is_dir() for root in roots) and django:
        collectstatic(venv, app_dir, env)
    if not all(root.is_dir() for root in roots):
        raise missing()
    for root in roots:
        summary = compress(venv, root, env)
        # One line with the whole summary, per root: how a build log (and the tests)
        # tell an unchanged rebuild from one that compressed.
        print("servestatic: compress summary " + json.dumps(summary, separators=(",", ":")))
    removed = prune_cache(cache, roots)
    if removed:
        print(f"servestatic: dropped {removed} cached outputs no file uses any more")

    serve_names = {s.env for s in SETTINGS if "serve" in s.commands}
    write_launch_env(layers / "launch-env", {k: v for k, v in settings.items() if k in serve_names})
    write_layer_toml(layers, "launch-env", launch=True, cache=False)
    app_web = procfile_web(app_dir)
    if app_web is not None:
        chained = settings.get("SERVESTATIC_APP")
        print(f"servestatic: warning: the Procfile's web process is kept as process type "
              f"'{APP_PROCESS}'; 'web' runs servestatic, which passes what is not a static file to "
              + (f"{chained}" if chained else "nothing, as BP_SERVESTATIC_APP is not set"))
    write_launch_toml(layers, launch_processes(venv / "bin" / ENTRYPOINT, app_web))


def main(argv: list[str]) -> int:
    if argv != ["build"]:
        print("usage: python -m servestatic.platform.cnb build   (run by the buildpack's bin/build)",
              file=sys.stderr)
        return 2
    try:
        build(os.environ, Path.cwd())
    except BuildError as error:
        print(f"servestatic: error: {error}", file=sys.stderr)
        return 1
    except KeyError as error:
        print(f"servestatic: error: {error.args[0]} is not set: run me from the CNB lifecycle",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
